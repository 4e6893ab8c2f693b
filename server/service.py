"""The server's work, one method per route: decide, record feedback, close windows, erase, readiness.

Each method takes the current time explicitly, so tests (and the reliability suite) drive the
clock. Every change is committed to the store before the method returns, and the served model only
ever learns by catching up with what was committed (``LiveModel.catch_up``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sendwise.engine import as_generator
from sendwise.models import N_HOURS, NO_MESSAGE, Catalog, DecisionBatch

from .attribution import CONSENT_EVENTS, SECONDS_PER_HOUR, ConsentChange, apply_event, close_decision, sent_inputs
from .consent import MAX_CLOCK_SKEW, ConsentState
from .deadline import check_deadline
from .errors import ConflictError, InputError, ModelUnavailableError
from .experiments import Served, ServedBaseline, ServedHoldout
from .guardrails import BatchOptions, ServingRules, batch_options, budget_effects
from .live_model import LiveModel
from .metrics import ServerMetrics
from .model_loader import ModelLoader
from .privacy import Pseudonymizer
from .schemas import (
    CustomerRequest,
    DecisionRequest,
    DecisionRows,
    Erasure,
    EventResult,
    EventStatus,
    FeedbackEvent,
    FeedbackRequest,
    FeedbackResponse,
    Readiness,
    Reason,
)
from .settings import Settings
from .store import (
    CustomerState,
    DecisionRecord,
    EventRecord,
    InputKind,
    LoggedInput,
    LoopInput,
    Reader,
    StaleReadError,
    Store,
    StoreUnavailableError,
    SuppressionKeys,
    Transaction,
)

if TYPE_CHECKING:
    from sendwise.models import Choices

CLOSE_BATCH = 5000
log = logging.getLogger("sendwise.server")


class DecisionPlan(NamedTuple):
    """What a decision request will answer and log, before anything is written."""

    decisions: DecisionRows
    records: list[DecisionRecord]


class SendwiseService:
    """Decisions and learning over a store, with the model that ``refresh_model`` keeps current."""

    def __init__(self, settings: Settings, store: Store, rules: ServingRules, loader: ModelLoader,
                 pseudonymize: Pseudonymizer, metrics: ServerMetrics) -> None:
        self.settings = settings
        self.store = store
        self.rules = rules
        self.loader = loader
        self.pseudonymize = pseudonymize
        self.metrics = metrics
        self.holdout = ServedHoldout.from_settings(settings, rules)
        self.baseline = ServedBaseline.from_settings(settings, loader.world)
        self.model: LiveModel | None = None
        self.model_error: str | None = None
        # Each request's seed: fresh randomness, or a reproducible stream when ``decision_seed`` is set.
        seed = settings.decision_seed
        self._seeds = None if seed is None else as_generator(seed, name="decision_seed")
        self._seed_lock = threading.Lock()

    def refresh_model(self) -> None:
        """Load the model if none is served yet or its registry alias moved; on failure keep the last good one.

        The new model catches up with its own deltas before it is swapped in (one reference
        assignment), so requests already running finish on the old one.
        """
        try:
            if self.model is not None and (not self.loader.follows_alias
                                           or self.loader.current_version() == self.model.version):
                self.model_error = None
                return
            policy, version = self.loader.load()
            live = LiveModel(policy, version, self.rules)
            with self.store.transaction() as tx:
                tx.register_model(version, policy.catalog.to_dict(),
                                  dict(zip(policy.catalog.outcomes, policy.value.tolist(), strict=True)))
            live.catch_up(self.store)
        except Exception as exc:  # noqa: BLE001 - a broken model source must never stop the serving
            self.model_error = f"model source {self.settings.model_uri or 'prior'!r} failed: {exc}"
            log.error("%s; %s", self.model_error,
                      "keeping the last good model" if self.model else "no model is served yet")
            return
        if self.model is None or self.model.version != version:
            log.info("serving model %s", version)
        self.model, self.model_error = live, None
        self.metrics.model_loaded(version)

    def decide(self, request: DecisionRequest, now: datetime, *, dry_run: bool = False) -> DecisionRows:
        """One decision per customer, logged with its propensity, seed and model version before returning.

        The plan (sampling, guardrails, the response) is made outside any store lock, from a snapshot
        of the customers' consent and recent sends; the transaction then re-reads just those and plans
        again only if they changed meanwhile (another request decided for or opted out one of these
        customers), so two requests for one customer never both pass its frequency cap, and a long
        batch never holds up feedback. A store whose locks are per customer plans inside the
        transaction from its one read instead (``Store.plans_in_transaction``), and reads and plans
        again if its commit finds that read changed (``StaleReadError``). ``dry_run`` answers the same
        way and logs and counts nothing: what the dashboard's explanation shows.
        """
        live = self._live()
        people = request.customers
        region_idx, cell_idx = _contexts(people, live.catalog)
        customers = [self.pseudonymize(c.customer_id) for c in people]
        # Made once, and only if the suppression list holds anything: both reads below may use them.
        keys = cache(lambda: self._suppression_keys(people, customers, live.catalog))
        live.catch_up(self.store)  # answer with everything committed so far, by any worker
        state: CustomerState | None = None
        plan: DecisionPlan | None = None
        if dry_run or not self.store.plans_in_transaction:
            with self.store.snapshot() as view:
                state = self._customer_state(customers, keys, now, view)
            plan = self._plan(people, customers, region_idx, cell_idx, state, now, live)
            if dry_run:
                return plan.decisions
        # Decisions survive a killed process; a power cut may lose the last few, whose feedback then
        # reports unknown_decision. Feedback, consent and learning always commit durably.
        while True:
            try:
                with self.store.transaction(durable=False) as tx:
                    current = self._customer_state(customers, keys, now, tx)
                    if plan is None or current != state:
                        plan, state = self._plan(people, customers, region_idx, cell_idx, current, now, live), current
                    check_deadline("logging the decisions")
                    logged = self._commit(plan, live, tx)
                break
            except StaleReadError:
                continue  # the next read differs from ``state``: planned again
        live.catch_up(self.store, committed=logged)
        for channel, count in Counter(r.channel for r in plan.records).items():
            self.metrics.decisions.labels(channel).inc(count)
        return plan.decisions

    def _customer_state(self, customers: list[str], suppression_keys: SuppressionKeys, now: datetime,
                        reader: Reader) -> CustomerState:
        """What a plan reads of the store: each customer's opted-out channels and sends inside the cap window."""
        since = now.timestamp() - self.rules.cap_window_hours * 3600.0 if self.rules.has_caps else None
        return reader.customer_state(customers, since, suppression_keys)

    def _plan(self, people: list[CustomerRequest], customers: list[str], region_idx: np.ndarray,
              cell_idx: np.ndarray, state: CustomerState, now: datetime, live: LiveModel) -> DecisionPlan:
        """The decisions and their log rows, from the customers' ``state``: reads and writes nothing."""
        options = batch_options(people, live.catalog, self.rules, live.quiet_allowed,
                                [state.blocked.get(p, ()) for p in customers],
                                [state.sends.get(p, ()) for p in customers], now)
        batch = DecisionBatch(cell_idx, region_idx, options.mask)
        seed = self._next_seed()
        chosen, pricing = live.decide(batch, seed, customers)
        priced: list[dict[str, float]] | None = None
        if pricing is not None:
            guardrails, priced = budget_effects(live.catalog, options.mask, options.guardrails, pricing)
            options = BatchOptions(pricing.batch.mask, options.send_at, guardrails)
            batch = pricing.batch  # the options the policy had: what the log's ``allowed`` must say
        served = self.baseline.serve(people, customers, batch, chosen, live.catalog, live.policy.cost, seed,
                                     lambda: live.probabilities(batch, seed, customers))
        decisions, records = self._decisions(people, customers, options, batch, chosen, live, seed, now, priced,
                                             served)
        return DecisionPlan(*self.holdout.apply(people, decisions, records, live.catalog))

    def _suppression_keys(self, people: list[CustomerRequest], customers: list[str],
                          catalog: Catalog) -> dict[str, tuple[str, str]]:
        """The suppression-list key of each (customer, requested channel) the catalog knows → that pair."""
        known = frozenset(catalog.channels)
        return {self.pseudonymize.suppression_key(customer, channel): (customer, channel)
                for person, customer in zip(people, customers, strict=True) for channel in known & set(person.channels)}

    @staticmethod
    def _commit(plan: DecisionPlan, live: LiveModel, tx: Transaction) -> list[LoggedInput] | None:
        """Log the plan's decisions and the messages they send (the loop's ``SENT`` inputs), as logged."""
        tx.add_decisions(plan.records)
        return tx.log_inputs(live.version, sent_inputs(plan.records, personal=live.personal))

    def _next_seed(self) -> int:
        if self._seeds is None:
            return secrets.randbits(63)
        with self._seed_lock:
            return int(self._seeds.integers(0, 2**63))

    def _decisions(self, people: list[CustomerRequest], customers: list[str], options: BatchOptions,
                   batch: DecisionBatch, chosen: Choices, live: LiveModel, seed: int, now: datetime,
                   priced: list[dict[str, float]] | None = None,
                   served: Served | None = None) -> tuple[DecisionRows, list[DecisionRecord]]:
        """The response's decisions and their log rows (everything off-policy evaluation and learning need).

        Customers with the same guardrails (one shared list per profile), mode and budget pricing
        (``priced``, one shared dict per pricing) share one ``Reason``, as the response's plain value and
        as the log's JSON. ``served`` replaces the baseline group's choices (``ServedBaseline.serve``).
        """
        catalog, created_at = live.catalog, now.timestamp()
        channel_names = (*catalog.channels, NO_MESSAGE)  # indexed by arm // 24; the no-message arm is last
        reasons: dict[tuple[int, bool, int, bool, int], tuple[dict[str, Any], str]] = {}
        no_pricing: dict[str, float] = {}
        pricings = priced if priced is not None else [no_pricing] * len(people)
        baseline = [False] * len(people) if served is None else served.baseline.tolist()
        shadows = [None] * len(people) if served is None else served.model_choice
        if served is not None:
            chosen = served.choices
        baseline_teaches = self.baseline.teaches
        decisions: list[dict[str, Any]] = []
        records = []
        allowed, support, epsilon = catalog.encode_mask(batch.mask), chosen.support.tolist(), chosen.epsilon.tolist()
        arms = chosen.arm
        hours = np.where(arms == catalog.null_arm, -1, arms % N_HOURS).tolist()
        window_seconds = {c: self.rules.attribution_window_hours(c) * 3600.0 for c in catalog.channels}
        ids = _decision_ids(len(people), now)
        for row, (person, customer, decision_id, arm, hour, explored, p, cost, cell, send_at, guardrails,
                  multipliers, by_baseline, shadow) in enumerate(
                zip(people, customers, ids, arms.tolist(), hours, chosen.explored.tolist(), chosen.propensity.tolist(),
                    live.policy.cost[batch.cost_row_idx, arms].tolist(), batch.cell_idx.tolist(), options.send_at,
                    options.guardrails, pricings, baseline, shadows, strict=True)):
            channel = channel_names[arm // N_HOURS]
            at = None if hour < 0 else send_at[hour]
            key = (id(guardrails), explored, id(multipliers), by_baseline, id(shadow))
            if key not in reasons:
                mode = "baseline" if by_baseline else "exploration" if explored else "exploitation"
                reason = Reason(mode=mode, guardrails=guardrails, cost_multipliers=multipliers, model_choice=shadow)
                reasons[key] = reason.model_dump(), reason.model_dump_json()
            reason, reason_json = reasons[key]
            local_hour = None if hour < 0 else hour
            # Values this method made and checked, in ``Decision``'s fields and order (``DecisionRows``).
            decisions.append({"decision_id": decision_id, "customer_id": person.customer_id, "channel": channel,
                              "local_hour": local_hour, "send_at": at, "propensity": p,
                              "model_version": live.version, "reason": reason})
            sent = None if at is None else at.timestamp()
            records.append(DecisionRecord(
                decision_id=decision_id, customer=customer, created_at=created_at, region=person.region,
                industry=person.industry, campaign_type=person.campaign_type,
                lifecycle_stage=person.lifecycle_stage, timezone=person.timezone, channel=channel,
                local_hour=local_hour, send_at=sent, arm=arm, cell=cell, propensity=p, explored=explored, cost=cost,
                seed=seed, row=row, model_version=live.version, reason=reason_json, closed=sent is None,
                window_closes_at=created_at if sent is None else sent + window_seconds[channel],
                allowed=allowed[row], support=support[row], epsilon=epsilon[row],
                teaches=baseline_teaches or not by_baseline))
        return DecisionRows(decisions), records

    def record_feedback(self, request: FeedbackRequest, now: datetime) -> FeedbackResponse:
        """Apply events all-or-nothing; a known event id with different content is a 409 and changes nothing."""
        live = self._live()
        events = request.events
        self._check_event_times(events, now)
        channel_errors = _channel_errors(events, live.catalog)
        if channel_errors:
            raise InputError(channel_errors)
        hashes = [_payload_hash(e) for e in events]
        decision_ids = [str(e.decision_id) for e in events]  # once per event: the lookup and the log use them
        consent_ids = {i for e, i in zip(events, decision_ids, strict=True) if e.type in CONSENT_EVENTS}
        first_hash: dict[str, str] = {}
        for event, digest in zip(events, hashes, strict=True):
            if first_hash.setdefault(event.event_id, digest) != digest:
                raise ConflictError(f"event_id {event.event_id!r} appears twice in this request with different content")

        def apply(tx: Transaction) -> tuple[list[EventResult], list[LoggedInput] | None]:
            """The request's events in one unit of work; a 409 undoes this request's unit alone."""
            results, records = [], []
            stored, decisions = tx.feedback_reads(first_hash, decision_ids, consent_ids)
            for event_id, digest in first_hash.items():
                if stored.get(event_id, digest) != digest:
                    raise ConflictError(f"event_id {event_id!r} was already recorded with different content; "
                                        "nothing in this request was applied")
            changed, inputs, seen = set(), [], set(stored)
            personal, received_at = live.personal, now.timestamp()
            for event, digest, decision_id in zip(events, hashes, decision_ids, strict=True):
                if event.event_id in seen:
                    results.append(EventResult.model_construct(event_id=event.event_id, status="duplicate"))
                    continue
                seen.add(event.event_id)
                decision = decisions.get(decision_id)
                status: EventStatus = "unknown_decision"
                if decision is not None:
                    effect = apply_event(decision, event, live.catalog, personal=personal)
                    if effect.decision is not decision:  # ``apply_event`` returns a changed decision anew
                        decisions[decision.decision_id] = effect.decision
                        changed.add(decision.decision_id)
                    for change in effect.consent:
                        self._change_consent(tx, change)
                    inputs += effect.inputs
                    status = effect.status
                # Built from a checked id and a status of ``EventStatus``: nothing to validate again.
                results.append(EventResult.model_construct(event_id=event.event_id, status=status))
                records.append(EventRecord(
                    event_id=event.event_id, payload_hash=digest, decision_id=decision_id,
                    customer=None if decision is None else decision.customer, type=event.type,
                    timestamp=event.timestamp.timestamp(), value=event.value, channel=event.channel, status=status,
                    received_at=received_at))
            tx.update_decisions(decisions[changed_id] for changed_id in changed)
            check_deadline("recording the events")
            tx.add_events(records)
            return results, tx.log_inputs(live.version, inputs)

        results, logged = self.store.durable_unit(apply)
        live.catch_up(self.store, committed=logged)
        for (event_type, status), count in Counter((e.type, r.status) for e, r in zip(events, results,
                                                                                       strict=True)).items():
            self.metrics.feedback.labels(event_type, status).inc(count)
        return FeedbackResponse.model_construct(results=results)

    def _change_consent(self, tx: Transaction, change: ConsentChange) -> None:
        """Apply a consent change to the channel's state; a consent may also lift a suppression left by erasure."""
        tx.set_consent(*change)
        if not change.unsubscribed:
            tx.update_suppression(change.customer, self.pseudonymize.suppression_key(change.customer, change.channel),
                                  ConsentState(False, change.at))

    def _check_event_times(self, events: list[FeedbackEvent], now: datetime) -> None:
        """422 for events from the future (beyond clock skew) or older than any attribution window could be."""
        grace = timedelta(seconds=self.settings.attribution_grace_seconds)
        oldest = now - self.rules.longest_attribution_window - grace
        latest = now + MAX_CLOCK_SKEW
        errors = []
        for i, e in enumerate(events):
            if e.timestamp > latest:
                errors.append((("body", "events", i, "timestamp"),
                               f"must not be later than now + {MAX_CLOCK_SKEW}; got {e.timestamp.isoformat()}"))
            elif e.timestamp < oldest:
                errors.append((("body", "events", i, "timestamp"),
                               f"must not be earlier than now - {now - oldest} (the longest attribution window "
                               f"plus grace); got {e.timestamp.isoformat()}"))
        if errors:
            raise InputError(errors)

    def close_windows(self, now: datetime) -> int:
        """Count every attribution window closed before ``now`` (minus the grace period); returns how many.

        Then the served model's clock ticks to ``now`` (an input of its loop, logged like the others):
        open messages age and old evidence fades by the server's clock.
        """
        live = self.model
        if live is None:
            return 0
        until = now.timestamp() - self.settings.attribution_grace_seconds
        total = 0
        while True:
            with self.store.transaction() as tx:
                due = tx.due_decisions(until, CLOSE_BATCH)
                inputs = []
                closed = []
                for decision in due:
                    record, decision_inputs = close_decision(decision, live.catalog, personal=live.personal)
                    closed.append(record)
                    inputs += decision_inputs
                tx.update_decisions(closed)
                last = len(due) < CLOSE_BATCH
                if last:
                    inputs.append(LoopInput(int(InputKind.TICK), "", -1, -1, -1, 0.0, 0.0, 0.0,
                                            now.timestamp() / SECONDS_PER_HOUR))
                tx.log_inputs(live.version, inputs)
            live.catch_up(self.store)
            total += len(due)
            if last:
                break
        self.metrics.closed_windows.inc(total)
        return total

    def erase_customer(self, customer_id: str) -> Erasure:
        """Delete a customer's decisions, events and channel states; the posterior keeps only aggregates.

        Opt-outs in force move to the suppression list (keys only), so the same id does not get the
        channel again: what email platforms do after a deletion request.
        """
        customer = self.pseudonymize(customer_id)
        with self.store.transaction() as tx:
            opt_outs = tx.opt_outs(customer)
            erased = tx.erase_customer(customer)
            for channel, at in opt_outs.items():
                tx.update_suppression(customer, self.pseudonymize.suppression_key(customer, channel),
                                      ConsentState(True, at))
        if self.model is not None:
            self.model.forget_customer(customer)  # the state this worker keeps of them
        log.info("erased a customer: %d decisions, %d events, %d channel states", *erased)
        note = self.store.purge_erased()
        if note is not None:
            log.warning("after an erasure: %s", note)
        return Erasure(customer_id=customer_id, decisions_deleted=erased.decisions, events_deleted=erased.events,
                       channel_states_deleted=erased.channel_states)

    def readiness(self) -> Readiness:
        """Ready when a model is served and the store answers; degraded when the model source is failing or
        the store is only partly available (e.g. Redis down: decisions from the last snapshot, no feedback)."""
        version = None if self.model is None else self.model.version
        try:
            store_note = self.store.check()
        except StoreUnavailableError as exc:
            return Readiness(status="not_ready", model_version=version, detail=str(exc))
        if self.model is None:
            return Readiness(status="not_ready", model_version=None, detail=self.model_error or "no model loaded yet")
        if self.model_error is not None or store_note is not None:
            return Readiness(status="degraded", model_version=version, detail=self.model_error or store_note)
        return Readiness(status="ready", model_version=version)

    def _live(self) -> LiveModel:
        if self.model is None:
            raise ModelUnavailableError(f"no model is served yet ({self.model_error or 'loading'}); retry shortly")
        return self.model


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_DIGIT_COLUMNS = np.array([c for c in range(36) if c not in (8, 13, 18, 23)])  # the rest are dashes


def _decision_ids(n: int, now: datetime) -> list[str]:
    """``n`` new decision ids, as text: UUID version 7 (RFC 9562), the time in ms, then 74 random bits.

    Ids that grow with time go in at the end of the decisions' primary-key index rather than at
    random places in it, so logging a batch touches a few pages instead of one per decision. Made as
    arrays for the whole batch: the 16 bytes of each id, then its 36 characters.
    """
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, :6] = np.frombuffer((int(now.timestamp() * 1000) & (1 << 48) - 1).to_bytes(6, "big"), dtype=np.uint8)
    raw[:, 6] = 0x70 | raw[:, 6] & 0x0F  # version 7, then 12 random bits
    raw[:, 8] = 0x80 | raw[:, 8] & 0x3F  # variant 0b10, then 62 random bits
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_DIGIT_COLUMNS] = _HEX_DIGITS[np.stack([raw >> 4, raw & 0x0F], axis=2).reshape(n, 32)]
    joined = text.tobytes().decode("ascii")
    return [joined[i:i + 36] for i in range(0, 36 * n, 36)]


