"""Score banks, validated: Thompson draws shared by many rows, their exact propensities, and drawing from them.

The kernels are in ``_bank_kernels.py``; see it for how a bank is laid out.
"""

from __future__ import annotations

import numpy as np

from ._bank_kernels import Banks, Economics, _bank_probabilities, _scaled_bank_probabilities, _score_banks
from ._posterior_kernels import Posterior
from .parallel import _run_chunked, _run_split, chunk_generators
from .validation import (
    as_at_least,
    as_float_array,
    as_index_array,
    as_int_range,
    as_mask,
    as_row_mask,
    as_value_and_cost,
    check_finite_or_minus_inf,
    check_non_negative,
    check_null_arm,
    check_positive,
    check_posterior,
    check_probability,
    check_rows_allow_an_arm,
    check_rows_sum_to_one,
    check_same_length,
    check_shape,
    check_uniforms,
)

__all__ = ["bank_probabilities", "draw_from", "rate_bank", "scaled_bank_probabilities", "score_bank"]


def score_bank(
    alpha: np.ndarray,
    beta: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    bank_cell: np.ndarray,
    bank_cost_row: np.ndarray,
    needed: np.ndarray,
    n_draws: int,
    null_arm: int = -1,
    rng: np.random.Generator | int | None = None,
    *,
    chunk_size: int = 1,
) -> np.ndarray:
    """``n_draws`` Thompson draws of every needed arm's net value per bank, for :func:`bank_probabilities`.

    Bank b draws from cell ``bank_cell[b]`` with cost row ``bank_cost_row[b]``: arm a scores
    Σ_o value[o]·p̃[o, a] − cost[bank_cost_row[b], a], p̃[o, a] ~ Beta(alpha[c, o, a], beta[c, o, a]) over
    outcomes with nonzero value; ``null_arm`` scores exactly 0 (needed or not); arms with
    ``needed[b, a]`` False score -inf and are not sampled. Build ``needed`` as the union of the masks of
    the rows that will use the bank. Returns float64 ``(n_banks, n_draws, n_arms)``. Every
    ``chunk_size`` banks draw from their own generator seeded from ``rng``, so the output depends on
    ``rng`` and ``chunk_size`` only, never on the number of threads.

    Examples
    --------
    >>> import numpy as np
    >>> alpha, beta = np.ones((1, 1, 3)), np.ones((1, 1, 3))
    >>> needed = np.array([[True, False, True]])
    >>> scores = score_bank(alpha, beta, np.ones(1), np.zeros((1, 3)), [0], [0], needed, 4, null_arm=2, rng=0)
    >>> scores.shape, bool(np.isneginf(scores[0, :, 1]).all()), bool((scores[0, :, 2] == 0).all())
    ((1, 4, 3), True, True)
    """
    check_posterior(alpha, beta)
    n_cells, n_outcomes, n_arms = alpha.shape
    value, cost = as_value_and_cost(value, cost, n_outcomes, n_arms)
    bank_cell = as_index_array("bank_cell", bank_cell, n_cells)
    bank_cost_row = as_index_array("bank_cost_row", bank_cost_row, cost.shape[0])
    check_same_length(bank_cell=bank_cell, bank_cost_row=bank_cost_row)
    needed = as_mask("needed", needed, (bank_cell.shape[0], n_arms))
    n_draws = as_at_least("n_draws", n_draws, 1)
    null_arm = check_null_arm(null_arm, n_arms)
    if null_arm >= 0:  # the null arm's score is a constant: always "sampled"
        needed = needed.copy()
        needed[:, null_arm] = True
    banks = Banks(bank_cell, bank_cost_row, needed)
    out = np.empty((bank_cell.shape[0], n_draws, n_arms))

    def run(sl: slice, gen: np.random.Generator) -> None:
        _score_banks(Posterior(alpha, beta), Economics(value, cost), banks.rows(sl), n_draws, null_arm, gen, out[sl])

    _run_chunked(run, bank_cell.shape[0], rng, chunk_size)
    return out


