"""sendwise.engine: numba kernels over plain arrays, behind validated wrappers.

The wrappers check shapes, dtypes, NaN/inf and ranges once and raise ``ValueError`` (or ``TypeError``
for the wrong kind of array) naming the argument; the kernels behind them trust their input.

Array conventions: ``alpha, beta`` are float64 ``(n_cells, n_outcomes, n_arms)`` Beta parameters;
``value`` float64 ``(n_outcomes,)``; ``cost`` float64 ``(n_cost_rows, n_arms)``; ``mask`` bool
``(n_rows, n_arms)``. ``null_arm`` is the no-message arm (score exactly 0, never sampled), -1 if none.

Randomness: every sampler takes ``rng`` (a seed or a ``numpy.random.Generator``). Rows are cut into
chunks of ``chunk_size``; each chunk gets its own generator seeded from ``rng``, so the output depends
only on the seed and ``chunk_size``, never on the number of threads that run the chunks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from ._validate import (
    as_float_array,
    as_index_array,
    as_int,
    as_mask,
    as_real,
    check_non_negative,
    check_positive,
    check_probability,
    check_same_length,
    check_shape,
    check_unit_interval,
)
from .bank import _bank_probabilities, _check_bank_rows, _check_scores, _distinct_rows, _score_banks
from .hier_steps import _hier_bernoulli_steps, _pool_cells
from .personal import PersonalCounts, _check_personal, _decide_personal_rows, _personal_choice_probabilities
from .posterior import _discount, _shrink_to_parent, _sum_by_group, _update
from .sampling import _choice_probabilities, _decide_rows
from .steps import _bernoulli_steps
from .world_kernels import customer_rates, fatigue_multipliers, net_values

__all__ = [
    "Decisions",
    "PersonalCounts",
    "PooledPosterior",
    "bank_probabilities",
    "bernoulli_steps",
    "choice_probabilities",
    "chunk_generators",
    "customer_rates",
    "decide_batch",
    "decide_personal",
    "discount",
    "draw_from",
    "fatigue_multipliers",
    "hier_bernoulli_steps",
    "net_values",
    "personal_choice_probabilities",
    "pool_posteriors",
    "pool_priors",
    "score_bank",
    "set_num_threads",
    "update",
]

DEFAULT_CHUNK_SIZE = 2048
_threads = {"n": max(1, int(os.environ.get("SENDWISE_NUM_THREADS", os.cpu_count() or 1)))}
_pool: dict[int, ThreadPoolExecutor] = {}


class Decisions(NamedTuple):
    """One decision per row: chosen arm (int64), its sampled net-value score, whether it explored."""

    arm: np.ndarray
    score: np.ndarray
    explored: np.ndarray


class PooledPosterior(NamedTuple):
    """Cell-level Beta parameters after empirical-Bayes pooling; ``prior_*`` excludes the cell's counts."""

    alpha: np.ndarray
    beta: np.ndarray
    prior_alpha: np.ndarray
    prior_beta: np.ndarray


def set_num_threads(n_threads: int) -> None:
    """Set how many threads the batch samplers use (results do not depend on it)."""
    if as_int("n_threads", n_threads) < 1:
        raise ValueError(f"`n_threads` must be >= 1; got {n_threads!r}")
    _threads["n"] = int(n_threads)


def chunk_generators(rng: np.random.Generator | int | None, n_chunks: int) -> list[np.random.Generator]:
    """One independent ``Generator`` per chunk, derived from ``rng`` (a seed or a Generator)."""
    if isinstance(rng, bool) or not (rng is None or isinstance(rng, int | np.integer | np.random.Generator)):
        raise TypeError(f"`rng` must be None, an int seed or a numpy.random.Generator; got {rng!r}")
    if isinstance(rng, int | np.integer) and rng < 0:
        raise ValueError(f"`rng` must be None, an int seed >= 0 or a numpy.random.Generator; got {rng!r}")
    parent = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    seeds = parent.integers(0, 2**63 - 1, size=n_chunks, dtype=np.int64)
    return [np.random.Generator(np.random.PCG64(int(s))) for s in seeds]