def _contexts(customers: list[CustomerRequest], catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """Region and cell ids of the customers; 422 for names the catalog does not know or a customer asked twice."""
    channels = frozenset(catalog.channels)
    try:
        region_idx, cell_idx = catalog.context_ids([c.region for c in customers], [c.industry for c in customers],
                                                   [c.campaign_type for c in customers])
        known = all(channels.issuperset(c.channels) and channels.issuperset(c.quiet_hours) for c in customers)
    except ValueError:
        known = False
    if not known or len({c.customer_id for c in customers}) < len(customers):
        raise InputError(_name_errors(customers, catalog))
    return region_idx, cell_idx


def _name_errors(customers: list[CustomerRequest], catalog: Catalog) -> list[tuple[tuple[str | int, ...], str]]:
    """Every name the catalog does not know, and every customer asked about again, with its location."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    first_row: dict[str, int] = {}
    for i, customer in enumerate(customers):
        loc = ("body", "customers", i)
        checks: list[tuple[tuple[str | int, ...], Callable[[str], int], str]] = [
                  (("region",), catalog.region_index, customer.region),
                  (("industry",), catalog.industry_index, customer.industry),
                  (("campaign_type",), catalog.campaign_index, customer.campaign_type)]
        checks += [(("channels", j), catalog.channel_index, ch) for j, ch in enumerate(customer.channels)]
        checks += [(("quiet_hours", ch), catalog.channel_index, ch) for ch in customer.quiet_hours]
        for where, index, name in checks:
            try:
                index(name)
            except ValueError as exc:
                errors.append(((*loc, *where), str(exc)))
        j = first_row.setdefault(customer.customer_id, i)
        if j != i:
            errors.append(((*loc, "customer_id"), f"customer_id appears more than once in this request "
                                                  f"(first at customers[{j}]); ask once per customer"))
    return errors


def _channel_errors(events: list[FeedbackEvent], catalog: Catalog) -> list[tuple[tuple[str | int, ...], str]]:
    """Every event channel the catalog does not know (it would block or re-open nothing real)."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    for i, e in enumerate(events):
        if e.channel is not None:
            try:
                catalog.channel_index(e.channel)
            except ValueError as exc:
                errors.append((("body", "events", i, "channel"), str(exc)))
    return errors


def _payload_hash(event: FeedbackEvent) -> str:
    """SHA-256 of the event's canonical JSON: same content in any spelling (e.g. time zone) → same hash."""
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()
