"""Hierarchical pooling kernels: cell posteriors from the counts of every level above them.

Counts are stacked: one row per group of every level (global, coarser levels, the cells), and
``cell_groups[c]`` lists cell c's row at each level, global first and the cell itself last. Pooling
runs top-down. The global level's parent is the grand Beta over all arms, Beta(1 + Σ successes,
1 + Σ failures). A parent lends its posterior to each child as a prior, scaled down to ``strength``
pseudo-counts when it holds more: a parent never claims more evidence than it has, so with no data
everything starts near Beta(1, 1), and a child with no data of its own takes its parent's mean.
"""

import numpy as np
from numba import njit

from ._jit import JIT
from .sampling import _argmax_random_ties, _sample_scores


@njit(**JIT)
def _pooled_cell_posterior(counts, groups, strength, out):
    """Pool one cell's Beta posterior for every arm from its levels' count rows.

    ``counts = (successes, failures)``: float64 (n_groups, n_arms); ``groups``: int64 (n_levels,), the
    cell's row at each level, global first; ``out = (alpha, beta)`` of shape (n_arms,), written in place.
    """
    successes, failures = counts
    out_alpha, out_beta = out
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

    ``counts = (successes, failures)``: float64 (n_groups, n_outcomes, n_arms); ``cell_groups``: int64
    (n_cells, n_levels); ``out = (alpha, beta)``: float64 (n_cells, n_outcomes, n_arms), written in place.
    """
    successes, failures = counts
    out_alpha, out_beta = out
    for c in range(cell_groups.shape[0]):
        for o in range(successes.shape[1]):
            _pooled_cell_posterior((successes[:, o], failures[:, o]), cell_groups[c], strength,
                                   (out_alpha[c, o], out_beta[c, o]))


@njit(**JIT)
def _hier_bernoulli_steps(counts, cell_groups, pooling, stream, true_rates, gen, out_arm):
    """Hierarchical Thompson sampling, one step at a time, on a Bernoulli stream; learns ``counts`` in place.

    ``counts = (successes, failures)``: float64 (n_groups, n_arms), stacked; ``cell_groups``: int64
    (n_cells, n_levels); ``pooling = (strength, sharpness)``: the pooling strength, and the factor the
    pooled Beta parameters are multiplied by before the draw (same mean, about 1/sharpness of the
    variance); ``stream = (cell_stream, uniforms)``, int64 and float64 (n_steps,): the reward at step t
    is ``uniforms[t] < true_rates[cell, arm]``; ``out_arm``: int64 (n_steps,), written in place.
    """
    successes, failures = counts
    strength, sharpness = pooling
    cell_stream, uniforms = stream
    n_arms = successes.shape[1]
    post = (np.empty((1, n_arms)), np.empty((1, n_arms)))
    value, no_cost, allowed = np.ones(1), np.zeros(n_arms), np.ones(n_arms, dtype=np.bool_)
    scores = np.empty(n_arms)
    for t in range(cell_stream.shape[0]):
        c = cell_stream[t]
        _pooled_cell_posterior(counts, cell_groups[c], strength, (post[0][0], post[1][0]))
        for a in range(n_arms):
            post[0][0, a] *= sharpness
            post[1][0, a] *= sharpness
        _sample_scores(post[0], post[1], value, no_cost, allowed, -1, gen, scores)
        arm = _argmax_random_ties(scores, gen)
        out_arm[t] = arm
        for level in range(cell_groups.shape[1]):
            if uniforms[t] < true_rates[c, arm]:
                successes[cell_groups[c, level], arm] += 1.0
            else:
                failures[cell_groups[c, level], arm] += 1.0