def decide_batch(
    alpha: np.ndarray,
    beta: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    mask: np.ndarray,
    *,
    cell_idx: np.ndarray | None = None,
    cost_row_idx: np.ndarray | None = None,
    epsilon: float = 0.01,
    null_arm: int = -1,
    rng: np.random.Generator | int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Decisions:
    """Choose one arm per row by cost-aware Thompson sampling with an ε-uniform exploration floor.

    Score of an arm = Σ_o value[o]·p̃[o] − cost, p̃ drawn from the row's cell posterior; the highest
    allowed score wins (ties uniformly at random), so the no-message arm (score 0) wins when nothing
    beats it. With probability ``epsilon`` the arm is drawn uniformly from the allowed ones instead.
    A masked arm is never chosen; a row with no allowed arm is an error.

    Examples
    --------
    >>> import numpy as np
    >>> alpha, beta = np.ones((1, 1, 3)), np.ones((1, 1, 3))
    >>> mask = np.array([[True, False, True]])
    >>> d = decide_batch(alpha, beta, np.ones(1), np.zeros((1, 3)), mask, rng=0)
    >>> int(d.arm[0]) in (0, 2)
    True
    """
    posterior, economics, rows = _check_decision_inputs(
        alpha, beta, value, cost, mask, cell_idx, cost_row_idx, null_arm
    )
    epsilon = check_probability("epsilon", epsilon)
    n_rows = rows[2].shape[0]
    out = (np.empty(n_rows, np.int64), np.empty(n_rows), np.empty(n_rows, np.bool_))

    def run(sl: slice, gen: np.random.Generator) -> None:
        _decide_rows(posterior, economics, _slice_rows(rows, sl), epsilon, int(null_arm), gen,
                     (out[0][sl], out[1][sl], out[2][sl]))

    _run_chunked(run, n_rows, rng, chunk_size)
    return Decisions(*out)


def choice_probabilities(
    alpha: np.ndarray,
    beta: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    mask: np.ndarray,
    *,
    cell_idx: np.ndarray | None = None,
    cost_row_idx: np.ndarray | None = None,
    epsilon: float = 0.01,
    null_arm: int = -1,
    n_draws: int = 1000,
    rng: np.random.Generator | int | None = None,
    chunk_size: int = 256,
) -> np.ndarray:
    """Propensity of every arm per row under :func:`decide_batch`, estimated from ``n_draws`` draws.

    Returns float64 ``(n_rows, n_arms)``: exactly 0 on masked arms, at least ε/|allowed| on allowed
    ones, each row summing to 1 — what makes the decision logs usable for IPS, SNIPS and DR.
    """
    posterior, economics, rows = _check_decision_inputs(
        alpha, beta, value, cost, mask, cell_idx, cost_row_idx, null_arm
    )
    epsilon = check_probability("epsilon", epsilon)
    if as_int("n_draws", n_draws) < 1:
        raise ValueError(f"`n_draws` must be >= 1; got {n_draws!r}")
    n_rows = rows[2].shape[0]
    probs = np.empty(rows[2].shape)

    def run(sl: slice, gen: np.random.Generator) -> None:
        _choice_probabilities(posterior, economics, _slice_rows(rows, sl), epsilon, int(null_arm),
                              int(n_draws), gen, probs[sl])

    _run_chunked(run, n_rows, rng, chunk_size)
    return probs


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
    _check_posterior(alpha, beta)
    _check_writeable(alpha=alpha, beta=beta)
    n_cells, n_outcomes, n_arms = alpha.shape
    index = (
        as_index_array("cell_idx", cell_idx, n_cells),
        as_index_array("outcome_idx", outcome_idx, n_outcomes),
        as_index_array("arm_idx", arm_idx, n_arms),
    )
    successes = as_float_array("successes", successes, 1)
    failures = as_float_array("failures", failures, 1)
    check_same_length(cell_idx=index[0], outcome_idx=index[1], arm_idx=index[2],
                      successes=successes, failures=failures)
    check_non_negative("successes", successes)
    check_non_negative("failures", failures)
    _update(alpha, beta, index, successes, failures)


def discount(
    alpha: np.ndarray,
    beta: np.ndarray,
    prior_alpha: np.ndarray,
    prior_beta: np.ndarray,
    factor_per_day: float,
    days: float = 1.0,
) -> None:
    """Shrink the evidence above the prior by ``factor_per_day ** days`` in place (non-stationarity)."""
    _check_posterior(alpha, beta)
    _check_writeable(alpha=alpha, beta=beta)
    prior_alpha = as_float_array("prior_alpha", prior_alpha, 3)
    prior_beta = as_float_array("prior_beta", prior_beta, 3)
    check_shape("prior_alpha", prior_alpha, alpha.shape)
    check_shape("prior_beta", prior_beta, alpha.shape)
    check_positive("prior_alpha", prior_alpha)
    check_positive("prior_beta", prior_beta)
    factor = check_probability("factor_per_day", factor_per_day, open_low=True)
    days = as_real("days", days)
    if not (np.isfinite(days) and days >= 0):
        raise ValueError(f"`days` must be a finite number >= 0; got {days!r}")
    _discount(alpha, beta, prior_alpha, prior_beta, factor**days)


def pool_priors(
    successes: np.ndarray,
    failures: np.ndarray,
    level_groups: Sequence[np.ndarray],
    strength: float,
    base_alpha: float = 1.0,
    base_beta: float = 1.0,
) -> PooledPosterior:
    """Empirical-Bayes posteriors for cells from the counts of every level above them.

    ``successes, failures``: float64 (n_cells, n_outcomes, n_arms), each cell's own counts.
    ``level_groups``: int arrays (n_cells,), coarsest level first (e.g. region, region×industry),
    giving each cell's group id in [0, n_cells) at that level; the global level is implicit; each
    level must be nested in the one before. Level by level, a group's
    prior is ``strength`` pseudo-counts at its parent's posterior mean, so a cell with no data starts
    from its parents rather than from Beta(base_alpha, base_beta).
    """
    successes = as_float_array("successes", successes, 3)
    failures = as_float_array("failures", failures, 3)
    check_shape("failures", failures, successes.shape)
    check_non_negative("successes", successes)
    check_non_negative("failures", failures)
    strength = as_real("strength", strength)
    if not (np.isfinite(strength) and strength > 0):
        raise ValueError(f"`strength` must be a finite number > 0; got {strength!r}")
    base_alpha, base_beta = as_real("base_alpha", base_alpha), as_real("base_beta", base_beta)
    if not (base_alpha > 0 and base_beta > 0 and np.isfinite(base_alpha + base_beta)):
        raise ValueError(f"`base_alpha`, `base_beta` must be finite and > 0; got {base_alpha!r}, {base_beta!r}")
    n_cells = successes.shape[0]
    groups = [np.zeros(n_cells, np.int64)]
    for level, g in enumerate(level_groups):
        groups.append(as_index_array(f"level_groups[{level}]", g, n_cells))  # at most n_cells groups
        check_shape(f"level_groups[{level}]", groups[-1], (n_cells,))
    groups.append(np.arange(n_cells, dtype=np.int64))
    parent_alpha = base_alpha + successes.sum(axis=0, keepdims=True)
    parent_beta = base_beta + failures.sum(axis=0, keepdims=True)
    for level in range(1, len(groups)):
        parent_idx = _parent_index(groups[level - 1], groups[level], level)
        n_groups = parent_idx.shape[0]
        group_counts = (_group_sum(successes, groups[level], n_groups), _group_sum(failures, groups[level], n_groups))
        out = (np.empty_like(group_counts[0]), np.empty_like(group_counts[0]))
        _shrink_to_parent((parent_alpha, parent_beta), parent_idx, group_counts, float(strength), out)
        parent_alpha, parent_beta = out
    return PooledPosterior(parent_alpha, parent_beta, parent_alpha - successes, parent_beta - failures)


def bernoulli_steps(
    alpha: np.ndarray,
    beta: np.ndarray,
    cell_stream: np.ndarray,
    uniforms: np.ndarray,
    true_rates: np.ndarray,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Thompson sampling one step at a time on a Bernoulli stream; learns outcome 0 in place.

    Step t serves cell ``cell_stream[t]``, is rewarded when ``uniforms[t] < true_rates[cell, arm]`` and
    updates before step t+1 decides. Returns the chosen arms, int64 (n_steps,).
    """
    _check_posterior(alpha, beta)
    _check_writeable(alpha=alpha, beta=beta)
    n_cells, _, n_arms = alpha.shape
    cell_stream = as_index_array("cell_stream", cell_stream, n_cells)
    uniforms = as_float_array("uniforms", uniforms, 1)
    check_same_length(cell_stream=cell_stream, uniforms=uniforms)
    true_rates = as_float_array("true_rates", true_rates, 2)
    check_shape("true_rates", true_rates, (n_cells, n_arms))
    check_unit_interval("true_rates", true_rates)
    out = np.empty(cell_stream.shape[0], np.int64)
    _bernoulli_steps((alpha, beta), cell_stream, uniforms, true_rates, chunk_generators(rng, 1)[0], out)
    return out



def decide_personal(
    alpha: np.ndarray,
    beta: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    mask: np.ndarray,
    personal: PersonalCounts,
    customer_idx: np.ndarray,
    *,
    cell_idx: np.ndarray | None = None,
    cost_row_idx: np.ndarray | None = None,
    epsilon: float = 0.01,
    null_arm: int = -1,
    rng: np.random.Generator | int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Decisions:
    """:func:`decide_batch` on personalised posteriors: the row's cell plus its customer's own counts.

    Row i samples arm a from its cell's Beta parameters plus ``personal.weight`` times customer
    ``customer_idx[i]``'s successes and failures on the channel of a. With weight 0 the result equals
    :func:`decide_batch`'s for the same ``rng`` and ``chunk_size``.
    """
    posterior, economics, rows = _check_decision_inputs(
        alpha, beta, value, cost, mask, cell_idx, cost_row_idx, null_arm
    )
    personal, customer_idx = _check_personal(personal, customer_idx, alpha.shape, rows[2].shape[0])
    epsilon = check_probability("epsilon", epsilon)
    n_rows = rows[2].shape[0]
    out = (np.empty(n_rows, np.int64), np.empty(n_rows), np.empty(n_rows, np.bool_))

    def run(sl: slice, gen: np.random.Generator) -> None:
        _decide_personal_rows(posterior, personal, economics, (rows[0][sl], rows[1][sl], customer_idx[sl],
                              rows[2][sl]), epsilon, null_arm, gen, (out[0][sl], out[1][sl], out[2][sl]))

    _run_chunked(run, n_rows, rng, chunk_size)
    return Decisions(*out)


def personal_choice_probabilities(
    alpha: np.ndarray,
    beta: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    mask: np.ndarray,
    personal: PersonalCounts,
    customer_idx: np.ndarray,
    *,
    cell_idx: np.ndarray | None = None,
    cost_row_idx: np.ndarray | None = None,
    epsilon: float = 0.01,
    null_arm: int = -1,
    n_draws: int = 1000,
    rng: np.random.Generator | int | None = None,
    chunk_size: int = 256,
) -> np.ndarray:
    """Propensities under :func:`decide_personal`, as :func:`choice_probabilities` estimates them."""
    posterior, economics, rows = _check_decision_inputs(
        alpha, beta, value, cost, mask, cell_idx, cost_row_idx, null_arm
    )
    personal, customer_idx = _check_personal(personal, customer_idx, alpha.shape, rows[2].shape[0])
    epsilon = check_probability("epsilon", epsilon)
    if int(n_draws) < 1:
        raise ValueError(f"`n_draws` must be >= 1; got {n_draws!r}")
    probs = np.empty(rows[2].shape)

    def run(sl: slice, gen: np.random.Generator) -> None:
        _personal_choice_probabilities(posterior, personal, economics, (rows[0][sl], rows[1][sl],
                                       customer_idx[sl], rows[2][sl]), (epsilon, int(null_arm)),
                                       int(n_draws), gen, probs[sl])

    _run_chunked(run, rows[2].shape[0], rng, chunk_size)
    return probs


def pool_posteriors(
    successes: np.ndarray, failures: np.ndarray, level_groups: Sequence[np.ndarray], strength: float
) -> PooledPosterior:
    """Cell posteriors pooled from every level above them, lending at most the evidence each level holds.

    Like :func:`pool_priors` (same arguments, coarsest level first, global implicit), except that the
    global level's prior is the grand Beta over all arms, and a parent's posterior is lent to its
    children as a prior scaled down to ``strength`` pseudo-counts only when it holds more. So a cold
    start is close to Beta(1, 1) instead of ``strength`` pseudo-counts at 1/2, and a cell with no data
    takes its parent's mean.
    """
    successes = as_float_array("successes", successes, 3)
    failures = as_float_array("failures", failures, 3)
    check_shape("failures", failures, successes.shape)
    check_non_negative("successes", successes)
    check_non_negative("failures", failures)
    cell_groups, n_groups = _stack_levels(level_groups, successes.shape[0])
    stacked = (np.zeros((n_groups, *successes.shape[1:])), np.zeros((n_groups, *successes.shape[1:])))
    for level in range(cell_groups.shape[1]):
        _sum_by_group(successes, cell_groups[:, level], stacked[0])
        _sum_by_group(failures, cell_groups[:, level], stacked[1])
    out = (np.empty_like(successes), np.empty_like(successes))
    _pool_cells(stacked, cell_groups, _check_finite_positive("strength", strength), out)
    return PooledPosterior(out[0], out[1], out[0] - successes, out[1] - failures)


def hier_bernoulli_steps(
    level_groups: Sequence[np.ndarray],
    cell_stream: np.ndarray,
    uniforms: np.ndarray,
    true_rates: np.ndarray,
    *,
    strength: float,
    sharpness: float = 1.0,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Hierarchical Thompson sampling one step at a time on a Bernoulli stream, from no data.

    Step t serves cell ``cell_stream[t]``, is rewarded when ``uniforms[t] < true_rates[cell, arm]`` and
    learns before step t+1. Each step draws from Beta(sharpness·α, sharpness·β), (α, β) being the
    cell's posterior as :func:`pool_posteriors` gives it. Returns the chosen arms, int64 (n_steps,).
    """
    true_rates = as_float_array("true_rates", true_rates, 2)
    n_cells, n_arms = true_rates.shape
    cell_stream = as_index_array("cell_stream", cell_stream, n_cells)
    uniforms = as_float_array("uniforms", uniforms, 1)
    check_same_length(cell_stream=cell_stream, uniforms=uniforms)
    pooling = (_check_finite_positive("strength", strength), _check_finite_positive("sharpness", sharpness))
    cell_groups, n_groups = _stack_levels(level_groups, n_cells)
    out = np.empty(cell_stream.shape[0], np.int64)
    _hier_bernoulli_steps((np.zeros((n_groups, n_arms)), np.zeros((n_groups, n_arms))), cell_groups, pooling,
                          (cell_stream, uniforms), true_rates, chunk_generators(rng, 1)[0], out)
    return out


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
    value, cost = _check_economics(alpha, beta, value, cost)
    n_cells, _, n_arms = alpha.shape
    banks = _check_bank_rows(bank_cell, bank_cost_row, needed, (n_cells, cost.shape[0], n_arms))
    if as_int("n_draws", n_draws) < 1:
        raise ValueError(f"`n_draws` must be >= 1; got {n_draws!r}")
    if not -1 <= as_int("null_arm", null_arm) < n_arms:
        raise ValueError(f"`null_arm` must be -1 or lie in [0, {n_arms}); got {null_arm!r}")
    if null_arm >= 0:  # the null arm's score is a constant: always "sampled"
        banks = (banks[0], banks[1], banks[2].copy())
        banks[2][:, null_arm] = True
    out = np.empty((banks[0].shape[0], int(n_draws), n_arms))

    def run(sl: slice, gen: np.random.Generator) -> None:
        _score_banks((alpha, beta), (value, cost), _slice_rows(banks, sl), int(n_draws), int(null_arm), gen, out[sl])

    _run_chunked(run, banks[0].shape[0], rng, chunk_size)
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
    outside = np.flatnonzero(~((uniforms >= 0.0) & (uniforms < 1.0)))
    if outside.size:
        raise ValueError(f"`uniforms` must lie in [0, 1); {outside.size} of {uniforms.size} values do not "
                         f"(first: uniforms[{outside[0]}] = {uniforms[outside[0]].item()!r})")
    totals = probs.sum(axis=1)
    off = np.flatnonzero(~(np.abs(totals - 1.0) <= 1e-9))
    if off.size:
        raise ValueError(f"`probs` rows must sum to 1 (within 1e-09); {off.size} rows do not "
                         f"(first: row {off[0]} sums to {totals[off[0]].item()!r})")
    below = (np.cumsum(probs, axis=1) <= uniforms[:, None]).sum(axis=1)
    last_positive = probs.shape[1] - 1 - np.argmax(probs[:, ::-1] > 0.0, axis=1)
    return np.minimum(below, last_positive).astype(np.int64)


def _check_finite_positive(name: str, value: float) -> float:
    number = as_real(name, value)
    if not (np.isfinite(number) and number > 0):
        raise ValueError(f"`{name}` must be a finite number > 0; got {value!r}")
    return number


def _stack_levels(level_groups: Sequence[np.ndarray], n_cells: int) -> tuple[np.ndarray, int]:
    """Each cell's row at every level (global, ``level_groups`` coarsest first, the cell) in one stack."""
    levels = [np.zeros(n_cells, np.int64)]
    for level, g in enumerate(level_groups):
        levels.append(as_index_array(f"level_groups[{level}]", g, np.iinfo(np.int64).max))
        check_shape(f"level_groups[{level}]", levels[-1], (n_cells,))
        _parent_index(levels[-2], levels[-1], len(levels) - 1)
    levels.append(np.arange(n_cells, dtype=np.int64))
    offsets = np.cumsum([0] + [int(g.max()) + 1 if g.size else 0 for g in levels])
    cell_groups = np.stack([g + offset for g, offset in zip(levels, offsets[:-1], strict=True)], axis=1)
    return np.ascontiguousarray(cell_groups), int(offsets[-1])

def _check_posterior(alpha: np.ndarray, beta: np.ndarray) -> None:
    """Posteriors are updated in place, so they must already be float64, C-contiguous, 3-d and > 0."""
    for name, arr in (("alpha", alpha), ("beta", beta)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float64 or not arr.flags.c_contiguous:
            raise TypeError(f"`{name}` must be a C-contiguous float64 ndarray")
        if arr.ndim != 3:
            raise ValueError(f"`{name}` must have shape (n_cells, n_outcomes, n_arms); got {arr.shape}")
        as_float_array(name, arr, 3)
        check_positive(name, arr)
    check_shape("beta", beta, alpha.shape)


def _check_writeable(**arrays: np.ndarray) -> None:
    """Arrays updated in place must be writeable (a read-only view would fail deep inside numba)."""
    for name, arr in arrays.items():
        if not arr.flags.writeable:
            raise TypeError(f"`{name}` is updated in place, so it must be a writeable ndarray; got a read-only one")


def _check_economics(alpha, beta, value, cost):  # noqa: ANN001, ANN202
    """Checked posterior, and ``value`` (n_outcomes,) and ``cost`` (n_cost_rows, n_arms) as float arrays."""
    _check_posterior(alpha, beta)
    _, n_outcomes, n_arms = alpha.shape
    value = as_float_array("value", value, 1)
    check_shape("value", value, (n_outcomes,))
    cost = as_float_array("cost", cost, 2)
    if cost.shape[1] != n_arms:
        raise ValueError(f"`cost` must have shape (n_cost_rows, {n_arms}); got {cost.shape}")
    return value, cost


def _check_decision_inputs(alpha, beta, value, cost, mask, cell_idx, cost_row_idx, null_arm):  # noqa: ANN001, ANN202
    value, cost = _check_economics(alpha, beta, value, cost)
    n_cells, _, n_arms = alpha.shape
    mask_arr = np.asarray(mask)
    if mask_arr.ndim != 2:
        raise ValueError(f"`mask` must have shape (n_rows, {n_arms}); got {mask_arr.shape}")
    n_rows = mask_arr.shape[0]
    mask_arr = as_mask("mask", mask_arr, (n_rows, n_arms))
    cell_idx = np.zeros(n_rows, np.int64) if cell_idx is None else cell_idx
    cost_row_idx = np.zeros(n_rows, np.int64) if cost_row_idx is None else cost_row_idx
    cell_idx = as_index_array("cell_idx", cell_idx, n_cells)
    cost_row_idx = as_index_array("cost_row_idx", cost_row_idx, cost.shape[0])
    check_same_length(mask=mask_arr, cell_idx=cell_idx, cost_row_idx=cost_row_idx)
    if not -1 <= as_int("null_arm", null_arm) < n_arms:
        raise ValueError(f"`null_arm` must be -1 or lie in [0, {n_arms}); got {null_arm!r}")
    empty = np.flatnonzero(~mask_arr.any(axis=1))
    if empty.size:
        raise ValueError(
            f"`mask` must allow at least one arm per row; {empty.size} rows allow none (first: row {empty[0]})"
        )
    return (alpha, beta), (value, cost), (cell_idx, cost_row_idx, mask_arr)


def _slice_rows(rows: tuple[np.ndarray, np.ndarray, np.ndarray], sl: slice) -> tuple:
    return rows[0][sl], rows[1][sl], rows[2][sl]


def _run_chunked(
    run: Callable[[slice, np.random.Generator], None],
    n_rows: int,
    rng: np.random.Generator | int | None,
    chunk_size: int,
) -> None:
    """Call ``run(slice, generator)`` for each chunk of rows, on the engine's threads (nogil kernels)."""
    if as_int("chunk_size", chunk_size) < 1:
        raise ValueError(f"`chunk_size` must be >= 1; got {chunk_size!r}")
    starts = range(0, n_rows, int(chunk_size))
    gens = chunk_generators(rng, len(starts))
    slices = [slice(s, min(n_rows, s + int(chunk_size))) for s in starts]
    n_threads = min(_threads["n"], len(slices))
    if n_threads <= 1:
        for sl, gen in zip(slices, gens, strict=True):
            run(sl, gen)
        return
    pool = _pool.get(n_threads) or _pool.setdefault(n_threads, ThreadPoolExecutor(n_threads, "sendwise-engine"))
    for future in [pool.submit(run, sl, gen) for sl, gen in zip(slices, gens, strict=True)]:
        future.result()


def _run_split(run: Callable[[slice], None], n_rows: int, chunk_size: int) -> None:
    """Call ``run(slice)`` for each chunk of rows on the engine's threads, for kernels that draw nothing."""
    if as_int("chunk_size", chunk_size) < 1:
        raise ValueError(f"`chunk_size` must be >= 1; got {chunk_size!r}")
    slices = [slice(s, min(n_rows, s + int(chunk_size))) for s in range(0, n_rows, int(chunk_size))]
    n_threads = min(_threads["n"], len(slices))
    if n_threads <= 1:
        for sl in slices:
            run(sl)
        return
    pool = _pool.get(n_threads) or _pool.setdefault(n_threads, ThreadPoolExecutor(n_threads, "sendwise-engine"))
    for future in [pool.submit(run, sl) for sl in slices]:
        future.result()


def _parent_index(parent_groups: np.ndarray, child_groups: np.ndarray, level: int) -> np.ndarray:
    """Parent group of every child group; each child must sit under exactly one parent."""
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
    return parent_idx


def _group_sum(counts: np.ndarray, group_idx: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.zeros((n_groups,) + counts.shape[1:])
    _sum_by_group(counts, group_idx, out)
    return out
