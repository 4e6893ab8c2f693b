"""Score-bank kernels: Thompson draws shared by many rows, and exact propensities computed from them.

A bank holds ``n_draws`` independent Thompson draws of the net value of every arm for one
(cell, cost row) pair. A row that decides by drawing one of the bank's draws uniformly at random
and taking the argmax over its allowed arms has, by construction, the propensities that
``_bank_probabilities`` computes from the same draws: no Monte-Carlo error in the logged pscore.

Arguments (see ``sendwise.engine`` for the array conventions):

- ``posterior``: a ``Posterior`` (from ``_posterior_kernels``) of alpha, beta, float64
  ``(n_cells, n_outcomes, n_arms)`` each.
- ``economics``: an ``Economics`` (value float64 ``(n_outcomes,)``, cost float64 ``(n_cost_rows, n_arms)``).
- ``banks``: a ``Banks`` (cell int64 ``(n_banks,)``, cost_row int64 ``(n_banks,)``, needed bool
  ``(n_banks, n_arms)``: the arms a bank must sample, the union of the masks of the rows using it).
- ``scores``: float64 ``(n_banks, n_draws, n_arms)``; -inf on arms a bank did not sample.

The Beta sampler and the per-arm score draw here are the Thompson primitives the step kernels share.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ._jit import JIT


class Economics(NamedTuple):
    """Value of one occurrence of each outcome (negative for harm), and the cost of every arm per cost row."""

    value: np.ndarray
    cost: np.ndarray


class Banks(NamedTuple):
    """Per bank: its cell, its cost row, and the arms it must sample."""

    cell: np.ndarray
    cost_row: np.ndarray
    needed: np.ndarray

    def rows(self, sl: slice) -> "Banks":
        """The banks of ``sl``, as views."""
        return Banks(self.cell[sl], self.cost_row[sl], self.needed[sl])


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

    ``alpha_c, beta_c``: (n_outcomes, n_arms) for one cell; ``cost_row``: (n_arms,); ``null_arm``
    scores exactly 0 and is not sampled (-1: none). Outcomes whose value is 0 are not sampled.
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
def _score_banks(posterior, economics, banks, n_draws, null_arm, gen, out):
    """Fill ``out`` (n_banks, n_draws, n_arms) with ``n_draws`` Thompson draws of every needed arm per bank.

    A draw of arm a is Σ_o value[o]·Beta(alpha[c, o, a], beta[c, o, a]) − cost[r, a] with c, r the
    bank's cell and cost row, over outcomes with nonzero value; ``null_arm`` scores exactly 0 and
    arms not needed score -inf, neither consuming the generator. The generator is consumed bank by
    bank, draw by draw, arm by arm, outcome by outcome, so a numpy Generator can replay the stream.
    """
    for b in range(banks.cell.shape[0]):
        c, cost_row = banks.cell[b], economics.cost[banks.cost_row[b]]
        for m in range(n_draws):
            _sample_scores(posterior.alpha[c], posterior.beta[c], economics.value, cost_row, banks.needed[b],
                           null_arm, gen, out[b, m])


@njit(**JIT)
def _add_tie_shares(scores_row, allowed, share):
    """Add one draw's unit win to ``share`` (n_allowed,), split equally among the tied best allowed arms.

    ``scores_row``: float64 (n_arms,), one draw; ``allowed``: int64 (n_allowed,), n_allowed >= 1, the
    arm of each entry of ``share``.
    """
    best_k, n_ties = 0, 1
    best = scores_row[allowed[0]]
    for k in range(1, allowed.shape[0]):
        s = scores_row[allowed[k]]
        if s > best:
            best, best_k, n_ties = s, k, 1
        elif s == best:
            n_ties += 1
    if n_ties == 1:
        share[best_k] += 1.0
        return
    unit = 1.0 / n_ties
    for k in range(best_k, allowed.shape[0]):
        if scores_row[allowed[k]] == best:
            share[k] += unit


@njit(**JIT)
def _bank_probabilities(scores, bank_idx, mask, epsilon, out):
    """Exact propensity of every arm per row under argmax over a uniformly drawn bank draw, ε-mixed.

    ``bank_idx``: int64 (n_rows,); ``mask``: bool (n_rows, n_arms), at least one allowed arm per row;
    ``out``: float64 (n_rows, n_arms), written in place: (1 − ε)·win share + ε/n_allowed on allowed
    arms, exactly 0 on masked ones. No randomness: ties split each draw's unit share equally.
    """
    n_draws, n_arms = scores.shape[1], scores.shape[2]
    allowed = np.empty(n_arms, np.int64)
    share = np.empty(n_arms)
    for i in range(bank_idx.shape[0]):
        n_allowed = 0
        for a in range(n_arms):
            out[i, a] = 0.0
            if mask[i, a]:
                allowed[n_allowed] = a
                n_allowed += 1
        share[:n_allowed] = 0.0
        draws = scores[bank_idx[i]]
        for m in range(n_draws):
            _add_tie_shares(draws[m], allowed[:n_allowed], share)
        for k in range(n_allowed):
            out[i, allowed[k]] = (1.0 - epsilon) * share[k] / n_draws + epsilon / n_allowed


@njit(**JIT)
def _scaled_bank_probabilities(rates, value, cost, cost_row_idx, bank_idx, factor, arm_channel, mask, epsilon, out):
    """Like ``_bank_probabilities``, but every row scales its bank's drawn rates by its own channel factors.

    ``rates``: float64 (n_banks, n_draws, n_outcomes, n_arms), Thompson draws of each outcome's rate;
    ``value``: (n_outcomes,); ``cost``: (n_cost_rows, n_arms), ``cost_row_idx``: int64 (n_rows,);
    ``factor``: float64 (n_rows, n_outcomes, n_channels) > 0; ``arm_channel``: int64 (n_arms,), -1 for
    an arm without a channel (factor 1). In a draw, arm a of row i scores Σ_o value[o]·rates[b, m, o, a]
    ·factor[i, o, arm_channel[a]] − cost[r, a]; the allowed arm with the highest score wins and ties
    split the draw. ``out`` as ``_bank_probabilities``.
    """
    n_draws, n_outcomes, n_arms = rates.shape[1], rates.shape[2], rates.shape[3]
    allowed = np.empty(n_arms, np.int64)
    share = np.empty(n_arms)
    scores = np.empty(n_arms)
    weight = np.empty((n_outcomes, n_arms))  # value × factor of each allowed arm, for this row
    for i in range(bank_idx.shape[0]):
        n_allowed = 0
        for a in range(n_arms):
            out[i, a] = 0.0
            scores[a] = -np.inf
            if mask[i, a]:
                allowed[n_allowed] = a
                n_allowed += 1
                c = arm_channel[a]
                for o in range(n_outcomes):
                    weight[o, a] = value[o] * (factor[i, o, c] if c >= 0 else 1.0)
        share[:n_allowed] = 0.0
        draws, cost_row = rates[bank_idx[i]], cost[cost_row_idx[i]]
        for m in range(n_draws):
            for k in range(n_allowed):
                a = allowed[k]
                total = -cost_row[a]
                for o in range(n_outcomes):
                    total += weight[o, a] * draws[m, o, a]
                scores[a] = total
            _add_tie_shares(scores, allowed[:n_allowed], share)
        for k in range(n_allowed):
            out[i, allowed[k]] = (1.0 - epsilon) * share[k] / n_draws + epsilon / n_allowed
