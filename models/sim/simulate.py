"""The simulator: a world answers a policy's decisions day by day, with delayed feedback.

Each day, the customers whose campaign triggers form one ``DecisionBatch`` (masks from reachability,
unsubscribes, quiet hours and frequency caps; each customer's true rates; the segment's expected rates).
The world draws clicks and unsubscribes and their lognormal delays. The policy hears of every message
as it goes out (``Policy.sent``); feedback reaches it at the end of the day it arrives: a click or
unsubscribe inside the attribution window as a success, a window that closes without one as a
failure, each exactly once. Then a day passes (``Policy.advance``). Regret is the expected net value
an oracle that knows every customer's rates would have earned minus that of the chosen arm.

Clicks are value-weighted: a click worth ``click_value_multiplier`` times ``value[click]`` (e.g. fintech
email) is reported to the policy as that many successes and appears so in ``true_rates``.

Every random draw comes from ``seed`` (population, triggers, responses) or from the policy's own
``random_state``: the same seed gives the same numbers, whatever ``n_jobs``.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import ndtr
from tqdm.auto import tqdm

from sendwise import engine

from ..domain import (
    N_HOURS,
    N_WEEKDAYS,
    NO_MESSAGE,
    OPEN,
    REVENUE,
    REVENUE_UNIT,
    ContactHistory,
    DecisionBatch,
    Population,
    World,
    allowed_channels,
    customer_rates,
    draw_population,
    draw_triggers,
    load_world,
    parse_budgets,
    segment_rate_table,
)
from ..experiments import BASELINE, MODEL, Experiment, pseudonym
from ..intervals import mean_interval
from ..ope import LoggedFeedback, write_logs
from ..policies import (
    POLICIES,
    Choices,
    Learner,
    Loop,
    OpenWeight,
    Pacer,
    Policy,
    Resolved,
    Sends,
    make_world_policy,
)
from .progress import DayBar

TOTAL_METRICS = ("net_value", "clicks", "unsubscribes", "opens", "orders", "revenue", "cost", "sends", "regret",
                 "decisions")
LAST_DAYS = 14
FEEDBACK_DTYPE = np.dtype([("decision_id", np.int64), ("customer_idx", np.int64), ("cell_idx", np.int64),
                           ("arm", np.int64), ("outcome_idx", np.int64), ("successes", np.float64),
                           ("failures", np.float64), ("sent_at", np.float64), ("resolved_at", np.float64)])
# ``sent_at`` / ``resolved_at``: hours since midnight UTC of day 0 when the message went out and when the
# outcome resolved (its arrival, or the close of its attribution window when it did not happen in time).


@dataclass
class PolicyRun:
    """One policy × one seed: per-day metrics, totals and the learned state saved at the end."""

    policy: str
    seed: int
    params: dict[str, Any]
    daily: dict[str, np.ndarray]   # metric -> float64 (n_days,)
    totals: dict[str, float]
    policy_state: Path | None = None


@dataclass
class SimulationResult:
    """Every run of a simulation and, per policy and metric, (mean, lo95, hi95) across seeds."""

    world: World
    n_customers: int
    n_days: int
    seeds: list[int]
    runs: list[PolicyRun]
    summary: dict[str, dict[str, tuple[float, float, float]]]
    out_dir: Path | None = None
    plots: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: settings, summary, totals and daily metrics of every run."""
        return {
            "world": self.world.name, "world_path": str(self.world.path), "n_customers": self.n_customers,
            "n_days": self.n_days, "seeds": self.seeds,
            "summary": {p: {m: list(v) for m, v in metrics.items()} for p, metrics in self.summary.items()},
            "runs": [{"policy": r.policy, "seed": r.seed, "params": r.params, "totals": r.totals,
                      "daily": {m: v.tolist() for m, v in r.daily.items()},
                      "policy_state": str(r.policy_state) if r.policy_state else None} for r in self.runs],
            "fixed_monthly_cost": dict(zip(self.world.catalog.channels, self.world.fixed_monthly_cost.tolist(),
                                           strict=True)),
            "out_dir": str(self.out_dir) if self.out_dir else None, "plots": [str(p) for p in self.plots],
        }


