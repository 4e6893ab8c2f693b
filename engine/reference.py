"""Plain-numpy twins of the engine kernels: slow, obviously right, no numba.

Each function takes the arguments of the public wrapper of the same name in :mod:`sendwise.engine`
and means the same by them, but returns new arrays instead of updating its inputs and trusts its
input (no validation). The tests compare the kernels with these twins — exactly for the
deterministic ones, in distribution for the samplers (the twins draw from one ``numpy`` Generator,
so their streams differ from the kernels'). The benchmarks use them as the numpy baseline, so the
batch sampler is vectorised over blocks of rows rather than looping per row and arm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import Decisions, PooledPosterior, chunk_generators

BLOCK_ROWS = 4096


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
    chunk_size: int = BLOCK_ROWS,
) -> Decisions:
    """Cost-aware Thompson sampling with an ε-uniform floor, ``chunk_size`` rows at a time.

    Per row: a Beta draw per allowed arm and per outcome with nonzero value, score Σ value·p − cost,
    -inf on masked arms, exactly 0 on ``null_arm``; the best score wins, ties uniformly at random;
    with probability ``epsilon`` the arm is instead uniform over the allowed ones.
    """
    gen = np.random.default_rng(rng)
    n_rows = mask.shape[0]
    cell_idx = np.zeros(n_rows, np.int64) if cell_idx is None else np.asarray(cell_idx)
    cost_row_idx = np.zeros(n_rows, np.int64) if cost_row_idx is None else np.asarray(cost_row_idx)
    arm, score, explored = np.empty(n_rows, np.int64), np.empty(n_rows), np.empty(n_rows, np.bool_)
    for start in range(0, n_rows, chunk_size):
        rows = slice(start, start + chunk_size)
        scores = _sample_scores(alpha[cell_idx[rows]], beta[cell_idx[rows]], value, cost[cost_row_idx[rows]],
                                mask[rows], null_arm, gen)
        explore = gen.random(scores.shape[0]) < epsilon
        choice = _argmax_random_ties(scores, gen)
        choice[explore] = _uniform_allowed(mask[rows][explore], gen)
        arm[rows], score[rows], explored[rows] = choice, scores[np.arange(choice.size), choice], explore
    return Decisions(arm, score, explored)


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
) -> np.ndarray:
    """Propensities by definition, float64 (n_rows, n_arms): the ε-uniform floor mixed with how often
    :func:`decide_batch` without exploration picks each arm over ``n_draws`` copies of the row.

    Rows are handled one at a time, so unlike the engine's wrapper there is no ``chunk_size``.
    """
    gen = np.random.default_rng(rng)
    n_rows, n_arms = mask.shape
    cell_idx = np.zeros(n_rows, np.int64) if cell_idx is None else np.asarray(cell_idx)
    cost_row_idx = np.zeros(n_rows, np.int64) if cost_row_idx is None else np.asarray(cost_row_idx)
    probs = np.zeros((n_rows, n_arms))
    for i in range(n_rows):
        copies = np.repeat(mask[i : i + 1], n_draws, axis=0)
        greedy = decide_batch(alpha, beta, value, cost, copies, cell_idx=np.full(n_draws, cell_idx[i]),
                              cost_row_idx=np.full(n_draws, cost_row_idx[i]), epsilon=0.0, null_arm=null_arm,
                              rng=gen, chunk_size=n_draws)
        frequency = np.bincount(greedy.arm, minlength=n_arms) / n_draws
        probs[i] = np.where(mask[i], (1.0 - epsilon) * frequency + epsilon / mask[i].sum(), 0.0)
    return probs


def update(
    alpha: np.ndarray,
    beta: np.ndarray,
    cell_idx: np.ndarray,
    outcome_idx: np.ndarray,
    arm_idx: np.ndarray,
    successes: np.ndarray,
    failures: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """New ``(alpha, beta)`` with every event's weights added; repeated triples all count."""
    alpha, beta = alpha.copy(), beta.copy()
    index = (np.asarray(cell_idx), np.asarray(outcome_idx), np.asarray(arm_idx))
    np.add.at(alpha, index, successes)
    np.add.at(beta, index, failures)
    return alpha, beta


