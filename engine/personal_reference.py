"""Plain-numpy twins of the kernels in ``personal.py`` and ``hier_steps.py``, for tests and benchmarks.

They are written for clarity, not speed, and consume a ``numpy.random.Generator`` in the same order
as the kernels, so with the same seed they give the same draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def personal_posteriors(
    alpha: np.ndarray,
    beta: np.ndarray,
    cell_idx: np.ndarray,
    customer_idx: np.ndarray,
    personal: tuple[np.ndarray, np.ndarray, np.ndarray, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's posterior, float64 (n_rows, n_outcomes, n_arms): its cell's plus weight × its counts.

    ``personal = (successes, failures, arm_channel, weight)`` as in ``engine.PersonalCounts``.
    """
    successes, failures, arm_channel, weight = personal
    has_channel = arm_channel >= 0
    channel = np.where(has_channel, arm_channel, 0)
    row_alpha = alpha[cell_idx] + weight * successes[customer_idx][:, :, channel] * has_channel
    row_beta = beta[cell_idx] + weight * failures[customer_idx][:, :, channel] * has_channel
    return row_alpha, row_beta


def pooled_posterior(
    level_successes: Sequence[np.ndarray], level_failures: Sequence[np.ndarray], strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """One cell's Beta parameters per arm from its groups' counts at each level, global first.

    The grand Beta over arms, Beta(1 + Σ global successes, 1 + Σ global failures), is the global
    level's parent; each parent lends its posterior, scaled down to ``strength`` pseudo-counts if it
    holds more, as the prior of the level below.
    """
    n_arms = level_successes[0].shape[0]
    alpha = np.full(n_arms, 1.0 + level_successes[0].sum())
    beta = np.full(n_arms, 1.0 + level_failures[0].sum())
    for successes, failures in zip(level_successes, level_failures, strict=True):
        lent = np.minimum(1.0, strength / (alpha + beta))
        alpha, beta = lent * alpha + successes, lent * beta + failures
    return alpha, beta


def pool_posteriors(
    successes: np.ndarray, failures: np.ndarray, level_groups: Sequence[np.ndarray], strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Every cell's pooled Beta parameters, float64 (n_cells, n_outcomes, n_arms), cell by cell."""
    n_cells = successes.shape[0]
    levels = [np.zeros(n_cells, np.int64), *level_groups, np.arange(n_cells)]
    alpha, beta = np.empty_like(successes), np.empty_like(successes)
    for c in range(n_cells):
        members = [groups == groups[c] for groups in levels]
        for o in range(successes.shape[1]):
            alpha[c, o], beta[c, o] = pooled_posterior([successes[m, o].sum(axis=0) for m in members],
                                                       [failures[m, o].sum(axis=0) for m in members], strength)
    return alpha, beta


def hier_bernoulli_steps(
    cell_groups: np.ndarray,
    n_groups: int,
    stream: tuple[np.ndarray, np.ndarray],
    true_rates: np.ndarray,
    pooling: tuple[float, float],
    gen: np.random.Generator,
) -> np.ndarray:
    """Hierarchical Thompson sampling step by step from no data; returns the chosen arms, int64 (n_steps,).

    ``cell_groups``: int64 (n_cells, n_levels), each cell's row at every level of ``n_groups`` rows;
    ``stream = (cell_stream, uniforms)``; ``pooling = (strength, sharpness)``.
    """
    cell_stream, uniforms = stream
    strength, sharpness = pooling
    n_arms = true_rates.shape[1]
    successes, failures = np.zeros((n_groups, n_arms)), np.zeros((n_groups, n_arms))
    arms = np.empty(cell_stream.shape[0], np.int64)
    for t, c in enumerate(cell_stream):
        alpha, beta = pooled_posterior(successes[cell_groups[c]], failures[cell_groups[c]], strength)
        scores = np.array([gen.beta(sharpness * alpha[a], sharpness * beta[a]) for a in range(n_arms)])
        arms[t] = _argmax_random_ties(scores, gen)
        reward = uniforms[t] < true_rates[c, arms[t]]
        (successes if reward else failures)[cell_groups[c], arms[t]] += 1.0
    return arms


def _argmax_random_ties(scores: np.ndarray, gen: np.random.Generator) -> int:
    """Index of the largest score; each tie met on the way replaces the leader with probability 1/ties."""
    best, n_ties = 0, 1
    for a in range(1, scores.shape[0]):
        if scores[a] > scores[best]:
            best, n_ties = a, 1
        elif scores[a] == scores[best]:
            n_ties += 1
            if gen.random() * n_ties < 1.0:
                best = a
    return best
