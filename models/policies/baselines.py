"""Baseline policies to compare the Thompson-sampling family with, from naive to omniscient.

``random``, ``static`` (an industry playbook), ``random_hour`` (the playbook's channel at a random
allowed hour), ``user_heuristic`` (each customer's last click, as
commercial send-time tools do), ``egreedy`` and ``ucb1`` (classic bandits over the same cells), and the
``oracle`` / ``segment_oracle`` that read the simulator's truth. All of them score every arm and take
the best allowed one (``GreedyPolicy``), so a masked arm is never chosen and propensities are exact.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..domain import N_HOURS, Catalog, DecisionBatch, Outcomes
from ..validation import Constraint, Interval
from .base import OpenMessagesPolicy, Policy, add_counts, checked_mask
from .thompson import PRIOR_FLOOR, ThompsonPolicy


class GreedyPolicy(Policy):
    """Base of the score-and-argmax policies: the best allowed arm, ties broken uniformly at random.

    With probability ``epsilon`` the arm is drawn uniformly from the allowed ones instead, so the
    propensity of an arm is ``(1 − ε)·[arm is a best arm]/|best arms| + ε/|allowed arms|``, exactly.
    Subclasses implement ``scores``.
    """

    @abstractmethod
    def scores(self, batch: DecisionBatch) -> np.ndarray:
        """Score of every arm per row, float64 (n_rows, n_arms); higher is better, masked arms ignored."""

    def exploitation_probabilities(self, batch: DecisionBatch, *, bank_draws: int | None = None) -> np.ndarray:
        """Uniform over each row's best allowed arms, float64 (n_rows, n_arms): exact, no draws needed."""
        best = _best_arms(self.scores(batch), checked_mask(batch, self.catalog.n_arms))
        return best / best.sum(axis=1, keepdims=True)


class RandomPolicy(GreedyPolicy):
    """Uniform over the allowed arms that send a message: a "send something" baseline.

    The no-message arm is chosen only when it is the only allowed arm. There is no ``epsilon``: every
    decision is already uniform (and marked as explored).
    """

    name = "random"
    always_explores = True

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=0.0, random_state=random_state)

    def scores(self, batch: DecisionBatch) -> np.ndarray:
        scores = np.zeros((batch.n_rows, self.catalog.n_arms))
        scores[:, self.catalog.null_arm] = -1.0
        return scores


