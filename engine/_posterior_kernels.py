"""Deterministic posterior kernels: add outcomes, and pool cell posteriors from every level above them.

``Posterior`` holds ``alpha, beta``, float64 ``(n_cells, n_outcomes, n_arms)`` Beta parameters;
``Counts`` holds ``successes, failures`` of the same layout, per cell or per stacked group.

Pooling works on stacked counts: one row per group of every level (global, coarser levels, the
cells), and ``cell_groups[c]`` lists cell c's row at each level, global first and the cell itself
last. Pooling runs top-down. The global level's parent is the grand Beta over all arms, Beta(1 + Σ
successes, 1 + Σ failures). A parent lends its posterior to each child as a prior, scaled down to
``strength`` pseudo-counts when it holds more: a parent never claims more evidence than it has, so
with no data everything starts near Beta(1, 1), and a child with no data of its own takes its
parent's mean.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ._jit import JIT


class Posterior(NamedTuple):
    """Beta parameters: ``alpha`` from successes, ``beta`` from failures."""

    alpha: np.ndarray
    beta: np.ndarray


class Counts(NamedTuple):
    """Outcome counts (fractional weights allowed): ``successes`` and ``failures``."""

    successes: np.ndarray
    failures: np.ndarray


@njit(**JIT)
def _update(posterior, cell_idx, outcome_idx, arm_idx, successes, failures):
    """Add weighted successes to ``posterior.alpha`` and failures to ``posterior.beta`` in place.

    ``cell_idx, outcome_idx, arm_idx``: int64 (n_events,); ``successes, failures``: float64
    (n_events,). Repeated triples all count (``np.add.at`` semantics).
    """
    for e in range(cell_idx.shape[0]):
        c, o, a = cell_idx[e], outcome_idx[e], arm_idx[e]
        posterior.alpha[c, o, a] += successes[e]
        posterior.beta[c, o, a] += failures[e]


@njit(**JIT)
def _sum_by_group(counts, group_idx, out):
    """Add ``counts[c]`` into ``out[group_idx[c]]`` for every cell c (out is zeroed by the caller).

    ``counts``: (n_cells, n_outcomes, n_arms); ``group_idx``: int64 (n_cells,);
    ``out``: (n_groups, n_outcomes, n_arms).
    """
    for c in range(counts.shape[0]):
        g = group_idx[c]
        for o in range(counts.shape[1]):
            for a in range(counts.shape[2]):
                out[g, o, a] += counts[c, o, a]


@njit(**JIT)
def _pooled_cell_posterior(successes, failures, groups, strength, out_alpha, out_beta):
    """Pool one cell's Beta posterior for every arm from its levels' count rows.

    ``successes, failures``: float64 (n_groups, n_arms), stacked; ``groups``: int64 (n_levels,), the
    cell's row at each level, global first; ``out_alpha, out_beta``: (n_arms,), written in place.
    """
    grand_alpha, grand_beta = 1.0, 1.0
    for a in range(successes.shape[1]):
        grand_alpha += successes[groups[0], a]
        grand_beta += failures[groups[0], a]
    for a in range(successes.shape[1]):
        alpha, beta = grand_alpha, grand_beta
        for level in range(groups.shape[0]):
            lent = min(1.0, strength / (alpha + beta))
            alpha = lent * alpha + successes[groups[level], a]
            beta = lent * beta + failures[groups[level], a]
        out_alpha[a] = alpha
        out_beta[a] = beta


@njit(**JIT)
def _pool_cells(counts, cell_groups, strength, out):
    """Pooled posteriors of every cell and outcome (see ``_pooled_cell_posterior``).

    ``counts``: ``Counts`` of float64 (n_groups, n_outcomes, n_arms), stacked; ``cell_groups``: int64
    (n_cells, n_levels); ``out``: ``Posterior`` of float64 (n_cells, n_outcomes, n_arms), written in place.
    """
    for c in range(cell_groups.shape[0]):
        for o in range(counts.successes.shape[1]):
            _pooled_cell_posterior(counts.successes[:, o], counts.failures[:, o], cell_groups[c], strength,
                                   out.alpha[c, o], out.beta[c, o])