def bank_probabilities(
    scores: np.ndarray,
    bank_idx: np.ndarray,
    mask: np.ndarray,
    epsilon: float = 0.01,
    null_arm: int = -1,
    *,
    chunk_size: int = 64,
) -> np.ndarray:
    """Exact propensities of choosing by argmax over a uniformly drawn draw of a bank, ε-uniform mixed.

    Row i uses bank ``bank_idx[i]`` of ``scores`` (from :func:`score_bank`). In each draw the allowed
    arm with the highest score wins; tied arms split the draw equally. With ``win_share[a]`` the
    mean over draws, allowed arms get ``(1 − ε)·win_share[a] + ε/n_allowed`` and masked arms exactly 0,
    so rows sum to 1. No randomness. Identical (bank, mask) rows are computed once, ``chunk_size``
    distinct rows per task on the engine's threads. A row may only allow arms its bank sampled;
    ``null_arm`` (-1: none) must score exactly 0 in every bank. Returns float64 ``(n_rows, n_arms)``.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([[[0.2, 0.5, 0.0], [0.7, 0.1, 0.0], [0.3, 0.3, 0.0], [-0.1, -0.2, 0.0]]])
    >>> bank_probabilities(scores, [0, 0], [[True, True, True], [True, False, True]], epsilon=0.0).tolist()
    [[0.375, 0.375, 0.25], [0.75, 0.0, 0.25]]
    """
    scores, unsampled = _check_scores(scores, null_arm)
    epsilon = check_probability("epsilon", epsilon)
    distinct_bank, distinct_mask, inverse = _distinct_rows(unsampled, bank_idx, mask)
    distinct = np.empty(distinct_mask.shape)

    def run(sl: slice) -> None:
        _bank_probabilities(scores, distinct_bank[sl], distinct_mask[sl], epsilon, distinct[sl])

    _run_split(run, distinct.shape[0], chunk_size)
    return distinct[inverse]


def rate_bank(
    alpha: np.ndarray,
    beta: np.ndarray,
    bank_cell: np.ndarray,
    needed: np.ndarray,
    n_draws: int,
    outcomes: np.ndarray,
    null_arm: int = -1,
    rng: np.random.Generator | int | None = None,
    *,
    chunk_size: int = 1,
) -> np.ndarray:
    """``n_draws`` Thompson draws of each of ``outcomes``' rates per bank, for :func:`scaled_bank_probabilities`.

    Outcome ``outcomes[k]`` of bank b is ``score_bank`` with value 1 on that outcome and no cost, so the
    draws are Beta(alpha[c, o, a], beta[c, o, a]) of cell ``bank_cell[b]``: 0 on ``null_arm``, -inf where
    not ``needed``. Returns float64 ``(n_banks, n_draws, len(outcomes), n_arms)``; each outcome draws
    from its own generator seeded from ``rng``.
    """
    check_posterior(alpha, beta)
    n_cells, n_outcomes, n_arms = alpha.shape
    outcomes = as_index_array("outcomes", outcomes, n_outcomes)
    bank_cell = as_index_array("bank_cell", bank_cell, n_cells)
    no_cost, zeros = np.zeros((1, n_arms)), np.zeros(bank_cell.shape[0], np.int64)
    gens = chunk_generators(rng, outcomes.shape[0])
    return np.stack([score_bank(alpha, beta, np.eye(n_outcomes)[o], no_cost, bank_cell, zeros, needed, n_draws,
                                null_arm, gen, chunk_size=chunk_size) for o, gen in zip(outcomes, gens, strict=True)],
                    axis=2)