class StaticPolicy(GreedyPolicy):
    """The industry's playbook arm, ``playbook = {industry: [channel, local hour]}``, for every customer.

    When that arm is masked the fallback order is: the same channel at the nearest allowed hour (a tie
    goes to the earlier hour); then any other channel, nearest hour first and, at equal distance, the
    cheapest in the customer's region; the no-message arm last.
    """

    name = "static"

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *,
                 playbook: Mapping[str, Sequence[Any]], epsilon: float = 0.0,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self.playbook = _check_playbook(catalog, playbook)
        arms = [catalog.arm(*self.playbook[industry]) for industry in catalog.industries]
        self._places = np.stack([_fallback_places(catalog, self.cost, arm) for arm in arms])
        self._channels = catalog.arm_channels()[np.array(arms, dtype=np.int64)]  # playbook channel per industry

    def scores(self, batch: DecisionBatch) -> np.ndarray:
        industry = (batch.cell_idx // len(self.catalog.campaign_types)) % len(self.catalog.industries)
        return -self._places[industry, batch.cost_row_idx].astype(np.float64)


class RandomHourPolicy(StaticPolicy):
    """The playbook's channel at an hour drawn uniformly from the customer's allowed ones: a random-time control.

    What send-time tools compare their optimised hour with. When the playbook's channel is masked the
    fallback is ``static``'s order over the other channels.
    """

    name = "random_hour"

    def scores(self, batch: DecisionBatch) -> np.ndarray:
        industry = (batch.cell_idx // len(self.catalog.campaign_types)) % len(self.catalog.industries)
        scores = super().scores(batch)
        own_channel = self._channels[industry][:, None] == self.catalog.arm_channels()[None, :]
        scores[own_channel] = 0.0  # every hour of the playbook's channel ties first: uniform among allowed
        return scores


class UserHeuristicPolicy(GreedyPolicy):
    """Each customer's own last click: the channel and hour they last clicked, what commercial tools do.

    A customer without a click (or whose clicked arm is masked now) gets the cell's best observed arm
    by smoothed click rate, (clicks + prior_sends · cell rate) / (sends + prior_sends), which ignores
    costs like those tools do. The no-message arm only when nothing else is allowed. ``Decisions.score``
    is the smoothed click rate, plus 1 on the customer's own arm.
    """

    name = "user_heuristic"
    state_names = ("clicks_", "non_clicks_", "last_click_arm_")
    customer_state = ("last_click_arm_",)
    parameter_constraints: ClassVar[dict[str, Constraint]] = {**GreedyPolicy.parameter_constraints,
                                                               "prior_sends": Interval(0.0)}

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.0,
                 prior_sends: float = 20.0, click_outcome: str = "click",
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self._set_params(prior_sends=prior_sends, click_outcome=click_outcome)
        self._click = catalog.outcome_index(click_outcome)
        self.clicks_ = np.zeros((catalog.n_cells, catalog.n_arms))
        self.non_clicks_ = np.zeros((catalog.n_cells, catalog.n_arms))
        self.last_click_arm_ = np.zeros(0, np.int64)

    def scores(self, batch: DecisionBatch) -> np.ndarray:
        clicks = self.clicks_[batch.cell_idx]
        sends = clicks + self.non_clicks_[batch.cell_idx]
        cell_rate = clicks.sum(axis=1, keepdims=True) / np.maximum(sends.sum(axis=1, keepdims=True), 1.0)
        scores = (clicks + self.prior_sends * cell_rate) / np.maximum(sends + self.prior_sends, 1e-12)
        scores[:, self.catalog.null_arm] = -1.0
        if batch.customer_idx is not None:
            self._grow_customers(batch.customer_idx)
            own = self.last_click_arm_[batch.customer_idx]
            rows = np.flatnonzero(own >= 0)
            scores[rows, own[rows]] += 1.0
        return scores

    def update(self, outcomes: Outcomes) -> UserHeuristicPolicy:
        keep = (outcomes.outcome_idx == self._click) & (outcomes.arm != self.catalog.null_arm)
        add_counts(self.clicks_, self.non_clicks_,
                   {"cell_idx": outcomes.cell_idx[keep], "arm": outcomes.arm[keep]}, outcomes, keep)
        if outcomes.customer_idx is not None:
            clicked = np.flatnonzero(keep & (outcomes.successes > 0))
            customers = outcomes.customer_idx[clicked]
            self._grow_customers(customers)
            last = len(customers) - 1 - np.unique(customers[::-1], return_index=True)[1]  # latest row each
            self.last_click_arm_[customers[last]] = outcomes.arm[clicked[last]]
        return self


class EpsilonGreedyPolicy(GreedyPolicy, ThompsonPolicy):
    """ε-greedy on the posterior mean of net value per cell: Σ value·α/(α+β) − cost.

    Learns the same Beta posteriors as ``ts`` (open messages as failures); explores uniformly with
    probability ``epsilon``; ties go to a uniform pick among the best arms. It starts from an
    informative ``prior`` (pseudo-counts such as ``world_prior``'s, the start ``ts`` and ``hier_ts``
    get) when there is one, else from optimistic initial values: ``optimism`` pseudo-sends on which
    every outcome of positive value happened and no harm did, so each arm looks worth trying until its
    own sends outweigh them. (A flat Beta(1, 1) start puts every unsubscribe rate at 1/2: every message
    looks worth less than none, and the policy sent only when it explored.)
    """

    name = "egreedy"
    parameter_constraints: ClassVar[dict[str, Constraint]] = {**GreedyPolicy.parameter_constraints,
                                                               "optimism": Interval(0.0, open_low=True)}

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.05,
                 optimism: float = 1.0, prior: tuple[np.ndarray, np.ndarray] | None = None,
                 random_state: np.random.Generator | int | None = None) -> None:
        self._set_params(optimism=optimism)
        super().__init__(catalog, value, cost, epsilon=epsilon, prior=prior, random_state=random_state)

    def _uninformed_start(self) -> tuple[np.ndarray, np.ndarray]:
        """Optimistic initial values: ``optimism`` pseudo-sends on which good outcomes happened, harms did not."""
        shape = (self.catalog.n_cells, len(self.catalog.outcomes), self.catalog.n_arms)
        good = np.broadcast_to(self.value[None, :, None] > 0, shape)
        return np.where(good, self.optimism, 0.0) + PRIOR_FLOOR, np.where(good, 0.0, self.optimism) + PRIOR_FLOOR

    def scores(self, batch: DecisionBatch) -> np.ndarray:
        alpha, beta = (counts[batch.cell_idx] for counts in self.posterior())
        return _net_value(np.einsum("o,roa->ra", self.value, alpha / (alpha + beta)), self.cost, batch,
                          self.catalog.null_arm)


class UCB1Policy(GreedyPolicy, OpenMessagesPolicy):
    """UCB1 on net value per cell: mean net value + range · sqrt(2 ln n_cell / n_arm).

    The mean is Σ value·(successes/trials) − cost, trials including the messages still open
    (``OpenMessagesPolicy``); the bonus is scaled by the range of one message's net value, Σ|value|,
    so it is in value units like the mean. An arm never tried in its cell scores +inf and is tried
    first; the no-message arm scores 0.
    """

    name = "ucb1"
    state_names = ("successes_", "failures_", "pending_")

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.0,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self.successes_ = np.zeros((catalog.n_cells, len(catalog.outcomes), catalog.n_arms))
        self.failures_ = np.zeros_like(self.successes_)
        self.pending_ = np.zeros_like(self.successes_)

    def scores(self, batch: DecisionBatch) -> np.ndarray:
        successes = self.successes_[batch.cell_idx]
        failures = self.failures_[batch.cell_idx] + self.pending_[batch.cell_idx]
        trials = (successes + failures).max(axis=1)
        rates = successes / np.maximum(successes + failures, 1e-12)
        mean = np.einsum("o,roa->ra", self.value, rates)
        n_cell = np.maximum(trials.sum(axis=1, keepdims=True), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):  # untried arms: replaced by +inf below
            bonus = np.abs(self.value).sum() * np.sqrt(2.0 * np.log(n_cell) / trials)
        return _net_value(np.where(trials > 0, mean + bonus, np.inf), self.cost, batch, self.catalog.null_arm)

    def update(self, outcomes: Outcomes) -> UCB1Policy:
        keep = outcomes.arm != self.catalog.null_arm
        index = {"cell_idx": outcomes.cell_idx[keep], "outcome_idx": outcomes.outcome_idx[keep],
                 "arm": outcomes.arm[keep]}
        add_counts(self.successes_, self.failures_, index, outcomes, keep)
        return self


class OraclePolicy(GreedyPolicy):
    """Customer oracle: the arm of highest true expected net value, Σ value·batch.true_rates − cost.

    Reads the truth the simulator puts in the batch, so it bounds what any policy could earn; the
    no-message arm (0) wins when every send is worth less than nothing.
    """

    name = "oracle"
    needs_truth = True
    truth: ClassVar[str] = "true_rates"

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.0,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)

    def scores(self, batch: DecisionBatch) -> np.ndarray:
        rates = getattr(batch, self.truth)
        if rates is None:
            raise ValueError(f"policy {self.name!r} needs `batch.{self.truth}` (set by the simulator); "
                             "this batch carries no truth")
        return _net_value(np.einsum("o,roa->ra", self.value, rates), self.cost, batch, self.catalog.null_arm)


