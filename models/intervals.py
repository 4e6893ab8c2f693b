"""Intervals across seeds: the mean and a percentile-bootstrap interval, and how far to trust it.

A bootstrap over seeds resamples the seeds' own totals, so the interval of a quantity that cannot be
negative (a cost, a count, a share) never reaches below zero, as a Student-t interval from two or three
seeds does (``245 ± 748`` USD of cost). With few seeds any interval is rough, and the bootstrap's is
too narrow rather than too wide: ``seeds_caption`` says so wherever one is printed.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 4000
ROUGH_BELOW = 5  # seeds: with fewer, tables call the interval rough


def mean_interval(values: np.ndarray, *, n_resamples: int = N_RESAMPLES,
                  random_state: np.random.Generator | int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean along axis 0 (one row per seed) and its 95% percentile-bootstrap interval.

    Parameters
    ----------
    values : ndarray of shape (n_seeds, ...), finite
    n_resamples : bootstrap resamples of the seeds.
    random_state : seed or Generator of the resampling (the default makes tables reproducible).

    Returns
    -------
    mean, low, high : ndarrays of shape values.shape[1:]; ``low <= mean <= high``, and ``low >= 0`` when
    every value is. One seed gives a zero-width interval.

    Examples
    --------
    >>> mean, low, high = mean_interval(np.array([0.0, 1.0, 5.0]))
    >>> float(mean), 0.0 <= float(low) <= float(mean) <= float(high) <= 5.0
    (2.0, True)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0 or values.shape[0] == 0:
        raise ValueError(f"`values` must have one row per seed and at least one row; got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"`values` must be finite; {np.count_nonzero(~np.isfinite(values))} entries are not")
    if int(n_resamples) < 1:
        raise ValueError(f"`n_resamples` must be >= 1; got {n_resamples!r}")
    mean = values.mean(axis=0)
    n_seeds = values.shape[0]
    if n_seeds == 1:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(random_state)
    resampled = values[rng.integers(0, n_seeds, size=(int(n_resamples), n_seeds))].mean(axis=1)
    low, high = np.quantile(resampled, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2], axis=0)
    # Quantiles of resampled means can differ from the sample mean by a rounding error (equal seeds).
    return mean, np.minimum(low, mean), np.maximum(high, mean)


def seeds_caption(n_seeds: int) -> str:
    """What a table's intervals are, from how many seeds, and whether that is enough to trust them.

    Examples
    --------
    >>> seeds_caption(3)
    'mean [95% bootstrap interval] across 3 seeds (rough: fewer than 5 seeds)'
    """
    if n_seeds < 1:
        raise ValueError(f"`n_seeds` must be >= 1; got {n_seeds!r}")
    if n_seeds == 1:
        return f"one seed: no interval (run {ROUGH_BELOW} or more seeds for one)"
    rough = f" (rough: fewer than {ROUGH_BELOW} seeds)" if n_seeds < ROUGH_BELOW else ""
    return f"mean [95% bootstrap interval] across {n_seeds} seeds{rough}"
