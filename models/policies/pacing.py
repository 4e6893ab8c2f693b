"""Budgets with pacing: a per-channel cost multiplier that a dual (Lagrangian) update keeps on pace.

A budget caps what a channel may spend per month (``{"sms": {"per_month": 1000}}``; a month is 30
days of the loop's clock, counted from its origin). Spending less than the budget is a constraint
on the policy's objective; its Lagrange multiplier prices the constrained channel: the policy scores
every arm with ``multiplier[channel] × cost`` instead of ``cost``, the multiplier at least 1.

The multiplier follows dual descent on the budget constraint, in log space (Balseiro & Gur 2019,
"Learning in repeated auctions with budgets", adapted to a multiplicative step): after each step of the
clock (at least ``step_hours``, a day by default: the simulator's day, or a day of a server's
minute-by-minute ticks, so both learn the price at the same rhythm) it moves by ``learning_rate ×
log(spend of the step / spend wanted of the step)``, clipped to ``±MAX_LOG_STEP``. The spend wanted is
the step's share of the budget spread evenly over the month plus a part of the gap to that even-pace
line (closed over ``CATCH_UP_HOURS``; between 1/4 and 4 times the even pace, never more than is left).
Spending ahead of pace raises the price, so fewer and only the most valuable messages use the channel;
spending behind lowers it. The learning rate is low because spend is elastic: on the seed world halving
SMS spend takes a multiplier of about 3, and a rate of 0.7 made the multiplier overshoot and swing week
to week. A channel whose month's budget is spent is switched off until the month ends (the guard that
bounds an overshoot by one step's spend). The multiplier carries over into the next month, so a second
month starts at the price the first one learned.

The dual update learns only between steps, so a step that decides many customers at once (the
simulator's day, a large batch request) could spend days of pace before the price reacts: a cold
policy at multiplier 1 spent about five days' pace of SMS on its first day. Within a step, a batch is
therefore also held to the even-pace line ``ahead_hours`` ahead (one day by default): when the spend
the policy expects of the batch (its exact propensities times each message's cost) would cross that
line, the batch alone is priced higher, by a bisection on the channel's multiplier, until it fits.
That price is the batch's, not the pacer's: the pacer's state stays a function of the loop's inputs
(sends and the clock), which a served loop replays without the decisions.

``Pacer`` is part of the loop's state (``Learner(pacer=...)``): it counts spend from the messages the
loop hears were sent, at the policy's own per-message cost, refunds the ones it hears were not
delivered (``refund``), and is a deterministic function of the loop's inputs, so a replay of the same
inputs gives the same multipliers (every worker of a server, and a restarted one, replays the same
log); ``to_dict`` / ``from_dict`` save and restore it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np

from ..domain import Catalog, DecisionBatch, parse_budgets
from ..validation import check_range
from .base import Policy
from .loop import Sends

HOURS_PER_MONTH = 30 * 24.0
DEFAULT_LEARNING_RATE = 0.3
CATCH_UP_HOURS = 48.0  # a gap to the even pace is closed over about two days
MIN_PACE_SHARE, MAX_PACE_SHARE = 0.25, 4.0  # catching up asks for 1/4 to 4 times the even pace of a step
MAX_LOG_STEP = 1.0  # at most a factor e per step, so one odd day cannot swing the price far
MAX_MULTIPLIER = 1e4
DEFAULT_AHEAD_HOURS = 24.0  # a batch may bring spend at most one day of even pace ahead of the line
DEFAULT_STEP_HOURS = 24.0  # the dual update moves once a day however often the clock ticks
BATCH_PRICE_EVALUATIONS = 10  # spend estimates a batch's price may take (bracketing, then halving)


class BudgetStatus(NamedTuple):
    """One budgeted channel's month so far (USD): what the dashboard shows as spend against pace."""

    channel: str
    budget: float
    spent: float
    pace: float  # the even-pace line at the clock: budget x share of the month elapsed
    multiplier: float
    exhausted: bool


class Pricing(NamedTuple):
    """How the budgets price one batch: the batch without the channels whose budget is spent
    (``exhausted``, bool per channel), and each channel's cost multiplier for it (float64, n_channels)."""

    batch: DecisionBatch
    multiplier: np.ndarray
    exhausted: np.ndarray