class SegmentOraclePolicy(OraclePolicy):
    """Segment oracle: like ``oracle`` but from the true rates of the customer's segment (cell).

    The best any policy that cannot tell customers of a cell apart could do.
    """

    name = "segment_oracle"
    truth = "segment_rates"


def _net_value(expected: np.ndarray, cost: np.ndarray, batch: DecisionBatch, null_arm: int) -> np.ndarray:
    """Expected value minus the row's cost per arm, with exactly 0 on the no-message arm."""
    net = expected - cost[batch.cost_row_idx]
    net[:, null_arm] = 0.0
    return net


def _best_arms(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Bool (n_rows, n_arms): the allowed arms whose score is the row's best (NaN counts as -inf)."""
    allowed = np.where(mask & ~np.isnan(scores), scores, -np.inf)
    return mask & (allowed == allowed.max(axis=1, keepdims=True))


def _check_playbook(catalog: Catalog, playbook: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """A JSON-friendly copy of ``playbook`` after checking it names every industry once, with a valid arm."""
    if not isinstance(playbook, Mapping):
        raise TypeError(f"`playbook` must map industry -> [channel, hour]; got {type(playbook).__name__}")
    unknown = sorted(set(playbook) - set(catalog.industries))
    missing = [industry for industry in catalog.industries if industry not in playbook]
    if unknown or missing:
        raise ValueError(f"`playbook` must name each industry of the catalog ({', '.join(catalog.industries)}); "
                         f"unknown: {unknown}, missing: {missing}")
    checked = {}
    for industry in catalog.industries:
        entry = playbook[industry]
        if isinstance(entry, str) or not isinstance(entry, Sequence) or len(entry) != 2 or \
                isinstance(entry[1], bool) or not isinstance(entry[1], int | np.integer):
            raise ValueError(f"`playbook[{industry!r}]` must be [channel, local hour]; got {entry!r}")
        catalog.channel_index(entry[0])  # unknown channel: names the known ones
        catalog.arm(entry[0], int(entry[1]))  # hour outside [0, 23]
        checked[industry] = [str(entry[0]), int(entry[1])]
    return checked


def fallback_arms(catalog: Catalog, cost: np.ndarray, arm: np.ndarray, cost_row_idx: np.ndarray,
                  mask: np.ndarray) -> np.ndarray:
    """Each row's ``arm`` where ``mask`` allows it, else the first allowed arm of ``static``'s fallback order
    around it (the same channel at the nearest hour, then other channels, the no-message arm last), int64."""
    out = np.full(arm.shape, catalog.null_arm, dtype=np.int64)
    for wanted in np.unique(arm).tolist():
        rows = np.flatnonzero(arm == wanted)
        places = _fallback_places(catalog, cost, wanted)[cost_row_idx[rows]]
        out[rows] = np.where(mask[rows], places, catalog.n_arms).argmin(axis=1)
    return out


def _fallback_places(catalog: Catalog, cost: np.ndarray, arm: int) -> np.ndarray:
    """Place of every arm in the static fallback order around ``arm``, int64 (n_cost_rows, n_arms)."""
    channels, hours = catalog.arm_channels(), catalog.arm_hours()
    offset = (hours - hours[arm] + N_HOURS // 2) % N_HOURS - N_HOURS // 2  # signed, earlier hours negative
    places = np.empty(cost.shape, np.int64)
    for row in range(cost.shape[0]):
        order = np.lexsort((np.arange(catalog.n_arms), cost[row], offset, np.abs(offset),
                            channels != channels[arm], channels < 0))
        places[row, order] = np.arange(catalog.n_arms)
    return places