def discount(
    alpha: np.ndarray,
    beta: np.ndarray,
    prior_alpha: np.ndarray,
    prior_beta: np.ndarray,
    factor_per_day: float,
    days: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """New ``(alpha, beta)`` with the evidence above the prior scaled by ``factor_per_day ** days``."""
    factor = float(factor_per_day) ** float(days)
    return prior_alpha + factor * (alpha - prior_alpha), prior_beta + factor * (beta - prior_beta)


def pool_priors(
    successes: np.ndarray,
    failures: np.ndarray,
    level_groups: Sequence[np.ndarray],
    strength: float,
    base_alpha: float = 1.0,
    base_beta: float = 1.0,
) -> PooledPosterior:
    """Empirical-Bayes cell posteriors, computed cell by cell down the hierarchy.

    Every cell tracks the posterior of its own group at each level: the global one is
    Beta(base + all counts); one level down it is ``strength`` pseudo-counts at the previous level's
    mean plus the counts of the cells sharing the group; the last level is the cell itself.
    """
    n_cells = successes.shape[0]
    levels = [np.asarray(g) for g in level_groups] + [np.arange(n_cells)]
    alpha = np.broadcast_to(base_alpha + successes.sum(axis=0, keepdims=True), successes.shape)
    beta = np.broadcast_to(base_beta + failures.sum(axis=0, keepdims=True), failures.shape)
    for groups in levels:
        mean = alpha / (alpha + beta)
        alpha = strength * mean + _group_totals(successes, groups)
        beta = strength * (1.0 - mean) + _group_totals(failures, groups)
    return PooledPosterior(alpha, beta, alpha - successes, beta - failures)


def bernoulli_steps(
    alpha: np.ndarray,
    beta: np.ndarray,
    cell_stream: np.ndarray,
    uniforms: np.ndarray,
    true_rates: np.ndarray,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thompson sampling one step at a time on outcome 0; returns ``(arms, alpha, beta)``.

    Step t draws every arm of cell ``cell_stream[t]``, takes the best (ties at random), is rewarded
    when ``uniforms[t] < true_rates[cell, arm]`` and updates before step t+1.
    """
    gen = np.random.default_rng(rng)
    alpha, beta = alpha.copy(), beta.copy()
    arms = np.empty(len(cell_stream), np.int64)
    for t, c in enumerate(cell_stream):
        draws = gen.beta(alpha[c, 0], beta[c, 0])
        best = np.flatnonzero(draws == draws.max())
        arms[t] = arm = best[0] if best.size == 1 else gen.choice(best)
        if uniforms[t] < true_rates[c, arm]:
            alpha[c, 0, arm] += 1.0
        else:
            beta[c, 0, arm] += 1.0
    return arms, alpha, beta


def _sample_scores(
    alpha_rows: np.ndarray,
    beta_rows: np.ndarray,
    value: np.ndarray,
    cost_rows: np.ndarray,
    mask: np.ndarray,
    null_arm: int,
    gen: np.random.Generator,
) -> np.ndarray:
    """One Thompson draw of net value per row and arm, (n_rows, n_arms): -inf if masked, 0 on the null arm.

    ``alpha_rows, beta_rows``: (n_rows, n_outcomes, n_arms), each row's cell; ``cost_rows``: (n_rows, n_arms).
    Only allowed, sampled arms and outcomes with nonzero value are drawn.
    """
    sampled = mask.copy()
    if null_arm >= 0:
        sampled[:, null_arm] = False
    scores = np.where(mask, 0.0, -np.inf)
    net = -cost_rows[sampled]
    for o in np.flatnonzero(value):
        net += value[o] * gen.beta(alpha_rows[:, o][sampled], beta_rows[:, o][sampled])
    scores[sampled] = net
    return scores


def _argmax_random_ties(scores: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Column of each row's largest score; rows with several maxima pick one uniformly."""
    ties = scores == scores.max(axis=1, keepdims=True)
    choice = ties.argmax(axis=1)
    tied = np.flatnonzero(ties.sum(axis=1) > 1)
    if tied.size:
        choice[tied] = np.where(ties[tied], gen.random(ties[tied].shape), -1.0).argmax(axis=1)
    return choice


def _uniform_allowed(mask: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """One allowed column per row, uniformly: the k-th allowed one with k uniform in [0, n_allowed)."""
    k = (gen.random(mask.shape[0]) * mask.sum(axis=1)).astype(np.int64)
    return (np.cumsum(mask, axis=1) > k[:, None]).argmax(axis=1)


def _group_totals(counts: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For every cell, the sum of ``counts`` over the cells sharing its group, (n_cells, ...)."""
    totals = np.zeros((int(groups.max(initial=-1)) + 1, *counts.shape[1:]))
    np.add.at(totals, groups, counts)
    return totals[groups]


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
    """Thompson draws of net value, float64 (n_banks, n_draws, n_arms), bank by bank with numpy's sampler.

    Each bank's Beta draws come in one call shaped (draw, arm, outcome), the order in which the kernel
    draws them, from the generator :func:`sendwise.engine.chunk_generators` gives its chunk of
    ``chunk_size`` banks: so this twin replays the engine's stream. 0 on ``null_arm``, -inf where not
    ``needed``.
    """
    n_banks, n_arms = needed.shape
    sampled = np.array(needed, np.bool_)
    if null_arm >= 0:
        sampled[:, null_arm] = False
    outcomes = np.flatnonzero(value)
    scores = np.full((n_banks, n_draws, n_arms), -np.inf)
    if null_arm >= 0:
        scores[:, :, null_arm] = 0.0
    gens = chunk_generators(rng, -(-n_banks // chunk_size))
    for b in range(n_banks):
        arms, c = np.flatnonzero(sampled[b]), bank_cell[b]
        shape = (n_draws, arms.size, outcomes.size)
        draws = gens[b // chunk_size].beta(np.broadcast_to(alpha[c][np.ix_(outcomes, arms)].T, shape),
                                          np.broadcast_to(beta[c][np.ix_(outcomes, arms)].T, shape))
        net = np.broadcast_to(-cost[bank_cost_row[b], arms], shape[:2])
        for k in range(outcomes.size):
            net = net + value[outcomes[k]] * draws[:, :, k]
        scores[b][:, arms] = net
    return scores


def bank_probabilities(
    scores: np.ndarray,
    bank_idx: np.ndarray,
    mask: np.ndarray,
    epsilon: float = 0.01,
    null_arm: int = -1,
) -> np.ndarray:
    """Propensities by definition, float64 (n_rows, n_arms), one row at a time (no deduplication).

    Per draw of the row's bank, the allowed arms at the maximum share the draw equally; the shares are
    summed over draws in order (a cumulative sum, as the kernel adds them) and mixed with the ε-uniform
    floor. ``null_arm`` is accepted for the wrapper's signature; the scores already hold its 0.
    """
    n_rows, n_arms = np.shape(mask)
    n_draws = scores.shape[1]
    probs = np.zeros((n_rows, n_arms))
    for i in range(n_rows):
        allowed = np.flatnonzero(mask[i])
        draws = scores[bank_idx[i]][:, allowed]
        ties = draws == draws.max(axis=1, keepdims=True)
        share = np.cumsum(ties / ties.sum(axis=1, keepdims=True), axis=0)[-1]
        probs[i, allowed] = (1.0 - epsilon) * share / n_draws + epsilon / allowed.size
    return probs
