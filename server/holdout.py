"""The served holdout: a held-out customer's decision is "no message", with reason ``holdout``.

A customer's group comes from the keyed hash the simulator uses (``Assignment``) over their
pseudonym, so it holds across requests, workers and restarts; ``SENDWISE_HOLDOUT_SHARE`` sets the
share and ``SENDWISE_HOLDOUT_SALT`` names the experiment. A request that marks a customer's message
``transactional`` (a receipt, a password reset) is never held out. A held-out decision is logged like
any other, with propensity 1 (the holdout always sends nothing); it sends no message, so the learning
loop has nothing to hear of it, and its window stays open for the longest attribution window so
that the customer's organic outcomes (a ``converted`` with its ``value``) are accepted and kept for
the lift report. They never teach: a decision without a message has no arm to learn about.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sendwise.models import NO_MESSAGE, Catalog
from sendwise.models.experiments import HOLDOUT, Assignment

from .guardrails import ServingRules
from .schemas import CustomerRequest, DecisionRows, Reason
from .settings import Settings
from .store import DecisionRecord


@dataclass(frozen=True)
class ServedHoldout:
    """Who is held out (``assignment``; None: nobody) and how long their decisions accept outcomes."""

    assignment: Assignment | None
    window_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings, rules: ServingRules) -> ServedHoldout:
        assignment = None
        if settings.holdout_share > 0:
            assignment = Assignment(salt=settings.holdout_salt, holdout_share=settings.holdout_share)
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
