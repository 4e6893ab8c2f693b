"""Plain-numpy twins of the engine's public wrappers: slow, obviously right, no numba.

One contract for every twin:

- **Signature**: the twin of ``sendwise.engine.<name>`` is ``reference.<name>`` with the very same
  parameters (names, order, defaults, keyword-only markers), so a call to one is a call to the other.
- **Effects and result**: it updates the same arrays in place and returns the same type as the
  wrapper (the same ``NamedTuple`` where the wrapper returns one).
- **Input**: trusted. No validation and no coercion: pass arrays of the wrapper's dtypes and shapes.
- **Randomness**: ``rng`` is a seed or a ``numpy.random.Generator``, split into the wrapper's per-chunk
  generators by :func:`sendwise.engine.chunk_generators` (which reads it with ``as_generator``). Each
  twin consumes its generators in its kernel's order, so it replays the kernel's stream up to the last
  bits of ``pow``/``log``; arguments that only split work across threads (``chunk_size`` of a
  deterministic wrapper) are accepted and change nothing.

The tests compare kernels with these twins, exactly where the arithmetic is the same and in
distribution otherwise; the benchmarks use them as the numpy baseline, so loops run over rows or
steps, never over single draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .parallel import chunk_generators
from .posterior import PooledPosterior
from .world import FatigueMultipliers, NetValues


def update(
    alpha: np.ndarray,
    beta: np.ndarray,
    cell_idx: np.ndarray,
    outcome_idx: np.ndarray,
    arm_idx: np.ndarray,
    successes: np.ndarray,
    failures: np.ndarray,
) -> None:
    """Add every event's weights to ``alpha`` and ``beta`` in place; repeated triples all count."""
    index = (cell_idx, outcome_idx, arm_idx)
    np.add.at(alpha, index, successes)
    np.add.at(beta, index, failures)