class FeedbackQueue:
    """Resolved outcomes held until the end of the day they arrive; each one is handed out exactly once.

    Records use ``FEEDBACK_DTYPE``; those due after the last simulated day stay open, so
    ``n_scheduled == n_delivered + n_open`` once every day has been popped.
    """

    def __init__(self, n_days: int) -> None:
        self._due: list[list[np.ndarray]] = [[] for _ in range(n_days)]
        self._next_day = 0
        self.n_scheduled = self.n_delivered = self.n_open = 0

    def schedule(self, records: np.ndarray, due_day: np.ndarray) -> None:
        """Hold ``records[i]`` until the end of ``due_day[i]``, which must not lie in the past."""
        if due_day.size and due_day.min() < self._next_day:
            raise ValueError(f"feedback due on day {due_day.min()} arrives after that day was delivered")
        horizon = len(self._due)
        self.n_scheduled += int(due_day.size)
        self.n_open += int(np.sum(due_day >= horizon))
        for day in np.unique(due_day[due_day < horizon]):
            self._due[day].append(records[due_day == day])

    def pop(self, day: int) -> np.ndarray:
        """The records due at the end of ``day``; a day can be popped once, in order."""
        if day != self._next_day:
            raise ValueError(f"feedback of day {day} requested, expected day {self._next_day}")
        self._next_day += 1
        parts, self._due[day] = self._due[day], []
        due = np.concatenate(parts) if parts else np.empty(0, FEEDBACK_DTYPE)
        self.n_delivered += int(due.size)
        return due


def run_policy(world: World, policy: Policy, *, n_customers: int, n_days: int, seed: int,
               on_day: Callable[[], None] | None = None, open_weight: OpenWeight = "full") -> PolicyRun:
    """Run one policy object, in a ``Learner``, through ``n_days`` of the world drawn with ``seed``."""
    return run_loop(world, Learner(policy, open_weight=open_weight), n_customers=n_customers, n_days=n_days,
                    seed=seed, on_day=on_day, name=policy.name, params=policy.get_params())


def run_loop(world: World, loop: Loop, *, n_customers: int, n_days: int, seed: int, name: str,
             params: dict[str, Any] | None = None, on_day: Callable[[], None] | None = None,
             log_decisions: str | Path | None = None, experiment: Experiment | None = None) -> PolicyRun:
    """Drive any ``Loop`` through ``n_days`` of the world drawn with ``seed``; ``policy_state`` stays None.

    Day ``d`` starts at hour ``24 d`` (UTC, since day 0): the loop decides for the day's triggered
    customers, hears of the messages sent, then at the end of the day (hour ``24 (d + 1)``) of the
    outcomes that arrived and the windows that closed, and the clock moves on. With ``log_decisions``
    every decision whose outcomes resolved within the run is written there as logged bandit feedback
    (``write_logs``; Parquet or CSV by suffix), with its exact propensity and allowed arms.

    With ``experiment`` the customers are split into its groups (``Experiment``): the loop decides for
    the model group (and, in shadow mode, for the baseline group without sending), learns only from
    the messages of the groups that teach it, and every logged decision names its customer and group.
    The log then keeps the decisions of the days whose every window has closed, in every group alike:
    cutting by each message's own resolution would keep a held-out customer triggered on the last day
    and drop a messaged one, a mismatch of the groups' sizes that the lift report would rightly flag.
    The totals then carry each group's true value per customer, ``true_value_per_customer_<group>``:
    the world's expected net value (true rates, attribution windows) of the settled decisions that the
    log keeps, per customer of the group, what a lift report's estimate from that log aims at.
    """
    if int(n_days) < 1:
        raise ValueError(f"`n_days` must be >= 1; got {n_days!r}")
    population = draw_population(world, n_customers, seed)
    arms = None if experiment is None else _ExperimentArms(world, experiment, population, int(seed))
    run = _WorldRun(world, population, int(n_days), int(seed),
                    log=None if log_decisions is None and arms is None else DecisionLog(), arms=arms)
    loop.advance(0.0)
    for day in range(run.n_days):
        run.decide(day, loop, name)
        due = run.end_day(day)
        if arms is not None:
            due = due[run.teaches[due["decision_id"]]]
        if due.size:
            loop.resolve(Resolved(key=due["decision_id"], cell_idx=due["cell_idx"], arm=due["arm"],
                                  outcome_idx=due["outcome_idx"], successes=due["successes"],
                                  failures=due["failures"], sent_at=due["sent_at"], resolved_at=due["resolved_at"],
                                  arrived=due["successes"] > 0, customer_idx=due["customer_idx"]))
        loop.advance(N_HOURS * (day + 1.0))
        if on_day is not None:
            on_day()
    horizon = N_HOURS * float(run.n_days)
    if run.log is not None and log_decisions is not None:
        write_logs(run.log.feedback(world, horizon=horizon), log_decisions)
    totals = run.totals()
    if run.log is not None and arms is not None:
        totals |= {f"true_value_per_customer_{g}": v for g, v in run.log.true_values(horizon).items()}
    return PolicyRun(policy=name, seed=int(seed), params=dict(params or {}), daily=run.daily, totals=totals)


