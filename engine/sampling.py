"""Thompson-sampling kernels: score arms from Beta posteriors, choose one per row, estimate propensities.

Array conventions (shared by every kernel here):

- ``alpha, beta``: float64 ``(n_cells, n_outcomes, n_arms)``, Beta posterior parameters.
- ``value``: float64 ``(n_outcomes,)``, value of one occurrence of each outcome (negative for harm).
- ``cost``: float64 ``(n_cost_rows, n_arms)``, cost of sending on each arm.
- ``cell_idx, cost_row_idx``: int64 ``(n_rows,)``; ``mask``: bool ``(n_rows, n_arms)``.
- ``null_arm``: index of the no-message arm, whose score is exactly 0 and never sampled (-1: none).

Posteriors are passed as the tuple ``posterior = (alpha, beta)``, the economics as
``economics = (value, cost)`` and the rows as ``rows = (cell_idx, cost_row_idx, mask)``.
"""

import numpy as np
from numba import njit

from ._jit import JIT


@njit(**JIT)
def _beta_draw(gen, a, b):
    """One Beta(a, b) draw from ``gen`` (a, b > 0) by numpy's current algorithm: numpy's stream.

    a > 1 or b > 1: ``gen.beta``, a ratio of two Gamma draws, as numpy. Both <= 1: Jöhnk's algorithm,
    written out because numba's copy of an older numpy retries while U^(1/a) + V^(1/b) underflows to
    0 and never returns once both parameters are small (about 1e-10). As in numpy, below 3e-103 the
    draw is 0 or 1 with odds a : b (anything else has probability < 1e-100), and an underflowed power
    is finished in log space. Keeping numpy's algorithm lets the numpy twins replay a kernel's stream.
    """
    if a > 1.0 or b > 1.0:
        return gen.beta(a, b)
    if a < 3e-103 and b < 3e-103:
        return 1.0 if (a + b) * gen.random() < a else 0.0
    while True:
        u, v = gen.random(), gen.random()
        x, y = u ** (1.0 / a), v ** (1.0 / b)
        if x + y <= 1.0 and u + v > 0.0:
            if x > 0.0 and y > 0.0:
                return x / (x + y)
            delta = np.log(u) / a - np.log(v) / b
            if delta > 0.0:
                return np.exp(-np.log1p(np.exp(-delta)))
            return np.exp(delta - np.log1p(np.exp(delta)))


@njit(**JIT)
def _sample_scores(alpha_c, beta_c, value, cost_row, mask_row, null_arm, gen, scores):
    """Fill ``scores`` (n_arms,) with one Thompson draw of net value per arm; masked arms get -inf.

    ``alpha_c, beta_c``: (n_outcomes, n_arms) for one cell. Outcomes whose value is 0 are not sampled.
    """
    n_outcomes, n_arms = alpha_c.shape
    for a in range(n_arms):
        if not mask_row[a]:
            scores[a] = -np.inf
        elif a == null_arm:
            scores[a] = 0.0
        else:
            total = -cost_row[a]
            for o in range(n_outcomes):
                if value[o] != 0.0:
                    total += value[o] * _beta_draw(gen, alpha_c[o, a], beta_c[o, a])
            scores[a] = total


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
def _uniform_allowed(mask_row, gen):
    """An allowed arm drawn uniformly; -1 if none is allowed."""
    n_allowed = 0
    for a in range(mask_row.shape[0]):
        n_allowed += mask_row[a]
    if n_allowed == 0:
        return -1
    k = int(gen.random() * n_allowed)
    for a in range(mask_row.shape[0]):
        if mask_row[a]:
            if k == 0:
                return a
            k -= 1
    return -1


@njit(**JIT)
def _decide_rows(posterior, economics, rows, epsilon, null_arm, gen, out):
    """Choose one arm per row by Thompson sampling with an ε-uniform exploration floor.

    ``out = (arm int64 (n_rows,), score float64 (n_rows,), explored bool (n_rows,))``, written in place.
    Per row the generator is consumed in a fixed order (exploration coin, Beta draws, tie-breaks,
    exploration pick), so a chunk's output depends only on its generator's state.
    """
    alpha, beta = posterior
    value, cost = economics
    cell_idx, cost_row_idx, mask = rows
    out_arm, out_score, out_explored = out
    scores = np.empty(alpha.shape[2])
    for i in range(cell_idx.shape[0]):
        explore = gen.random() < epsilon
        c = cell_idx[i]
        _sample_scores(alpha[c], beta[c], value, cost[cost_row_idx[i]], mask[i], null_arm, gen, scores)
        arm = _uniform_allowed(mask[i], gen) if explore else _argmax_random_ties(scores, gen)
        out_arm[i] = arm
        out_score[i] = scores[arm]
        out_explored[i] = explore


@njit(**JIT)
def _choice_probabilities(posterior, economics, rows, epsilon, null_arm, n_draws, gen, out_probs):
    """Monte-Carlo propensity of every arm per row, mixed with the ε-uniform floor.

    ``out_probs``: float64 (n_rows, n_arms), written in place. Masked arms get exactly 0; each row of an
    allowed set sums to 1; allowed arms get at least ε / |allowed|.
    """
    alpha, beta = posterior
    value, cost = economics
    cell_idx, cost_row_idx, mask = rows
    n_arms = alpha.shape[2]
    scores = np.empty(n_arms)
    for i in range(cell_idx.shape[0]):
        c = cell_idx[i]
        counts = np.zeros(n_arms)
        for _ in range(n_draws):
            _sample_scores(alpha[c], beta[c], value, cost[cost_row_idx[i]], mask[i], null_arm, gen, scores)
            counts[_argmax_random_ties(scores, gen)] += 1.0
        n_allowed = 0
        for a in range(n_arms):
            n_allowed += mask[i, a]
        for a in range(n_arms):
            if mask[i, a]:
                out_probs[i, a] = (1.0 - epsilon) * counts[a] / n_draws + epsilon / n_allowed
            else:
                out_probs[i, a] = 0.0