def pooled_posterior(
    level_successes: Sequence[np.ndarray], level_failures: Sequence[np.ndarray], strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """One cell's ``(alpha, beta)`` per arm from its groups' counts at each level, global first.

    The grand Beta over arms, Beta(1 + Σ global successes, 1 + Σ global failures), is the global
    level's parent; each parent lends its posterior, scaled down to ``strength`` pseudo-counts if it
    holds more, as the prior of the level below.
    """
    n_arms = level_successes[0].shape[0]
    alpha = np.full(n_arms, 1.0 + level_successes[0].sum())
    beta = np.full(n_arms, 1.0 + level_failures[0].sum())
    for successes, failures in zip(level_successes, level_failures, strict=True):
        lent = np.minimum(1.0, strength / (alpha + beta))
        alpha, beta = lent * alpha + successes, lent * beta + failures
    return alpha, beta


def pool_posteriors(
    successes: np.ndarray, failures: np.ndarray, level_groups: Sequence[np.ndarray], strength: float
) -> PooledPosterior:
    """Every cell's pooled Beta parameters, float64 (n_cells, n_outcomes, n_arms), computed cell by cell."""
    n_cells = successes.shape[0]
    levels = _levels(level_groups, n_cells)
    alpha, beta = np.empty_like(successes), np.empty_like(successes)
    for c in range(n_cells):
        members = [groups == groups[c] for groups in levels]
        for o in range(successes.shape[1]):
            alpha[c, o], beta[c, o] = pooled_posterior([successes[m, o].sum(axis=0) for m in members],
                                                       [failures[m, o].sum(axis=0) for m in members], strength)
    return PooledPosterior(alpha, beta, alpha - successes, beta - failures)


def bernoulli_steps(
    alpha: np.ndarray,
    beta: np.ndarray,
    cell_stream: np.ndarray,
    uniforms: np.ndarray,
    true_rates: np.ndarray,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Thompson sampling one step at a time on outcome 0, learning it in place; returns the chosen arms.

    Step t draws every arm of cell ``cell_stream[t]``, takes the best (ties at random), is rewarded
    when ``uniforms[t] < true_rates[cell, arm]`` and updates before step t+1.
    """
    gen = chunk_generators(rng, 1)[0]
    arms = np.empty(len(cell_stream), np.int64)
    for t, c in enumerate(cell_stream):
        arms[t] = arm = _argmax_random_ties(gen.beta(alpha[c, 0], beta[c, 0]), gen)
        if uniforms[t] < true_rates[c, arm]:
            alpha[c, 0, arm] += 1.0
        else:
            beta[c, 0, arm] += 1.0
    return arms


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
    """Hierarchical Thompson sampling step by step from no data; returns the chosen arms, int64 (n_steps,).

    Every level (global, ``level_groups``, the cells) keeps counts per group; step t pools cell
    ``cell_stream[t]``'s posterior from its groups' counts (:func:`pooled_posterior`), draws from
    Beta(sharpness·α, sharpness·β), and adds the reward to the chosen arm at every level.
    """
    gen = chunk_generators(rng, 1)[0]
    n_arms = true_rates.shape[1]
    levels = _levels(level_groups, true_rates.shape[0])
    successes = [np.zeros((int(groups.max(initial=-1)) + 1, n_arms)) for groups in levels]
    failures = [np.zeros_like(counts) for counts in successes]
    arms = np.empty(len(cell_stream), np.int64)
    for t, c in enumerate(cell_stream):
        groups = [level[c] for level in levels]
        alpha, beta = pooled_posterior([s[g] for s, g in zip(successes, groups, strict=True)],
                                       [f[g] for f, g in zip(failures, groups, strict=True)], strength)
        arms[t] = arm = _argmax_random_ties(gen.beta(sharpness * alpha, sharpness * beta), gen)
        learned = successes if uniforms[t] < true_rates[c, arm] else failures
        for counts, g in zip(learned, groups, strict=True):
            counts[g, arm] += 1.0
    return arms


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
    draws them, from its chunk's generator. 0 on ``null_arm``, -inf where not ``needed``.
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
    *,
    chunk_size: int = 64,
) -> np.ndarray:
    """Propensities by definition, float64 (n_rows, n_arms), one row at a time (no deduplication).

    Per draw of the row's bank, the allowed arms at the maximum share the draw equally; the shares are
    summed over draws in order (a cumulative sum, as the kernel adds them) and mixed with the ε-uniform
    floor. The scores already hold ``null_arm``'s 0.
    """
    n_rows, n_arms = mask.shape
    n_draws = scores.shape[1]
    probs = np.zeros((n_rows, n_arms))
    for i in range(n_rows):
        allowed = np.flatnonzero(mask[i])
        draws = scores[bank_idx[i]][:, allowed]
        ties = draws == draws.max(axis=1, keepdims=True)
        share = np.cumsum(ties / ties.sum(axis=1, keepdims=True), axis=0)[-1]
        probs[i, allowed] = (1.0 - epsilon) * share / n_draws + epsilon / allowed.size
    return probs


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
    """Each outcome's rate draws, float64 (n_banks, n_draws, len(outcomes), n_arms): ``score_bank`` with value 1
    on the outcome and no cost, one generator per outcome split from ``rng``."""
    n_outcomes, n_arms = alpha.shape[1:]
    gens = chunk_generators(rng, len(outcomes))
    no_cost, zeros = np.zeros((1, n_arms)), np.zeros(len(bank_cell), np.int64)
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
    """Propensities by definition, float64 (n_rows, n_arms): each row's net-value draws from its scaled rates,
    then ``bank_probabilities`` of that row alone."""
    n_rows, n_arms = mask.shape
    probs = np.zeros((n_rows, n_arms))
    for i in range(n_rows):
        by_arm = np.where(arm_channel >= 0, factor[i][:, arm_channel], 1.0)  # (n_outcomes, n_arms)
        scaled = np.where(mask[i], rates[bank_idx[i]], 0.0) * by_arm[None]  # (n_draws, n_outcomes, n_arms)
        net = np.zeros(scaled.shape[::2])
        for o in range(value.shape[0]):
            net = net + value[o] * scaled[:, o]
        net = np.where(mask[i][None], net - cost[cost_row_idx[i]], -np.inf)
        probs[i] = bank_probabilities(net[None], np.zeros(1, np.int64), mask[i:i + 1], epsilon)[0]
    return probs


def customer_rates(
    channel_scale: np.ndarray,
    unsubscribe_rate: np.ndarray,
    hour_curves: np.ndarray,
    curve_row: np.ndarray,
    hour_shift: np.ndarray,
    arm_channel: np.ndarray,
    arm_hour: np.ndarray,
) -> np.ndarray:
    """float64 (n_rows, 2, n_arms): clipped click rate at the shifted hour, unsubscribe rate; 0 on no-message."""
    n_hours = hour_curves.shape[2]
    message = arm_channel >= 0
    channel, hour = arm_channel[message], arm_hour[message]
    shifted_hour = (hour[None, :] - hour_shift[:, None]) % n_hours
    weight = hour_curves[curve_row[:, None], channel[None, :], shifted_hour]
    out = np.zeros((channel_scale.shape[0], 2, arm_channel.shape[0]))
    out[:, 0, message] = np.minimum(1.0, channel_scale[:, channel] * weight)
    out[:, 1, message] = unsubscribe_rate[:, channel]
    return out


def fatigue_multipliers(
    recent_sends: np.ndarray,
    click_power: np.ndarray,
    unsubscribe_power: np.ndarray,
    cross_channel_scale: float,
    cross_channel_power: float,
    lift: np.ndarray,
) -> FatigueMultipliers:
    """Click and unsubscribe multipliers of one more message per channel, float64 (n_rows, n_channels)."""
    n = recent_sends + 1.0
    total = recent_sends.sum(axis=1, keepdims=True)
    touched = (recent_sends > 0).sum(axis=1, keepdims=True) + (recent_sends == 0)
    boost = np.where(touched < 2, 1.0, np.where(touched == 2, lift[:, :1], lift[:, 1:]))
    cross = (1.0 + (total + 1) / cross_channel_scale) ** -cross_channel_power
    return FatigueMultipliers(n ** -click_power * cross * boost, n ** unsubscribe_power)


def net_values(
    rates: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    cost_row_idx: np.ndarray,
    mask: np.ndarray,
    arm: np.ndarray,
) -> NetValues:
    """Expected net value of the chosen arm and of the best allowed arm, float64 (n_rows,) each."""
    net = np.einsum("o,ioa->ia", value, rates) - cost[cost_row_idx]
    chosen = net[np.arange(net.shape[0]), arm]
    best = np.where(mask, net, -np.inf).max(axis=1)
    return NetValues(chosen, best)


def _levels(level_groups: Sequence[np.ndarray], n_cells: int) -> list[np.ndarray]:
    """Each cell's group at every level: global (all 0), ``level_groups`` coarsest first, the cell itself."""
    return [np.zeros(n_cells, np.int64), *(np.asarray(g) for g in level_groups), np.arange(n_cells)]


def _argmax_random_ties(scores: np.ndarray, gen: np.random.Generator) -> int:
    """Index of the largest finite score; each tie met on the way replaces the leader with probability 1/ties.

    As the kernels' reservoir, a draw of ``gen`` is taken only where a score equals the best so far, so
    scores without such ties consume nothing and take the vectorised path.
    """
    running_best = np.maximum.accumulate(scores)
    if not np.any(scores[1:] == running_best[:-1]):
        return int(np.argmax(scores))
    best, n_ties = 0, 1
    for a in range(1, scores.shape[0]):
        if scores[a] > scores[best]:
            best, n_ties = a, 1
        elif scores[a] == scores[best]:
            n_ties += 1
            if gen.random() * n_ties < 1.0:
                best = a
    return best
