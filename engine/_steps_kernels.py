"""Per-step loop kernels: decide one, observe one Bernoulli reward, learn it, then decide the next.

``stream`` is a ``BernoulliStream``: step t serves cell ``cell[t]`` (int64 (n_steps,)) and is rewarded
when ``uniform[t]`` (float64 (n_steps,)) < ``true_rates[cell, arm]`` (float64 (n_cells, n_arms)).
Draws come from the Thompson primitives of the bank kernels, so a step consumes the generator as a
bank draw of one needed row would, then its tie-breaks.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ._bank_kernels import _sample_scores
from ._jit import JIT
from ._posterior_kernels import _pooled_cell_posterior


class BernoulliStream(NamedTuple):
    """The cell each step serves, the uniform that decides its reward, and every cell's true rates."""

    cell: np.ndarray
    uniform: np.ndarray
    true_rates: np.ndarray


@njit(**JIT)
def _argmax_random_ties(scores, gen):
    """Index of the largest score, ties broken uniformly at random (reservoir); -1 if all are -inf."""
    best, n_ties = -1, 0
    best_score = -np.inf
    for a in range(scores.shape[0]):
        s = scores[a]
        if s == -np.inf:
            continue
        if best == -1 or s > best_score:
            best, best_score, n_ties = a, s, 1
        elif s == best_score:
            n_ties += 1
            if gen.random() * n_ties < 1.0:
                best = a
    return best


@njit(**JIT)
def _bernoulli_steps(posterior, stream, gen, out_arm):
    """Run one Thompson step per entry of ``stream.cell``, learning outcome 0 of ``posterior`` in place.

    ``posterior``: ``Posterior`` of float64 (n_cells, n_outcomes, n_arms); ``out_arm``: int64 (n_steps,),
    written in place.
    """
    alpha, beta = posterior.alpha, posterior.beta
    n_arms = alpha.shape[2]
    value = np.zeros(alpha.shape[1])
    value[0] = 1.0
    no_cost = np.zeros(n_arms)
    allowed = np.ones(n_arms, dtype=np.bool_)
    scores = np.empty(n_arms)
    for t in range(stream.cell.shape[0]):
        c = stream.cell[t]
        _sample_scores(alpha[c], beta[c], value, no_cost, allowed, -1, gen, scores)
        arm = _argmax_random_ties(scores, gen)
        out_arm[t] = arm
        if stream.uniform[t] < stream.true_rates[c, arm]:
            alpha[c, 0, arm] += 1.0
        else:
            beta[c, 0, arm] += 1.0


@njit(**JIT)
def _hier_bernoulli_steps(counts, cell_groups, strength, sharpness, stream, gen, out_arm):
    """Hierarchical Thompson sampling, one step at a time; learns ``counts`` at every level in place.

    ``counts``: ``Counts`` of float64 (n_groups, n_arms), stacked (see ``_posterior_kernels``);
    ``cell_groups``: int64 (n_cells, n_levels); ``strength``: the pooling strength; ``sharpness``: the
    factor the pooled Beta parameters are multiplied by before the draw (same mean, about 1/sharpness
    of the variance); ``out_arm``: int64 (n_steps,), written in place.
    """
    n_arms = counts.successes.shape[1]
    post_alpha, post_beta = np.empty((1, n_arms)), np.empty((1, n_arms))
    value, no_cost, allowed = np.ones(1), np.zeros(n_arms), np.ones(n_arms, dtype=np.bool_)
    scores = np.empty(n_arms)
    for t in range(stream.cell.shape[0]):
        c = stream.cell[t]
        _pooled_cell_posterior(counts.successes, counts.failures, cell_groups[c], strength, post_alpha[0],
                               post_beta[0])
        for a in range(n_arms):
            post_alpha[0, a] *= sharpness
            post_beta[0, a] *= sharpness
        _sample_scores(post_alpha, post_beta, value, no_cost, allowed, -1, gen, scores)
        arm = _argmax_random_ties(scores, gen)
        out_arm[t] = arm
        for level in range(cell_groups.shape[1]):
            if stream.uniform[t] < stream.true_rates[c, arm]:
                counts.successes[cell_groups[c, level], arm] += 1.0
            else:
                counts.failures[cell_groups[c, level], arm] += 1.0