def scaled_bank_probabilities(
    rates: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    cost_row_idx: np.ndarray,
    bank_idx: np.ndarray,
    factor: np.ndarray,
    arm_channel: np.ndarray,
    mask: np.ndarray,
    epsilon: float = 0.01,
    *,
    chunk_size: int = 64,
) -> np.ndarray:
    """Exact propensities when every row scales its bank's drawn rates by factors of its own, ε-uniform mixed.

    Row i uses bank ``bank_idx[i]`` of ``rates`` (from :func:`rate_bank`, float64 (n_banks, n_draws,
    n_outcomes, n_arms)); in each draw arm a scores Σ_o value[o]·rates[b, m, o, a]·factor[i, o, a] −
    cost[cost_row_idx[i], a], the allowed arm with the highest score wins and ties split the draw.
    ``factor`` (float64 (n_rows, n_outcomes, n_arms), finite and > 0) carries what the row knows beyond
    its bank's cell: the customer's recent messages, their own preferences. With every factor 1 this is
    :func:`bank_probabilities` of the net-value draws. A row may only allow arms its bank sampled; the
    no-message arm scores its rates (0) times anything minus its cost (0). No randomness. Returns float64
    ``(n_rows, n_arms)``.

    Examples
    --------
    >>> import numpy as np
    >>> rates = np.array([[[[0.2, 0.5, 0.0]], [[0.7, 0.1, 0.0]]]])  # 1 bank, 2 draws, 1 outcome, 3 arms
    >>> factor = np.array([[[1.0, 1.0]], [[1.0, 8.0]]])  # 2 rows, 1 outcome, 2 channels
    >>> scaled_bank_probabilities(rates, [1.0], np.zeros((1, 3)), [0, 0], [0, 0], factor, [0, 1, -1],
    ...                           np.ones((2, 3), bool), epsilon=0.0).tolist()
    [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]
    """
    arr = np.asarray(rates)
    if arr.dtype != np.float64 or arr.ndim != 4 or arr.shape[1] == 0:
        raise ValueError("`rates` must be a float64 array of shape (n_banks, n_draws >= 1, n_outcomes, n_arms), "
                         f"as rate_bank returns; got {arr.dtype} {arr.shape}")
    check_finite_or_minus_inf("rates", arr)
    rates = np.ascontiguousarray(arr)
    n_banks, _, n_outcomes, n_arms = rates.shape
    value, cost = as_value_and_cost(value, cost, n_outcomes, n_arms)
    mask = as_row_mask("mask", mask, n_arms)
    n_rows = mask.shape[0]
    bank_idx = as_index_array("bank_idx", bank_idx, n_banks)
    cost_row_idx = as_index_array("cost_row_idx", cost_row_idx, cost.shape[0])
    factor = as_float_array("factor", factor, 3)
    if factor.shape[:2] != (n_rows, n_outcomes):
        raise ValueError(f"`factor` must have shape ({n_rows}, {n_outcomes}, n_channels); got {factor.shape}")
    check_positive("factor", factor)
    arm_channel = as_int_range("arm_channel", arm_channel, -1, factor.shape[2])
    check_shape("arm_channel", arm_channel, (n_arms,))
    check_same_length(mask=mask, bank_idx=bank_idx, cost_row_idx=cost_row_idx)
    check_rows_allow_an_arm("mask", mask)
    unsampled = np.isneginf(rates).all(axis=1).any(axis=1)[bank_idx] & mask
    if unsampled.any():
        i = int(np.flatnonzero(unsampled.any(axis=1))[0])
        raise ValueError(f"`mask` row {i} allows arm {int(np.flatnonzero(unsampled[i])[0])}, which bank "
                         f"{bank_idx[i]} did not sample; build each bank's `needed` as the union of its rows' masks")
    epsilon = check_probability("epsilon", epsilon)
    out = np.empty((n_rows, n_arms))

    def run(sl: slice) -> None:
        _scaled_bank_probabilities(rates, value, cost, cost_row_idx[sl], bank_idx[sl], factor[sl], arm_channel,
                                   mask[sl], epsilon, out[sl])

    _run_split(run, n_rows, chunk_size)
    return out


