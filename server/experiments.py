"""Served experiments: the holdout gets no message, the baseline group gets what the team did before.

Holdout: a held-out customer's decision is "no message", with reason ``holdout``.

A customer's group comes from the keyed hash the simulator uses (``Assignment``) over their
pseudonym, so it holds across requests, workers and restarts; ``SENDWISE_HOLDOUT_SHARE`` sets the
share and ``SENDWISE_HOLDOUT_SALT`` names the experiment. A request that marks a customer's message
``transactional`` (a receipt, a password reset) is never held out. A held-out decision is logged like
any other, with propensity 1 (the holdout always sends nothing); it sends no message, so the learning
loop has nothing to hear of it, and its window stays open for the longest attribution window so
that the customer's organic outcomes (a ``converted`` with its ``value``) are accepted and kept for
the lift report. They never teach: a decision without a message has no arm to learn about.

Baseline: the next ``SENDWISE_BASELINE_SHARE`` of the same hash gets the baseline's option, with reason
``baseline`` and the baseline's propensity. ``SENDWISE_BASELINE`` picks it: ``caller`` (default), the
request's ``default_channel`` at ``default_hour`` (the world playbook's hour when none is given), or, when
a guardrail rules that out, the first allowed option of the static playbook's fallback order around it
(``fallback_arms``); a customer sent without a default gets the world's playbook. ``static`` is the
world's playbook, ``random_hour`` its channel at a random allowed hour (the "random time" control).
Outside shadow mode the baseline's messages do not teach the model (``DecisionRecord.teaches``), as in
the simulator's experiments: the model learns from its own group. In shadow mode
(``SENDWISE_SHADOW``) they do, since they are what was really sent, and each baseline decision's
reason carries ``model_choice``: what the model would have chosen, its propensity, and whether it agrees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sendwise.models import N_HOURS, NO_MESSAGE, Catalog, Choices, DecisionBatch, Policy, make_world_policy
from sendwise.models.experiments import BASELINE, HOLDOUT, Assignment
from sendwise.models.policies import fallback_arms

from .errors import ModelUnavailableError
from .guardrails import ServingRules
from .schemas import CustomerRequest, DecisionRows, ModelChoice, Reason
from .settings import Settings
from .store import DecisionRecord

if TYPE_CHECKING:
    from sendwise.models.domain.world import World

NOON = 12  # the caller's default hour when there is no world playbook to take it from


def experiment_assignment(settings: Settings) -> Assignment | None:
    """The experiment's groups (holdout, model, baseline) by the keyed hash; None when everyone gets the model."""
    if settings.holdout_share == 0 and settings.baseline_share == 0:
        return None
    return Assignment(salt=settings.holdout_salt, holdout_share=settings.holdout_share,
                      baseline_share=settings.baseline_share)


class Served(NamedTuple):
    """What a batch gets once the experiment is applied: each row's choice, whether the baseline chose it,
    and in shadow mode what the model would have chosen for the baseline's rows (None elsewhere)."""

    choices: Choices
    baseline: np.ndarray
    model_choice: list[ModelChoice | None]