class _WorldRun:
    """The mutable state of one run: contact history, pending feedback, daily metrics."""

    def __init__(self, world: World, population: Population, n_days: int, seed: int,
                 log: DecisionLog | None = None, arms: _ExperimentArms | None = None) -> None:
        catalog = world.catalog
        self.log, self.arms = log, arms
        self.teaches = np.zeros(0, dtype=np.bool_)  # per decision id: its outcomes reach the loop
        self.clicks_by_customer = np.zeros(population.n_customers)  # value-weighted clicks, the engagement
        # P(an outcome arrives within its channel's attribution window): lognormal delay <= window
        self.attributed_share = ndtr((np.log(world.attribution_window_hours) - np.log(world.delay_median_hours))
                                     / world.delay_sigma)
        self._last_outcomes: tuple[np.ndarray, ...] = (np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0))
        self.world, self.population, self.n_days, self.seed = world, population, n_days, seed
        self.history = ContactHistory(population.n_customers, len(catalog.channels))
        self.feedback = FeedbackQueue(n_days)
        self.segments = segment_rate_table(world)
        self.arm_channel, self.arm_hour = catalog.arm_channels(), catalog.arm_hours()
        names = [*TOTAL_METRICS, *(f"share_{c}" for c in (*catalog.channels, NO_MESSAGE)),
                 *(f"cost_{c}" for c in catalog.channels)]
        self.daily = {m: np.zeros(n_days) for m in names}
        self.unsubscribes_due: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n_days)]
        self.n_decisions = 0

    def decide(self, day: int, loop: Loop, name: str) -> None:
        """Trigger today's campaigns, ask the loop, draw responses, schedule feedback."""
        world, catalog = self.world, self.world.catalog
        self.history.start_day(day)
        customers, campaign = draw_triggers(world, self.population, day, self.seed)
        if customers.size:
            weekday = (world.start_weekday + day) % N_WEEKDAYS
            region = self.population.region_idx[customers]
            cell = catalog.cell_ids(region, self.population.industry_idx[customers], campaign)
            recent = self.history.recent(customers)
            mask = catalog.arm_mask(allowed_channels(world, self.population, self.history, customers, recent),
                                    world.hour_allowed[region])
            rates, click_weight = customer_rates(world, self.population, customers, campaign, recent, weekday)
            batch = DecisionBatch(cell_idx=cell, cost_row_idx=region, mask=mask, customer_idx=customers,
                                  true_rates=rates, segment_rates=self.segments[cell, weekday])
            now = N_HOURS * float(day)
            if self.arms is None:
                choices, teaches, columns = loop.decide(batch, now), np.ones(batch.n_rows, np.bool_), None
            else:
                choices, teaches, columns = self.arms.decide(batch, loop, now)
            arm = np.asarray(choices.arm, dtype=np.int64)
            _check_allowed(name, batch, arm, day)
            first = self.n_decisions
            sends = self._respond(day, batch, arm, click_weight)  # every message chosen here goes out
            loop.sent(_take_sends(sends, teaches[sends.key - first]))  # the loop hears of those that teach it
            self.teaches = np.concatenate([self.teaches, teaches])
            if self.log is not None:
                self.log.add(batch, choices, *self._last_outcomes, columns)

    def end_day(self, day: int) -> np.ndarray:
        """Unsubscribes that arrived today take effect; return the feedback records that arrived today."""
        for unsubscribed_customers, channels in self.unsubscribes_due[day]:
            self.history.unsubscribed[unsubscribed_customers, channels] = True
        return self.feedback.pop(day)

    def _respond(self, day: int, batch: DecisionBatch, arm: np.ndarray, click_weight: np.ndarray) -> Sends:
        """Draw every customer's response to ``arm``, record the day's metrics, return the messages sent."""
        world, rows = self.world, np.arange(batch.n_rows)
        chosen, best = engine.net_values(batch.true_rates, world.value, world.cost, batch.cost_row_idx,
                                         batch.mask, arm)
        rng = np.random.default_rng([self.seed, 2, day])  # common random numbers across policies
        uniforms, normals = rng.random((batch.n_rows, 2)), rng.standard_normal((batch.n_rows, 2))
        channel = self.arm_channel[arm]
        sent = channel >= 0
        weight = np.where(sent, click_weight[rows, channel], 1.0)
        clicked = sent & (uniforms[:, 0] * weight < batch.true_rates[rows, 0, arm])
        unsubscribed = sent & (uniforms[:, 1] < batch.true_rates[rows, 1, arm])
        happened = [clicked, unsubscribed]
        outcomes = world.catalog.outcomes
        if OPEN in outcomes:  # opens, nested around the clicks; their own stream keeps the clicks'
            happened.append(self._opens(day, batch, arm, clicked, weight))
        order = np.zeros(batch.n_rows)  # each row's order, in REVENUE_UNIT (0: none)
        if REVENUE in outcomes:
            order = self._orders(day, batch, arm, clicked, channel)
            happened.append(order > 0)
        cost = world.cost[batch.cost_row_idx, arm]
        stats = self.daily
        stats["decisions"][day] = batch.n_rows
        stats["sends"][day] = sent.sum()
        stats["clicks"][day] = clicked.sum()
        stats["unsubscribes"][day] = unsubscribed.sum()
        stats["opens"][day] = happened[2].sum() if OPEN in outcomes else 0.0
        stats["orders"][day] = np.count_nonzero(order)
        stats["revenue"][day] = REVENUE_UNIT * order.sum()
        stats["cost"][day] = cost.sum()
        earned = np.array([np.sum(weight * clicked), unsubscribed.sum(), *(
            [happened[2].sum()] if OPEN in outcomes else []), *([order.sum()] if REVENUE in outcomes else [])])
        stats["net_value"][day] = world.value @ earned - cost.sum()
        stats["regret"][day] = np.sum(best - chosen)
        counts = np.bincount(np.where(sent, channel, len(world.catalog.channels)),
                             minlength=len(world.catalog.channels) + 1)
        for name, count in zip((*world.catalog.channels, NO_MESSAGE), counts, strict=True):
            stats[f"share_{name}"][day] = count / batch.n_rows
        spend = np.bincount(channel[sent], weights=cost[sent], minlength=len(world.catalog.channels))
        for name, amount in zip(world.catalog.channels, spend, strict=True):
            stats[f"cost_{name}"][day] = amount
        np.add.at(self.clicks_by_customer, batch.customer_idx, weight * clicked)
        self.history.record(day, batch.customer_idx[sent], channel[sent])
        return self._schedule(day, batch, arm, sent, np.stack(happened, axis=1), weight, order, normals)

    def _opens(self, day: int, batch: DecisionBatch, arm: np.ndarray, clicked: np.ndarray,
               weight: np.ndarray) -> np.ndarray:
        """Which messages were opened: every clicked one, and the others with the probability that makes
        the open rate ``true_rates[:, 2]`` (P(open | no click) = (P(open) − P(click)) / (1 − P(click)))."""
        rows = np.arange(batch.n_rows)
        uniforms = np.random.default_rng([self.seed, 5, day]).random(batch.n_rows)
        click = np.minimum(batch.true_rates[rows, 0, arm] / weight, 1.0)
        open_rate = np.maximum(batch.true_rates[rows, 2, arm], click)
        without_click = np.divide(open_rate - click, 1.0 - click, out=np.ones_like(click), where=click < 1.0)
        return (self.arm_channel[arm] >= 0) & (clicked | (uniforms < without_click))

    def _orders(self, day: int, batch: DecisionBatch, arm: np.ndarray, clicked: np.ndarray,
                channel: np.ndarray) -> np.ndarray:
        """Each row's order in ``REVENUE_UNIT`` (capped at 1), 0 without one: a click leads to an order with
        its industry and channel's ``per_click`` probability, of a gamma-distributed value (own stream)."""
        conversion = self.world.conversion
        assert conversion is not None
        rng = np.random.default_rng([self.seed, 7, day])
        uniforms = rng.random(batch.n_rows)
        industry, on = self.population.industry_idx[batch.customer_idx], np.maximum(channel, 0)
        shape = conversion.order_value_shape
        value = rng.gamma(shape, conversion.order_value[industry, on] / shape)
        ordered = clicked & (uniforms < conversion.per_click[industry, on])
        return np.where(ordered, np.minimum(value / REVENUE_UNIT, 1.0), 0.0)

    def _schedule(self, day: int, batch: DecisionBatch, arm: np.ndarray, sent: np.ndarray, happened: np.ndarray,
                  weight: np.ndarray, order: np.ndarray, normals: np.ndarray) -> Sends:
        """Queue both outcomes of every sent message at the time they resolve (arrival or window close)."""
        world = self.world
        idx = np.flatnonzero(sent)
        channel, region = self.arm_channel[arm[idx]], batch.cost_row_idx[idx]
        send_time = N_HOURS * day + (self.arm_hour[arm[idx]] - world.utc_offset_hours[region]) % N_HOURS
        n_outcomes, outcomes = happened.shape[1], world.catalog.outcomes
        if n_outcomes > 2:  # opens and orders: own delay draws; an open comes no later than its click
            normals = np.concatenate([normals, np.random.default_rng([self.seed, 6, day]).standard_normal(
                (normals.shape[0], n_outcomes - 2))], axis=1)
        arrival = send_time[:, None] + np.exp(np.log(world.delay_median_hours[channel])[:, None]
                                              + world.delay_sigma[channel][:, None] * normals[idx])
        if OPEN in outcomes:
            arrival[:, 2] = np.where(happened[idx, 0], np.minimum(arrival[:, 2], arrival[:, 0]), arrival[:, 2])
        if REVENUE in outcomes:  # an order comes no earlier than its click
            arrival[:, -1] = np.maximum(arrival[:, -1], arrival[:, 0])
        closes = send_time + world.attribution_window_hours[channel]
        attributed = happened[idx] & (arrival <= closes[:, None])
        success_weight = np.ones((idx.size, n_outcomes))  # a click counts its value, an order its size
        success_weight[:, 0] = weight[idx]
        if REVENUE in outcomes:
            success_weight[:, -1] = order[idx]
        resolved_at = np.where(attributed, arrival, closes[:, None])
        if self.log is not None:  # what each row of the batch earned, and when its last outcome resolved
            earned = np.zeros((batch.n_rows, n_outcomes))
            earned[idx] = attributed * success_weight
            settled = np.full(batch.n_rows, N_HOURS * float(day))
            settled[idx] = resolved_at.max(axis=1)
            if self.arms is not None:  # one cut for every group, by the day, or groups lose customers unevenly
                settled[:] = N_HOURS * (day + 1.0) + world.attribution_window_hours.max()
            expected = np.zeros(batch.n_rows)  # the world's expected net value of each decision
            rates = batch.true_rates[idx, :, arm[idx]]
            expected[idx] = rates @ world.value * self.attributed_share[channel] - world.cost[region, arm[idx]]
            self._last_outcomes = (earned, settled, world.cost[batch.cost_row_idx, arm], expected)
        records = np.empty((idx.size, n_outcomes), FEEDBACK_DTYPE)
        records["decision_id"] = (self.n_decisions + idx)[:, None]
        records["customer_idx"] = batch.customer_idx[idx, None]
        records["cell_idx"] = batch.cell_idx[idx, None]
        records["arm"] = arm[idx, None]
        records["outcome_idx"] = np.arange(n_outcomes)
        records["successes"] = attributed * success_weight
        records["failures"] = ~attributed
        if REVENUE in outcomes:  # an order of size r is r of a success and 1 - r of a failure
            records["failures"][:, -1] = np.where(attributed[:, -1], 1.0 - order[idx], 1.0)
        records["sent_at"] = send_time[:, None]
        records["resolved_at"] = resolved_at
        self.feedback.schedule(records.ravel(), np.floor(resolved_at / N_HOURS).astype(np.int64).ravel())
        sends = Sends(key=self.n_decisions + idx, cell_idx=batch.cell_idx[idx], arm=arm[idx], sent_at=send_time,
                      customer_idx=batch.customer_idx[idx])
        self.n_decisions += batch.n_rows
        left = happened[idx, 1]
        effect_day = np.floor(arrival[left, 1] / N_HOURS).astype(np.int64)
        for d in np.unique(effect_day[effect_day < self.n_days]):
            on_day = effect_day == d
            self.unsubscribes_due[d].append((batch.customer_idx[idx][left][on_day], channel[left][on_day]))
        return sends

    def totals(self) -> dict[str, float]:
        world = self.world
        totals = {m: float(self.daily[m].sum()) for m in TOTAL_METRICS}
        totals["net_value_last14"] = float(self.daily["net_value"][-LAST_DAYS:].sum())
        for name in world.catalog.channels:
            totals[f"cost_{name}"] = float(self.daily[f"cost_{name}"].sum())
        used = np.array([self.daily[f"share_{c}"].sum() > 0 for c in world.catalog.channels])
        totals["fixed_cost"] = float(world.fixed_monthly_cost[used].sum() * self.n_days / 30.0)
        totals["feedback_delivered"] = float(self.feedback.n_delivered)
        totals["feedback_open"] = float(self.feedback.n_open)
        return totals


