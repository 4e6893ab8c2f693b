"""Posterior updates and hierarchical pooling, validated. The kernels are in ``_posterior_kernels.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ._posterior_kernels import Counts, Posterior, _pool_cells, _sum_by_group, _update
from .validation import (
    as_finite_positive,
    as_float_array,
    as_index_array,
    check_non_negative,
    check_posterior,
    check_same_length,
    check_shape,
    check_writeable,
)

__all__ = ["PooledPosterior", "StackedCounts", "pool_cells", "pool_posteriors", "stack_counts", "update"]


class StackedCounts(NamedTuple):
    """Counts summed at every level of a hierarchy, what pooling a cell reads.

    ``counts``: float64 ``Counts`` (n_groups, n_outcomes, n_arms), one row per group of every level
    (global, the coarser levels, the cells); ``cell_groups``: int64 (n_cells, n_levels), each cell's
    row at each level, global first and the cell itself last.
    """

    counts: Counts
    cell_groups: np.ndarray


class PooledPosterior(NamedTuple):
    """Cell-level Beta parameters after empirical-Bayes pooling; ``prior_*`` excludes the cell's counts."""

    alpha: np.ndarray
    beta: np.ndarray
    prior_alpha: np.ndarray
    prior_beta: np.ndarray


def update(
    alpha: np.ndarray,
    beta: np.ndarray,
    cell_idx: np.ndarray,
    outcome_idx: np.ndarray,
    arm_idx: np.ndarray,
    successes: np.ndarray,
    failures: np.ndarray,
) -> None:
    """Add ``successes`` to ``alpha`` and ``failures`` to ``beta`` at each (cell, outcome, arm), in place.

    Weights may be fractional; repeated triples all count, as with ``np.add.at``.
    """
    check_posterior(alpha, beta)
    check_writeable(alpha=alpha, beta=beta)
    n_cells, n_outcomes, n_arms = alpha.shape
    cell_idx = as_index_array("cell_idx", cell_idx, n_cells)
    outcome_idx = as_index_array("outcome_idx", outcome_idx, n_outcomes)
    arm_idx = as_index_array("arm_idx", arm_idx, n_arms)
    successes = as_float_array("successes", successes, 1)
    failures = as_float_array("failures", failures, 1)
    check_same_length(cell_idx=cell_idx, outcome_idx=outcome_idx, arm_idx=arm_idx,
                      successes=successes, failures=failures)
    check_non_negative("successes", successes)
    check_non_negative("failures", failures)
    _update(Posterior(alpha, beta), cell_idx, outcome_idx, arm_idx, successes, failures)


def pool_posteriors(
    successes: np.ndarray, failures: np.ndarray, level_groups: Sequence[np.ndarray], strength: float
) -> PooledPosterior:
    """Cell posteriors pooled from every level above them, lending at most the evidence each level holds.

    ``successes, failures``: float64 (n_cells, n_outcomes, n_arms), each cell's own counts.
    ``level_groups``: int arrays (n_cells,), coarsest level first (e.g. region, region×industry),
    giving each cell's group id at that level; the global level is implicit; each level must be
    nested in the one before. The global level's prior is the grand Beta over all arms, and a
    parent's posterior is lent to its children as a prior scaled down to ``strength`` pseudo-counts
    only when it holds more. So a cold start is close to Beta(1, 1), and a cell with no data takes its
    parent's mean.
    """
    successes = as_float_array("successes", successes, 3)
    failures = as_float_array("failures", failures, 3)
    pooled = pool_cells(stack_counts(successes, failures, level_groups), strength)
    return PooledPosterior(pooled.alpha, pooled.beta, pooled.alpha - successes, pooled.beta - failures)


def stack_counts(successes: np.ndarray, failures: np.ndarray, level_groups: Sequence[np.ndarray]) -> StackedCounts:
    """Each cell's counts summed into its group at every level (see :func:`pool_posteriors`).

    The sums are what every cell's pooled posterior reads, so a caller that needs a few cells at a
    time keeps them and pools only those (:func:`pool_cells`).
    """
    successes = as_float_array("successes", successes, 3)
    failures = as_float_array("failures", failures, 3)
    check_shape("failures", failures, successes.shape)
    check_non_negative("successes", successes)
    check_non_negative("failures", failures)
    cell_groups, n_groups = _stack_levels(level_groups, successes.shape[0])
    stacked = Counts(np.zeros((n_groups, *successes.shape[1:])), np.zeros((n_groups, *successes.shape[1:])))
    for level in range(cell_groups.shape[1]):
        _sum_by_group(successes, cell_groups[:, level], stacked.successes)
        _sum_by_group(failures, cell_groups[:, level], stacked.failures)
    return StackedCounts(stacked, cell_groups)


def pool_cells(stacked: StackedCounts, strength: float, cells: np.ndarray | None = None) -> Posterior:
    """Pooled Beta parameters of ``cells`` (default: every cell), float64 (n_cells asked, n_outcomes, n_arms).

    Row k is cell ``cells[k]``'s posterior, exactly as :func:`pool_posteriors` gives it.
    """
    cell_groups = stacked.cell_groups
    if cells is not None:
        cell_groups = np.ascontiguousarray(cell_groups[as_index_array("cells", cells, cell_groups.shape[0])])
    shape = (cell_groups.shape[0], *stacked.counts.successes.shape[1:])
    out = Posterior(np.empty(shape), np.empty(shape))
    _pool_cells(stacked.counts, cell_groups, as_finite_positive("strength", strength), out)
    return out


def _stack_levels(level_groups: Sequence[np.ndarray], n_cells: int) -> tuple[np.ndarray, int]:
    """Each cell's row at every level (global, ``level_groups`` coarsest first, the cell) in one stack.

    Returns ``cell_groups``, int64 (n_cells, n_levels), and the number of stacked rows.
    """
    levels = [np.zeros(n_cells, np.int64)]
    for level, g in enumerate(level_groups):
        levels.append(as_index_array(f"level_groups[{level}]", g, np.iinfo(np.int64).max))
        check_shape(f"level_groups[{level}]", levels[-1], (n_cells,))
        _check_nested(levels[-2], levels[-1], len(levels) - 1)
    levels.append(np.arange(n_cells, dtype=np.int64))
    offsets = np.cumsum([0] + [int(g.max()) + 1 if g.size else 0 for g in levels])
    cell_groups = np.stack([g + offset for g, offset in zip(levels, offsets[:-1], strict=True)], axis=1)
    return np.ascontiguousarray(cell_groups), int(offsets[-1])


def _check_nested(parent_groups: np.ndarray, child_groups: np.ndarray, level: int) -> None:
    """Each child group must sit under exactly one parent group."""
    n_children = int(child_groups.max()) + 1 if child_groups.size else 0
    parent_idx = np.zeros(n_children, np.int64)
    parent_idx[child_groups] = parent_groups
    split = np.flatnonzero(parent_idx[child_groups] != parent_groups)
    if split.size:
        c = split[0]
        raise ValueError(
            f"`level_groups[{level - 1}]` must be nested in `level_groups[{level - 2}]`: group "
            f"{child_groups[c]} has cells under more than one parent (e.g. cell {c})"
        )
