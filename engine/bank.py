"""Score-bank kernels: Thompson draws shared by many rows, and exact propensities computed from them.

A bank holds ``n_draws`` independent Thompson draws of the net value of every arm for one
(cell, cost row) pair. A row that decides by drawing one of the bank's draws uniformly at random
and taking the argmax over its allowed arms has, by construction, the propensities that
``_bank_probabilities`` computes from the same draws: no Monte-Carlo error in the logged pscore.

Array conventions are those of ``sampling.py``; in addition:

- ``banks = (bank_cell, bank_cost_row, needed)``: int64 ``(n_banks,)``, int64 ``(n_banks,)`` and bool
  ``(n_banks, n_arms)``, the arms a bank must sample (the union of the masks of the rows using it).
- ``scores``: float64 ``(n_banks, n_draws, n_arms)``; -inf on arms a bank did not sample.

``_check_bank_rows`` and ``_check_scores`` are the input checks the public wrappers run first.
"""

import numpy as np
from numba import njit

from ._jit import JIT
from ._validate import as_index_array, as_int, as_mask, check_same_length
from .sampling import _sample_scores


def _check_bank_rows(
    bank_cell: np.ndarray, bank_cost_row: np.ndarray, needed: np.ndarray, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Banks index cells and cost rows; ``needed`` is one bool row of arms per bank.

    ``shape = (n_cells, n_cost_rows, n_arms)``.
    """
    n_cells, n_cost_rows, n_arms = shape
    bank_cell = as_index_array("bank_cell", bank_cell, n_cells)
    bank_cost_row = as_index_array("bank_cost_row", bank_cost_row, n_cost_rows)
    check_same_length(bank_cell=bank_cell, bank_cost_row=bank_cost_row)
    return bank_cell, bank_cost_row, as_mask("needed", needed, (bank_cell.shape[0], n_arms))


def _check_scores(scores: np.ndarray, null_arm: int) -> tuple[np.ndarray, np.ndarray]:
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
        bad = np.flatnonzero(np.isnan(arr.ravel()) | np.isposinf(arr.ravel()))
        raise ValueError(
            f"`scores` must be finite or -inf; {bad.size} of {arr.size} values are not "
            f"(first at flat index {bad[0]}: {arr.ravel()[bad[0]].item()!r})"
        )
    if not -1 <= as_int("null_arm", null_arm) < arr.shape[2]:
        raise ValueError(f"`null_arm` must be -1 or lie in [0, {arr.shape[2]}); got {null_arm!r}")
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
    mask_arr = np.asarray(mask)
    if mask_arr.ndim != 2:
        raise ValueError(f"`mask` must have shape (n_rows, {n_arms}); got {mask_arr.shape}")
    mask_arr = as_mask("mask", mask_arr, (mask_arr.shape[0], n_arms))
    bank_idx = as_index_array("bank_idx", bank_idx, n_banks)
    check_same_length(bank_idx=bank_idx, mask=mask_arr)
    empty = np.flatnonzero(~mask_arr.any(axis=1))
    if empty.size:
        raise ValueError(
            f"`mask` must allow at least one arm per row; {empty.size} rows allow none (first: row {empty[0]})"
        )
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


@njit(**JIT)
def _score_banks(posterior, economics, banks, n_draws, null_arm, gen, out):
    """Fill ``out`` (n_banks, n_draws, n_arms) with ``n_draws`` Thompson draws of every needed arm per bank.

    A draw of arm a is Σ_o value[o]·Beta(alpha[c, o, a], beta[c, o, a]) − cost[r, a] with c, r the
    bank's cell and cost row, over outcomes with nonzero value; ``null_arm`` scores exactly 0 and
    arms not needed score -inf, neither consuming the generator. The generator is consumed bank by
    bank, draw by draw, arm by arm, outcome by outcome, so a numpy Generator can replay the stream.
    """
    alpha, beta = posterior
    value, cost = economics
    bank_cell, bank_cost_row, needed = banks
    for b in range(bank_cell.shape[0]):
        c, cost_row = bank_cell[b], cost[bank_cost_row[b]]
        for m in range(n_draws):
            _sample_scores(alpha[c], beta[c], value, cost_row, needed[b], null_arm, gen, out[b, m])


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