class DecisionLog:
    """Every decision of a run as it was made, for ``run_loop(log_decisions=...)``.

    Rows keep each batch's order, so row i is the simulator's decision id i. The simulator knows at
    decision time what each message will earn and when its last outcome resolves; ``feedback`` keeps
    the decisions settled within the horizon, as a server's export keeps the closed ones.
    """

    def __init__(self) -> None:
        self.parts: list[tuple[DecisionBatch, Choices, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.columns: list[dict[str, np.ndarray]] = []

    def add(self, batch: DecisionBatch, choices: Choices, earned: np.ndarray, settled: np.ndarray,
            cost: np.ndarray, expected: np.ndarray, columns: dict[str, np.ndarray] | None = None) -> None:
        """One batch: its decisions, what each earned and cost, when it settled, its expected net value and,
        in an experiment, its experiment columns (``EXPERIMENT_COLUMNS`` of the log)."""
        self.parts.append((batch, choices, earned, settled, cost, expected))
        if columns is not None:
            self.columns.append(columns)

    def true_values(self, horizon: float) -> dict[str, float]:
        """Per group, the expected net value of the settled decisions per customer of the group."""
        keep = self._settled(horizon)
        expected = np.concatenate([part[5] for part in self.parts])[keep]
        frame = pd.DataFrame({name: np.concatenate([c[name] for c in self.columns])[keep]
                              for name in ("customer", "group")}).assign(expected=expected)
        by_group = frame.groupby("group")
        return {str(g): float(total / n) for g, total, n in
                zip(by_group.groups, by_group["expected"].sum(), by_group["customer"].nunique(), strict=True)}

    def _settled(self, horizon: float) -> np.ndarray:
        return np.flatnonzero(np.concatenate([part[3] for part in self.parts]) <= horizon)

    def feedback(self, world: World, horizon: float) -> LoggedFeedback:
        """The settled decisions as logged bandit feedback: reward = Σ value · outcome − cost."""
        catalog = world.catalog
        cell, region, mask = (np.concatenate([getattr(b, f) for b, *_ in self.parts])
                              for f in ("cell_idx", "cost_row_idx", "mask"))
        arm, propensity, support, epsilon = (np.concatenate([getattr(c, f) for _, c, *_ in self.parts])
                                             for f in ("arm", "propensity", "support", "epsilon"))
        earned, cost = (np.concatenate([part[i] for part in self.parts]) for i in (2, 4))
        keep = self._settled(horizon)
        names = catalog.cell_names(cell[keep])
        experiment = None
        if self.columns:
            experiment = pd.DataFrame({name: np.concatenate([c[name] for c in self.columns])[keep]
                                       for name in self.columns[0]})
        return LoggedFeedback(
            action=arm[keep], propensity=propensity[keep], reward=earned[keep] @ world.value - cost[keep],
            decision_id=keep, context=pd.DataFrame(names), cost=cost[keep], catalog=catalog,
            outcomes=pd.DataFrame({o: earned[keep, i] for i, o in enumerate(catalog.outcomes)}),
            allowed=mask[keep], support_size=support[keep].astype(np.float64), epsilon=epsilon[keep],
            experiment=experiment)


class _ExperimentArms:
    """Who is in which group of a run's experiment, and what each group is served (see ``Experiment``)."""

    def __init__(self, world: World, experiment: Experiment, population: Population, seed: int) -> None:
        self.experiment = experiment
        self.pseudonyms = np.array([pseudonym(i) for i in range(population.n_customers)], dtype=object)
        self.group = experiment.assignment.groups(self.pseudonyms.tolist())
        self.baseline = make_world_policy(experiment.baseline, world, seed=seed)
        self.null_arm = world.catalog.null_arm
        self.pre_engagement = (_pre_engagement(world, population, experiment.pre_days, seed)
                               if experiment.pre_days else None)

    def decide(self, batch: DecisionBatch, loop: Loop, now: float) -> tuple[Choices, np.ndarray,
                                                                              dict[str, np.ndarray]]:
        """Each row's choice by its group (the holdout: no message, propensity 1), which rows teach the
        loop, and the experiment columns of the log."""
        n, group = batch.n_rows, self.group[batch.customer_idx]
        model, baseline = group == MODEL, group == BASELINE
        choices = Choices(arm=np.full(n, self.null_arm, np.int64), propensity=np.ones(n),
                          explored=np.zeros(n, np.bool_), support=np.ones(n, np.int64), epsilon=np.zeros(n))
        for rows, decide in ((model, lambda b: loop.decide(b, now)), (baseline, self.baseline.decide)):
            if rows.any():
                for mine, theirs in zip(choices, decide(_take_rows(batch, rows)), strict=True):
                    mine[rows] = theirs
        columns = {"customer": self.pseudonyms[batch.customer_idx], "group": group}
        if self.pre_engagement is not None:
            columns["pre_engagement"] = self.pre_engagement[batch.customer_idx]
        teaches = model.copy()
        if self.experiment.shadow:
            agrees, propensity, sent = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
            if baseline.any():  # what the model would have chosen; it is not sent
                part = _take_rows(batch, baseline)
                shadow = loop.decide(part, now)
                agrees[baseline] = shadow.arm == choices.arm[baseline]
                propensity[baseline] = shadow.propensity
                if isinstance(loop, Learner):  # a loop behind HTTP reports its choices only
                    sent[baseline] = loop.propensities(part)[np.arange(part.n_rows), choices.arm[baseline]]
            columns["model_agrees"], columns["model_propensity"] = agrees, propensity
            if isinstance(loop, Learner):
                columns["model_sent_probability"] = sent
            teaches |= baseline
        return choices, teaches, columns


def _pre_engagement(world: World, population: Population, n_days: int, seed: int) -> np.ndarray:
    """Each customer's value-weighted clicks over ``n_days`` of the world's playbook before the experiment,
    on draws of their own (triggers and responses independent of the experiment's)."""
    run = _WorldRun(world, population, n_days, int(np.random.SeedSequence([seed, 3]).generate_state(1)[0]))
    loop = Learner(make_world_policy("static", world, seed=seed))
    loop.advance(0.0)
    for day in range(n_days):
        run.decide(day, loop, "static")  # the playbook learns nothing: no outcome needs resolving
        run.end_day(day)
    return run.clicks_by_customer


def _take_rows(batch: DecisionBatch, rows: np.ndarray) -> DecisionBatch:
    """The batch of the rows where ``rows`` (bool) is True."""
    return DecisionBatch(**{f.name: None if getattr(batch, f.name) is None else getattr(batch, f.name)[rows]
                            for f in fields(batch)})


def _take_sends(sends: Sends, rows: np.ndarray) -> Sends:
    """The messages where ``rows`` (bool, one per message) is True."""
    return Sends(key=sends.key[rows], cell_idx=sends.cell_idx[rows], arm=sends.arm[rows],
                 sent_at=sends.sent_at[rows], customer_idx=sends.customer_idx[rows])


def _check_allowed(name: str, batch: DecisionBatch, arm: np.ndarray, day: int) -> None:
    """A policy that picks a masked arm is a bug in the policy: stop the run and say where."""
    if arm.shape != (batch.n_rows,):
        raise RuntimeError(f"policy {name!r} returned {arm.shape} arms for {batch.n_rows} rows")
    bad = np.flatnonzero((arm < 0) | (arm >= batch.mask.shape[1]))
    if not bad.size:
        bad = np.flatnonzero(~batch.mask[np.arange(batch.n_rows), arm])
    if bad.size:
        raise RuntimeError(f"policy {name!r} chose masked arm {arm[bad[0]]} on day {day} "
                           f"(row {bad[0]}, {bad.size} rows in all)")


class SimulationTask(NamedTuple):
    """One policy on one seed's world: the unit of work that ``simulate`` hands to an executor."""

    world: World
    policy: str
    seed: int
    n_customers: int
    n_days: int
    params: dict[str, Any]
    out_dir: Path | None
    log_decisions: Path | None = None
    experiment: Experiment | None = None
    budgets: dict[str, float] | None = None  # channel -> USD per month, paced (``Pacer``)


# Runs every task (``run_task(*task)``), returns their runs in task order, ticks the bar once per simulated day.
Executor = Callable[[list[SimulationTask], tqdm], list[PolicyRun]]


def simulate(
    world: World | str | Path,
    policies: Sequence[str],
    *,
    n_customers: int = 10_000,
    n_days: int = 30,
    seeds: Sequence[int] = (0,),
    out_dir: str | Path | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    policy_params: dict[str, dict[str, Any]] | None = None,
    executor: Executor | None = None,
    log_decisions: str | Path | None = None,
    experiment: Experiment | None = None,
    budgets: str | dict[str, Any] | None = None,
) -> SimulationResult:
    """Run every policy on every seed's world and summarise across seeds.

    ``log_decisions`` writes each run's decisions as logged bandit feedback with exact propensities
    (``run_loop``): to that path for a single policy and seed, else to ``<stem>-<policy>-seed<seed><suffix>``.
    ``experiment`` runs each policy as the model group of that experiment (``run_loop``).

    ``budgets`` (``{"sms": {"per_month": 1000}}`` or its JSON) caps what each policy may spend on a channel
    per 30-day month, paced by a cost multiplier (``Pacer``); by default the world file's ``[budget]``
    table, and ``{}`` runs without budgets.

    ``policy_params`` maps a policy name to keyword arguments of its constructor. With ``out_dir``,
    each policy's learned state is saved there (``policies/<name>-seed<seed>.npz``) with the PNG plots.
    Seeds and policies run in ``n_jobs`` processes, or wherever ``executor`` sends them (e.g. Ray tasks,
    ``sendwise.models.sim.distributed``); the numbers depend on neither.

    Examples
    --------
    >>> result = simulate("seed", ["ts"], n_customers=200, n_days=3, progress=False)
    >>> sorted(result.summary) == ["ts"]
    True
    """
    world = world if isinstance(world, World) else load_world(world)
    policies, seeds = list(dict.fromkeys(policies)), [int(s) for s in seeds]
    policy_params = policy_params or {}
    for name in [*policies, *policy_params]:
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}")
    if not policies or not seeds:
        raise ValueError("`policies` and `seeds` must each name at least one entry")
    if int(n_jobs) < 1:
        raise ValueError(f"`n_jobs` must be >= 1; got {n_jobs!r}")
    paced = (dict(world.budgets) if budgets is None else parse_budgets(budgets, world.catalog)) or None
    for name in policies:  # fail on bad parameters now, not in a worker minutes later
        make_world_policy(name, world, seed=0, **policy_params.get(name, {}))
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    tasks = [SimulationTask(world, name, seed, int(n_customers), int(n_days), policy_params.get(name, {}), out,
                            _log_path(log_decisions, name, seed, single=len(policies) * len(seeds) == 1),
                            experiment, paced)
             for name in policies for seed in seeds]
    with DayBar(total=len(tasks) * int(n_days), disable=not progress) as bar:  # "compiling" until a day is done
        runs = executor(tasks, bar) if executor is not None else run_tasks(tasks, int(n_jobs), bar)
    result = SimulationResult(world=world, n_customers=int(n_customers), n_days=int(n_days), seeds=seeds,
                              runs=runs, summary=summarize(runs), out_dir=out)
    if out is not None:
        from .plots import plot_simulation  # matplotlib loads only when plots are wanted

        shutil.copyfile(world.path, out / "world.toml")
        result.plots = plot_simulation(result, out)
    return result


def _log_path(log_decisions: str | Path | None, policy: str, seed: int, *, single: bool) -> Path | None:
    """Where one run writes its decision log: the path itself for a single run, else one file per run."""
    if log_decisions is None:
        return None
    path = Path(log_decisions)
    return path if single else path.with_name(f"{path.stem}-{policy}-seed{seed}{path.suffix}")


def summarize(runs: Sequence[PolicyRun]) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Per policy and total metric: mean and 95% bootstrap interval across seeds (``mean_interval``).

    The mean thrice for one seed; a metric that cannot be negative keeps an interval within [0, inf).
    """
    summary: dict[str, dict[str, tuple[float, float, float]]] = {}
    for name in dict.fromkeys(r.policy for r in runs):
        group = [r for r in runs if r.policy == name]
        summary[name] = {}
        for metric in group[0].totals:
            mean, low, high = mean_interval(np.array([r.totals[metric] for r in group]))
            summary[name][metric] = (float(mean), float(low), float(high))
    return summary


def run_tasks(tasks: list[SimulationTask], n_jobs: int, bar: tqdm) -> list[PolicyRun]:
    """The default executor: every task in order here, or in ``n_jobs`` local processes."""
    if n_jobs == 1 or len(tasks) == 1:
        return [run_task(*task, on_day=lambda: bar.update(1)) for task in tasks]
    # A fork server that has imported the simulator starts workers fast and never forks the engine's threads.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["__main__", __name__])
    ticks = context.Queue()
    n_workers = min(n_jobs, len(tasks))
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    with ProcessPoolExecutor(n_workers, mp_context=context, initializer=_start_worker,
                             initargs=(ticks, threads)) as pool:
        futures = [pool.submit(run_task, *task) for task in tasks]
        while not all(f.done() for f in futures):
            try:
                bar.update(ticks.get(timeout=0.2))
            except queue_module.Empty:
                continue
        runs = [f.result() for f in futures]
    while not ticks.empty():
        bar.update(ticks.get())
    return runs


_worker_on_day: list[Callable[[], None]] = []  # set once per worker process by _start_worker


def _start_worker(ticks: Any, n_threads: int) -> None:
    """Runs once in each worker: report finished days to the parent's progress bar, share the cores."""
    _worker_on_day.append(lambda: ticks.put(1))
    engine.set_num_threads(n_threads)  # results do not depend on it


def run_task(world: World, name: str, seed: int, n_customers: int, n_days: int, params: dict[str, Any],
             out_dir: Path | None, log_decisions: Path | None = None, experiment: Experiment | None = None,
             budgets: dict[str, float] | None = None,
             on_day: Callable[[], None] | None = None) -> PolicyRun:
    """Run one ``SimulationTask`` (its fields in order): the unit of work of every executor."""
    policy = make_world_policy(name, world, seed=seed, **params)
    on_day = on_day or (_worker_on_day[0] if _worker_on_day else None)
    pacer = Pacer(world.catalog, budgets) if budgets else None
    run = run_loop(world, Learner(policy, pacer=pacer), n_customers=n_customers, n_days=n_days, seed=seed,
                   on_day=on_day, name=policy.name, params=policy.get_params(), log_decisions=log_decisions,
                   experiment=experiment)
    if out_dir is not None:
        (out_dir / "policies").mkdir(parents=True, exist_ok=True)
        run.policy_state = policy.save(out_dir / "policies" / f"{name}-seed{seed}.npz")
    return run