class Pacer:
    """Per-channel monthly budgets, paced by a cost multiplier per channel (see the module docstring).

    Parameters
    ----------
    catalog : the channels and arms.
    budgets : channel -> USD per month (``parse_budgets``); unbudgeted channels keep multiplier 1.
    learning_rate : step size of the dual update (0 keeps every multiplier where it starts).
    multiplier : where every budgeted channel's multiplier starts, >= 1.
    ahead_hours : how far ahead of the even-pace line one batch may bring a month's spend (hours of
        pace; None: no limit within a step, only the dual update and the spent budget's switch-off).
    step_hours : the shortest step of the dual update: clock moves in between only age the allowance.
    """

    def __init__(self, catalog: Catalog, budgets: Mapping[str, float], *,
                 learning_rate: float = DEFAULT_LEARNING_RATE, multiplier: float = 1.0,
                 ahead_hours: float | None = DEFAULT_AHEAD_HOURS, step_hours: float = DEFAULT_STEP_HOURS) -> None:
        self.catalog = catalog
        self.budgets = parse_budgets({c: {"per_month": b} for c, b in budgets.items()}, catalog)
        self.learning_rate = check_range("learning_rate", learning_rate, 0.0)
        self.ahead_hours = None if ahead_hours is None else check_range("ahead_hours", ahead_hours, 0.0)
        self.step_hours = check_range("step_hours", step_hours, 0.0)
        start = check_range("multiplier", multiplier, 1.0, MAX_MULTIPLIER)
        n_channels = len(catalog.channels)
        self.budget = np.full(n_channels, np.inf)
        for channel, amount in self.budgets.items():
            self.budget[catalog.channel_index(channel)] = amount
        self.budgeted = np.isfinite(self.budget)
        self.multiplier = np.where(self.budgeted, start, 1.0)
        self.spent = np.zeros(n_channels)       # this month, so far
        self.step_start = np.zeros(n_channels)  # ``spent`` when the current step began
        self.month = 0
        self.clock: float | None = None
        self.step_began: float | None = None  # clock when the current step of the dual update began
        self._arm_channel = catalog.arm_channels()

    def arm_multiplier(self) -> np.ndarray:
        """Each arm's cost multiplier, float64 (n_arms,): its channel's, 1 on the no-message arm."""
        return np.append(self.multiplier, 1.0)[self._arm_channel]

    def exhausted(self) -> np.ndarray:
        """Bool (n_channels,): budgeted channels whose month's budget is spent."""
        return self.budgeted & (self.spent >= self.budget)

    def restrict(self, batch: DecisionBatch) -> DecisionBatch:
        """``batch`` without the arms of channels whose budget is spent (the no-message arm stays)."""
        off = self.exhausted()
        if not off.any():
            return batch
        arm_off = np.append(off, False)[self._arm_channel]
        return replace(batch, mask=batch.mask & ~arm_off)

    def allowance(self) -> np.ndarray:
        """USD (n_channels,) a batch decided now may spend per channel: up to the even-pace line
        ``ahead_hours`` ahead of the clock, less what the month has spent; inf where nothing limits it."""
        if self.ahead_hours is None or self.clock is None:
            return np.full(self.budget.shape, np.inf)
        elapsed = self.clock - self.month * HOURS_PER_MONTH
        line = self.budget * min(elapsed + self.ahead_hours, HOURS_PER_MONTH) / HOURS_PER_MONTH
        return np.where(self.budgeted, np.maximum(line - self.spent, 0.0), np.inf)

    def batch_multiplier(self, most: np.ndarray, expected_spend: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Each channel's multiplier for one batch: the pacer's, raised where the batch would overspend.

        most : USD (n_channels,), what the batch would spend if every row took its channel's dearest
            allowed arm (no estimate is needed where even that fits the allowance);
        expected_spend : channel multipliers (n_channels,) -> the batch's expected spend per channel.
        A channel over its ``allowance`` is bracketed by e-fold steps, then halved in log space; the
        lowest multiplier seen to fit is used (one step above the highest tried when none did). A channel with nothing
        left to spend gets ``MAX_MULTIPLIER`` at once.
        """
        allowance = self.allowance()
        base = np.log(self.multiplier)
        limit = np.where(allowance <= 0.0, np.log(MAX_MULTIPLIER), base)
        if np.all(most <= allowance):
            return np.exp(limit)
        low, high, current = limit.copy(), np.full_like(base, np.nan), limit.copy()
        active = np.zeros(base.shape, dtype=np.bool_)
        for _ in range(BATCH_PRICE_EVALUATIONS):
            over = expected_spend(np.exp(current)) > allowance
            active |= over & (current < np.log(MAX_MULTIPLIER))
            if not active.any():
                break
            low = np.where(active & over, current, low)
            high = np.where(active & ~over, current, high)
            current = np.where(active, np.where(np.isnan(high), low + 1.0, 0.5 * (low + high)), current)
            current = np.minimum(current, np.log(MAX_MULTIPLIER))
        return np.exp(np.where(active, np.where(np.isnan(high), current, high), limit))

    @contextmanager
    def pricing(self, policy: Policy, multiplier: np.ndarray | None = None) -> Iterator[Policy]:
        """Within the block, ``policy`` scores arms at the paced cost (the pacer's multipliers, or a
        batch's from ``batch_multiplier``); its own cost is restored after."""
        cost = policy.cost
        channel_multiplier = self.multiplier if multiplier is None else multiplier
        policy.cost = np.ascontiguousarray(cost * np.append(channel_multiplier, 1.0)[self._arm_channel])
        try:
            yield policy
        finally:
            policy.cost = cost

    def record(self, sends: Sends, cost: np.ndarray) -> None:
        """Count the spend of messages that went out, at ``cost`` (n_regions, n_arms) of their region."""
        if not sends.n_rows or not self.budgeted.any():
            return
        region = self.catalog.cell_parts(sends.cell_idx)[0]
        np.add.at(self.spent, self._arm_channel[sends.arm], cost[region, sends.arm])

    def refund(self, sends: Sends, cost: np.ndarray, count: np.ndarray) -> None:
        """Take back ``count`` times the spend of each of ``sends`` (1: not delivered after all; -1: charged
        again, delivered after all), where it was counted in this month; spend never goes below 0."""
        if not sends.n_rows or not self.budgeted.any():
            return
        this_month = sends.sent_at >= self.month * HOURS_PER_MONTH
        region = self.catalog.cell_parts(sends.cell_idx)[0]
        np.subtract.at(self.spent, self._arm_channel[sends.arm], np.where(this_month, count, 0.0)
                       * cost[region, sends.arm])
        np.maximum(self.spent, 0.0, out=self.spent)

    def status(self) -> list[BudgetStatus]:
        """Each budgeted channel's month so far: budget, spend, the even pace to date and the multiplier."""
        if self.clock is None:
            return []
        elapsed = min(max(self.clock - self.month * HOURS_PER_MONTH, 0.0), HOURS_PER_MONTH)
        return [BudgetStatus(channel, float(self.budget[c]), float(self.spent[c]),
                             float(self.budget[c] * elapsed / HOURS_PER_MONTH), float(self.multiplier[c]),
                             bool(self.spent[c] >= self.budget[c]))
                for c, channel in enumerate(self.catalog.channels) if self.budgeted[c]]

    def advance(self, now: float) -> None:
        """Move the clock to ``now`` (hours): close the step if ``step_hours`` passed (update the multipliers),
        and start a month if one began."""
        now = float(now)
        if self.clock is None or self.step_began is None:
            self.clock, self.step_began, self.month = now, now, math.floor(now / HOURS_PER_MONTH)
            return
        if now <= self.clock:
            return
        month_start = self.month * HOURS_PER_MONTH
        month = math.floor(now / HOURS_PER_MONTH)
        step_end = min(now, month_start + HOURS_PER_MONTH)
        self.clock = now
        if month == self.month and now - self.step_began < self.step_hours - 1e-9:
            return  # the step goes on: only the allowance moves with the clock
        if self.learning_rate > 0 and step_end > self.step_began:
            # Even pace: the budget spread over the month. The step should have spent its share of it
            # plus a part of the gap to the even-pace line (behind: more; ahead: less), closing the gap
            # over ``CATCH_UP_HOURS``.
            budget = np.where(self.budgeted, self.budget, 0.0)
            line = budget * (self.step_began - month_start) / HOURS_PER_MONTH
            step_pace = budget * (step_end - self.step_began) / HOURS_PER_MONTH
            catch_up = min(1.0, (step_end - self.step_began) / CATCH_UP_HOURS)
            gap = line - self.step_start
            wanted = np.clip(step_pace + catch_up * gap, MIN_PACE_SHARE * step_pace, MAX_PACE_SHARE * step_pace)
            wanted = np.minimum(wanted, np.maximum(budget - self.step_start, 0.0))  # never more than is left
            spend = self.spent - self.step_start
            tiny = 1e-6 * np.maximum(step_pace, 1e-9)  # nothing spent when nothing was wanted: on pace
            step = np.clip(np.log((spend + tiny) / (wanted + tiny)), -MAX_LOG_STEP, MAX_LOG_STEP)
            updated = self.multiplier * np.exp(self.learning_rate * step)
            self.multiplier = np.where(self.budgeted, np.clip(updated, 1.0, MAX_MULTIPLIER), 1.0)
        if month > self.month:
            self.month, self.spent = month, np.zeros_like(self.spent)
        self.step_began = now
        self.step_start = self.spent.copy()

    def to_dict(self) -> dict[str, Any]:
        """The pacer's whole state, JSON-friendly; ``Pacer.from_dict`` restores it."""
        channels = self.catalog.channels
        return {"budgets": self.budgets, "learning_rate": self.learning_rate, "ahead_hours": self.ahead_hours,
                "step_hours": self.step_hours, "month": self.month, "clock": self.clock, "step_began": self.step_began,
                **{name: dict(zip(channels, getattr(self, name).tolist(), strict=True))
                   for name in ("multiplier", "spent", "step_start")}}

    @classmethod
    def from_dict(cls, catalog: Catalog, data: Mapping[str, Any]) -> Pacer:
        """The pacer ``to_dict`` described, on ``catalog``."""
        pacer = cls(catalog, data["budgets"], learning_rate=data["learning_rate"],
                    ahead_hours=data.get("ahead_hours", DEFAULT_AHEAD_HOURS),
                    step_hours=data.get("step_hours", DEFAULT_STEP_HOURS))
        pacer.month, pacer.clock = int(data["month"]), None if data["clock"] is None else float(data["clock"])
        pacer.step_began = data.get("step_began", pacer.clock)
        for name in ("multiplier", "spent", "step_start"):
            values = data[name]
            if set(values) != set(catalog.channels):
                raise ValueError(f"pacer state {name!r} must name every channel of the catalog; got {sorted(values)}")
            setattr(pacer, name, np.array([float(values[c]) for c in catalog.channels]))
        return pacer