def draw_from(probs: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One arm per row by inverse CDF: the first arm whose cumulative probability exceeds ``uniforms[i]``.

    ``probs``: float64 (n_rows, n_arms), non-negative rows summing to 1 (within 1e-9); ``uniforms``:
    float64 (n_rows,) in [0, 1). An arm of probability 0 is never returned: when round-off leaves the
    row's total below ``uniforms[i]``, the last arm with positive probability is. Returns int64 (n_rows,).

    Examples
    --------
    >>> draw_from([[0.5, 0.0, 0.5], [0.5, 0.5, 0.0]], [0.75, 0.999999]).tolist()
    [2, 1]
    """
    probs = as_float_array("probs", probs, 2)
    check_non_negative("probs", probs)
    uniforms = as_float_array("uniforms", uniforms, 1)
    check_same_length(probs=probs, uniforms=uniforms)
    check_uniforms("uniforms", uniforms)
    check_rows_sum_to_one("probs", probs, 1e-9)
    below = (np.cumsum(probs, axis=1) <= uniforms[:, None]).sum(axis=1)
    last_positive = probs.shape[1] - 1 - np.argmax(probs[:, ::-1] > 0.0, axis=1)
    return np.minimum(below, last_positive).astype(np.int64)


def _check_scores(scores: object, null_arm: object) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` from ``score_bank``: float64 (n_banks, n_draws, n_arms), no NaN or +inf, 0 on the null arm.

    Returns the scores, C-contiguous, and ``unsampled``, bool (n_banks, n_arms): arms whose every draw
    is -inf, which the bank did not sample.
    """
    arr = np.asarray(scores)
    if arr.dtype != np.float64:
        raise TypeError(f"`scores` must be a float64 array (as score_bank returns); got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[1] == 0:
        raise ValueError(f"`scores` must have shape (n_banks, n_draws >= 1, n_arms); got {arr.shape}")
    best = arr.max(axis=1)  # NaN and +inf propagate: one pass over the scores
    if np.isnan(best).any() or np.isposinf(best).any():
        check_finite_or_minus_inf("scores", arr)
    null_arm = check_null_arm(null_arm, arr.shape[2])
    if null_arm >= 0:
        off = np.flatnonzero((arr[:, :, null_arm] != 0.0).any(axis=1))
        if off.size:
            raise ValueError(f"`scores` must be exactly 0 on `null_arm` {null_arm}, as score_bank gives; "
                             f"{off.size} banks are not (first: bank {off[0]})")
    return np.ascontiguousarray(arr), np.isneginf(best)


def _distinct_rows(
    unsampled: np.ndarray, bank_idx: object, mask: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the rows, then keep one copy of each distinct (bank, mask) pair.

    ``unsampled``: bool (n_banks, n_arms), from ``_check_scores``. Returns ``(bank_idx, mask, inverse)``
    of the distinct pairs, row i of the input being distinct pair ``inverse[i]``. Every row must allow
    an arm, and only arms its bank sampled.
    """
    n_banks, n_arms = unsampled.shape
    mask_arr = as_row_mask("mask", mask, n_arms)
    bank_idx = as_index_array("bank_idx", bank_idx, n_banks)
    check_same_length(bank_idx=bank_idx, mask=mask_arr)
    check_rows_allow_an_arm("mask", mask_arr)
    keys = np.concatenate([bank_idx.reshape(-1, 1).view(np.uint8), np.packbits(mask_arr, axis=1)], axis=1)
    packed = np.ascontiguousarray(keys).view(np.dtype((np.void, keys.shape[1]))).reshape(-1)  # one key per row
    _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    distinct_bank, distinct_mask = bank_idx[first], mask_arr[first]
    not_sampled = distinct_mask & unsampled[distinct_bank]
    bad_rows = np.flatnonzero(not_sampled.any(axis=1)[inverse])
    if bad_rows.size:
        i = bad_rows[0]
        a = np.flatnonzero(not_sampled[inverse[i]])[0]
        raise ValueError(
            f"`mask` row {i} allows arm {a}, which bank {bank_idx[i]} did not sample (its scores are -inf); "
            f"{bad_rows.size} rows do so. Build each bank's `needed` as the union of the masks of its rows"
        )
    return distinct_bank, np.ascontiguousarray(distinct_mask), inverse