@dataclass(frozen=True)
class ServedBaseline:
    """Who gets the baseline (``assignment``; None: nobody), which one, and whether it teaches (shadow mode)."""

    assignment: Assignment | None
    kind: str
    shadow: bool
    policy: Policy | None  # the world's static or random_hour policy; None without a world
    playbook_hour: np.ndarray | None  # (n_industries,) the playbook's hour, the caller's default hour

    @classmethod
    def from_settings(cls, settings: Settings, world: World | None) -> ServedBaseline:
        assignment = experiment_assignment(settings) if settings.baseline_share > 0 else None
        policy, hours = None, None
        if world is not None:
            policy = make_world_policy("static" if settings.baseline == "caller" else settings.baseline, world,
                                       seed=settings.seed)
            hours = np.array([int(world.playbook[i][1]) for i in world.catalog.industries], dtype=np.int64)
        elif settings.baseline != "caller" and assignment is not None:
            raise ValueError(f"SENDWISE_BASELINE={settings.baseline} is the world's playbook: set SENDWISE_WORLD")
        return cls(assignment, settings.baseline, settings.shadow, policy, hours)

    @property
    def teaches(self) -> bool:
        """Whether the baseline's messages and outcomes reach the learning loop."""
        return self.shadow

    def serve(self, people: list[CustomerRequest], customers: list[str], batch: DecisionBatch, model: Choices,
              catalog: Catalog, cost: np.ndarray, seed: int,
              probabilities: Callable[[], np.ndarray]) -> Served | None:
        """The batch's choices with the baseline group's rows taken from the baseline; None without a baseline.

        ``probabilities()`` gives the model's probability of every arm per row, which shadow mode logs for
        the option the baseline sent."""
        if self.assignment is None:
            return None
        rows = np.flatnonzero(self.assignment.groups(customers) == BASELINE)
        if not rows.size:
            return None
        if self.policy is not None and self.policy.catalog != catalog:
            raise ModelUnavailableError("the served model's catalog is not the world's: the baseline cannot decide "
                                        "for it (serve a model of the world, or SENDWISE_BASELINE_SHARE=0)")
        arm = model.arm.copy()
        propensity, explored = model.propensity.copy(), model.explored.copy()
        support, epsilon = model.support.copy(), model.epsilon.copy()
        chosen = self._choose(people, batch, rows, catalog, cost, seed)
        arm[rows], propensity[rows], explored[rows] = chosen.arm, chosen.propensity, False
        support[rows], epsilon[rows] = chosen.support, chosen.epsilon
        baseline = np.zeros(batch.n_rows, dtype=np.bool_)
        baseline[rows] = True
        model_choice: list[ModelChoice | None] = [None] * batch.n_rows
        if self.shadow:
            channels = (*catalog.channels, NO_MESSAGE)
            sent_probability = probabilities()[rows, arm[rows]].tolist()
            for row, sent in zip(rows.tolist(), sent_probability, strict=True):
                mine = int(model.arm[row])
                model_choice[row] = ModelChoice(
                    channel=channels[mine // N_HOURS], local_hour=None if mine == catalog.null_arm else mine % N_HOURS,
                    propensity=float(model.propensity[row]), agrees=mine == int(arm[row]), sent_probability=sent)
        return Served(Choices(arm, propensity, explored, support, epsilon), baseline, model_choice)

    def _choose(self, people: list[CustomerRequest], batch: DecisionBatch, rows: np.ndarray, catalog: Catalog,
                cost: np.ndarray, seed: int) -> Choices:
        """The baseline's choices for ``rows`` of ``batch``."""
        part = DecisionBatch(batch.cell_idx[rows], batch.cost_row_idx[rows], batch.mask[rows])
        by_policy = None
        if self.policy is not None:
            by_policy = self.policy.reseed(seed).decide(part)
        if self.kind != "caller":
            assert by_policy is not None
            return by_policy
        industry = catalog.cell_parts(part.cell_idx)[1]
        wanted = np.full(rows.size, -1, dtype=np.int64)
        for i, row in enumerate(rows.tolist()):
            person = people[row]
            if person.default_channel in catalog.channels:
                hour = person.default_hour
                if hour is None:
                    hour = NOON if self.playbook_hour is None else int(self.playbook_hour[industry[i]])
                wanted[i] = catalog.arm(person.default_channel, hour)
        given = wanted >= 0
        arm = by_policy.arm.copy() if by_policy is not None else np.full(rows.size, catalog.null_arm, np.int64)
        arm[given] = fallback_arms(catalog, cost, wanted[given], part.cost_row_idx[given], part.mask[given])
        ones = np.ones(rows.size)
        if by_policy is None:
            return Choices(arm, ones, np.zeros(rows.size, np.bool_), np.ones(rows.size, np.int64), np.zeros(rows.size))
        return Choices(arm, np.where(given, 1.0, by_policy.propensity), np.zeros(rows.size, np.bool_),
                       np.where(given, 1, by_policy.support), np.where(given, 0.0, by_policy.epsilon))


@dataclass(frozen=True)
class ServedHoldout:
    """Who is held out (``assignment``; None: nobody) and how long their decisions accept outcomes."""

    assignment: Assignment | None
    window_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings, rules: ServingRules) -> ServedHoldout:
        assignment = experiment_assignment(settings) if settings.holdout_share > 0 else None
        return cls(assignment, rules.longest_attribution_window.total_seconds())

    def apply(self, people: list[CustomerRequest], decisions: DecisionRows, records: list[DecisionRecord],
              catalog: Catalog) -> tuple[DecisionRows, list[DecisionRecord]]:
        """The plan with every held-out, non-transactional customer's decision turned into "no message"."""
        if self.assignment is None:
            return decisions, records
        groups = self.assignment.groups([r.customer for r in records])
        rows, records = list(decisions.rows), list(records)
        for row, (person, group) in enumerate(zip(people, groups, strict=True)):
            if group != HOLDOUT or person.transactional:
                continue
            reason = Reason(mode="holdout", guardrails=rows[row]["reason"]["guardrails"])
            # A new row: rows of one plan share their reason's dict.
            rows[row] = rows[row] | {"channel": NO_MESSAGE, "local_hour": None, "send_at": None, "propensity": 1.0,
                                     "reason": reason.model_dump()}
            record = records[row]
            records[row] = replace(record, channel=NO_MESSAGE, local_hour=None, send_at=None, arm=catalog.null_arm,
                                   propensity=1.0, explored=False, cost=0.0, reason=reason.model_dump_json(),
                                   closed=False, window_closes_at=record.created_at + self.window_seconds,
                                   support=1, epsilon=0.0)
        return DecisionRows(rows), records
