"""The served model: a ``Learner`` around the base policy, driven by every loop input in the store.

The state in memory is always the base policy driven, in order, through the store's ``input_log`` for
this model version: the messages sent, the outcomes that arrived, the windows that closed and the
clock ticks, exactly the inputs the simulator gives the same ``Learner``. Every change goes through
:meth:`LiveModel.catch_up` after it is committed, so a restart (or another worker reading the same
store) arrives at exactly the same arrays, and what the simulator measures is what the server serves.

Propensities need no estimate: the policy samples each arm from the very probability vector whose
entry is logged (``Policy.decide``).

Budgets (``ServingRules.budgets``) are the learner's ``Pacer``: its spend and multipliers come from the
same inputs (messages sent, refunds of undelivered ones, clock ticks), so every worker and every
restart prices alike. They are counted per model version: a newly promoted version starts the month's
count from its own first input.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from sendwise.models import Catalog, DecisionBatch, Learner, Policy
from sendwise.models.policies import BudgetStatus, Pacer, Pricing
from sendwise.models.policies.loop import Choices, Resolved, Sends

from .guardrails import ServingRules
from .store import InputKind, LoggedInput, Store

NO_CUSTOMER = 0  # personal row of inputs without a pseudonym (erased customers'); nobody decides with it


@dataclass(frozen=True)
class OwnHistory:
    """What one customer's own history does to their decision, per channel of the catalog.

    ``recent`` : int, their messages of the trailing week; ``personal`` : float, the multiplier of each
    channel's click rate from their own clicks and opens (None: the policy keeps none); ``combined`` :
    float, that times what this week's messages do (fatigue, the lift of combined channels).
    """

    channels: tuple[str, ...]
    recent: tuple[int, ...]
    personal: tuple[float, ...] | None
    combined: tuple[float, ...] | None


class LiveModel:
    """A policy being served: thread-safe decisions and catch-up with the store's loop inputs."""

    def __init__(self, policy: Policy, version: str, rules: ServingRules) -> None:
        if policy.needs_truth:
            raise TypeError(f"policy {policy.name!r} reads the simulator's truth and cannot be served")
        self.learner = Learner(policy, pacer=Pacer(policy.catalog, rules.budgets) if rules.budgets else None)
        self.policy = policy
        self.version = version
        self.catalog: Catalog = policy.catalog
        self.quiet_allowed = rules.allowed_hours(self.catalog)
        self.applied_seq = 0
        self.n_resolved = 0  # outcomes learned (arrived or window closed) since the model was loaded
        self._customers: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def personal(self) -> bool:
        """Whether the policy keeps per-customer state (the log then carries pseudonyms)."""
        return self.policy.personalised

    def catch_up(self, store: Store, *, fresh: bool = False, committed: Sequence[LoggedInput] | None = None) -> int:
        """Drive the learner through the store's inputs it has not seen yet; returns how many were applied.

        ``fresh`` reads everything committed by any worker up to now, also where the store would
        otherwise read the log only every ``snapshot_seconds`` (what an answer about the posterior needs).

        ``committed`` are inputs the caller has just committed, as ``Transaction.log_inputs`` numbered
        them: when they follow the last applied input directly, they are applied without reading the
        log back (the same inputs in the same order: the same state as a replay). Otherwise, or when
        None, the log is read.

        The read happens outside the model's lock (the log only grows, and a read sees a complete
        prefix of it), so a caller holding a store transaction never waits on the model or vice versa.
        """
        if committed is not None:
            with self._lock:
                if not committed or committed[-1].seq <= self.applied_seq:
                    return 0  # nothing to apply, or another request's catch-up read them meanwhile
                if committed[0].seq == self.applied_seq + 1:
                    return self._apply_rows(list(committed))
        rows = store.input_log(self.version, self.applied_seq, fresh=fresh)
        with self._lock:
            return self._apply_rows(rows)

    def _apply_rows(self, rows: list[LoggedInput]) -> int:
        """Apply the rows past ``applied_seq``, in order (the caller holds the lock)."""
        fresh = [r for r in rows if r.seq > self.applied_seq]
        for kind, group in groupby(fresh, key=lambda r: _step(r.input.kind)):
            self._apply(kind, list(group))
        if fresh:
            self.applied_seq = fresh[-1].seq
        return len(fresh)

    def decide(self, batch: DecisionBatch, seed: int,
               customers: list[str] | None = None) -> tuple[Choices, Pricing | None]:
        """Choices for a batch with the policy reseeded by ``seed`` (same seed and state: same choices), and
        how the budgets priced it (None without budgets)."""
        with self._lock:
            if self.personal and customers is not None:  # a customer new to the log gets a fresh row
                batch = DecisionBatch(batch.cell_idx, batch.cost_row_idx, batch.mask,
                                      customer_idx=self._customer_index(customers))
            self.policy.reseed(seed)
            pricing = self.learner.pricing(batch)
            return self.learner.decide(batch, pricing=pricing), pricing

    def probabilities(self, batch: DecisionBatch, seed: int, customers: list[str] | None = None) -> np.ndarray:
        """Every arm's probability per row, float64 (n_rows, n_arms): the very vectors ``decide`` with the same
        ``seed`` and state samples from (the same draws, in the same order)."""
        with self._lock:
            if self.personal and customers is not None:
                batch = DecisionBatch(batch.cell_idx, batch.cost_row_idx, batch.mask,
                                      customer_idx=self._customer_index(customers))
            self.policy.reseed(seed)
            return self.learner.propensities(batch)

    def budget_status(self) -> list[BudgetStatus]:
        """Each budgeted channel's month so far, as the loop's inputs up to now count it."""
        with self._lock:
            pacer = self.learner.pacer
            return [] if pacer is None else pacer.status()

    def posterior_of(self, cell: int) -> tuple[np.ndarray, np.ndarray] | None:
        """A copy of one cell's posterior (alpha, beta), (n_outcomes, n_arms), open messages included."""
        with self._lock:
            posterior = self.learner.posterior()
            if posterior is None:
                return None
            return posterior.alpha[cell].copy(), posterior.beta[cell].copy()

    def _apply(self, step: str, group: list[LoggedInput]) -> None:
        inputs = [r.input for r in group]
        if step == "tick":
            self.learner.advance(max(i.at for i in inputs))
            return
        key = np.array([i.key for i in inputs], dtype=object)
        cell = np.array([i.cell for i in inputs], dtype=np.int64)
        arm = np.array([i.arm for i in inputs], dtype=np.int64)
        sent_at = np.array([i.sent_at for i in inputs], dtype=np.float64)
        customer = self._customer_index([i.customer for i in inputs]) if self.personal else None
        sends = Sends(key=key, cell_idx=cell, arm=arm, sent_at=sent_at, customer_idx=customer)
        if step == "sent":
            self.learner.sent(sends)
            return
        if step == "refund":
            self.learner.undelivered(sends, np.array([i.successes for i in inputs], dtype=np.float64))
            return
        self.n_resolved += len(inputs)
        self.learner.resolve(Resolved(
            key=key, cell_idx=cell, arm=arm, outcome_idx=np.array([i.outcome for i in inputs], dtype=np.int64),
            successes=np.array([i.successes for i in inputs], dtype=np.float64),
            failures=np.array([i.failures for i in inputs], dtype=np.float64),
            sent_at=sent_at, resolved_at=np.array([i.at for i in inputs], dtype=np.float64),
            arrived=np.array([i.kind == InputKind.ARRIVED for i in inputs]), customer_idx=customer))

    def personal_factors(self, pseudonym: str) -> np.ndarray | None:
        """What the customer's own evidence does to each channel's rates, float64 (n_outcomes, n_channels),
        or None for a policy that keeps nothing per customer or a customer it never heard of."""
        with self._lock:
            row = self._customers.get(pseudonym)
            factors = None if row is None else self.policy.personal_factors(np.array([row]))
            return None if factors is None else factors[0]

    def own_history(self, pseudonym: str) -> OwnHistory | None:
        """The customer's recent messages and the factors their history puts on each channel's click rate;
        None for a customer without messages or evidence of their own."""
        with self._lock:
            row = self._customers.get(pseudonym)
            if row is None:
                return None
            customer = np.array([row])
            clock = self.learner.clock
            recent = self.learner.recent_sends.counts(customer, clock if clock is not None else 0.0)
            one = DecisionBatch(np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones((1, self.catalog.n_arms), bool),
                                customer_idx=customer, recent_sends=recent if self.policy.contextual else None)
            click = self.catalog.outcomes.index("click") if "click" in self.catalog.outcomes else 0
            personal, combined = self.policy.personal_factors(customer), self.policy.channel_factors(one)
            if not recent.any() and (personal is None or np.all(personal == 1.0)):
                return None  # decided for, perhaps, but nothing of their own learned yet
            return OwnHistory(self.catalog.channels, tuple(int(n) for n in recent[0]),
                              None if personal is None else tuple(personal[0, click].tolist()),
                              None if combined is None else tuple(combined[0, click].tolist()))

    def forget_customer(self, pseudonym: str) -> bool:
        """Erase what the model keeps of one customer (personal state, recent messages); True if it had any.

        The store blanks the customer's pseudonym in the input log, so a replay never rebuilds it.
        """
        with self._lock:
            row = self._customers.pop(pseudonym, None)
            if row is None:
                return False
            self.learner.forget(np.array([row], dtype=np.int64))
            return True

    def _customer_index(self, pseudonyms: list[str]) -> np.ndarray:
        """Dense ids in order of first appearance (in the log or in a decision); 0 for no pseudonym.

        The ids are private to this process: another worker numbers the same pseudonyms its own way and
        reaches the same state, since every state keyed by them comes from the same inputs.
        """
        for p in pseudonyms:
            if p and p not in self._customers:
                self._customers[p] = len(self._customers) + 1
        return np.array([self._customers.get(p, NO_CUSTOMER) for p in pseudonyms], dtype=np.int64)


def _step(kind: int) -> str:
    """Which learner call an input kind goes to: runs of the same call are applied as one batch."""
    if kind == InputKind.SENT:
        return "sent"
    if kind == InputKind.TICK:
        return "tick"
    if kind == InputKind.REFUND:
        return "refund"
    return "resolve"
