"""Durable server state behind one interface: decisions, feedback events, posterior deltas, customers.

:class:`Store` is what the service needs; :class:`SQLiteStore` is the default, one WAL-mode file with
``synchronous=FULL``, so a committed transaction survives a process or power crash. Customers appear
only as pseudonyms (HMAC-SHA256 with a secret pepper, see ``server.privacy``); the opt-outs of erased
customers stay as keys of a suppression list. Consent changes follow ``server.consent``. Times are UTC
seconds since the epoch.

The posterior is never stored as a whole: every transaction appends the learning loop's inputs it
produced (messages sent, outcomes arrived, windows closed, clock ticks) to ``loop_log``, in the same
transaction as the rows that caused them, and the served model is its base policy driven through
those inputs in order (``sendwise.models.Learner``), so a restart or another worker rebuilds it exactly.

``server.redis_store.RedisStore`` implements the same interface on Redis, for several workers or hosts.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields
from enum import IntEnum
from operator import attrgetter
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeVar

from .activity import CLOSING_SOON_ROWS, DAY, HOUR, Activity, FeedbackCount, HourlyCount, OpenWindow
from .consent import ConsentState, next_consent
from .deadline import wait_budget
from .group_commit import GroupCommit

NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs"})
BUSY_TIMEOUT_MS = 5000
T = TypeVar("T")


class StoreUnavailableError(RuntimeError):
    """The store cannot be reached or stayed locked past its timeout; the request may be retried."""


class StaleReadError(RuntimeError):
    """A commit found that what its transaction read under its locks was changed by another meanwhile (Redis:
    consent, which feedback changes without the customer's lock); nothing was written: read and plan again."""


@dataclass(frozen=True)
class DecisionRecord:
    """One logged decision: what was asked, what was chosen, and everything off-policy evaluation needs."""

    decision_id: str
    customer: str
    created_at: float
    region: str
    industry: str
    campaign_type: str
    lifecycle_stage: str | None
    timezone: str
    channel: str
    local_hour: int | None
    send_at: float | None
    arm: int
    cell: int
    propensity: float
    explored: bool
    cost: float
    seed: int
    row: int
    model_version: str
    reason: str
    window_closes_at: float | None
    delivery: str = "unknown"  # unknown | failed | delivered
    successes: str = ""  # comma-separated outcome names already learned as successes
    closed: bool = False
    # What the policy chose from. ``support == 0`` marks decisions logged before these were recorded.
    allowed: str = ""  # mask code of the allowed arms (``Catalog.encode_mask``)
    support: int = 0  # number of arms with positive probability
    epsilon: float = 0.0  # exploration floor of the policy
    teaches: bool = True  # its message and outcomes reach the learning loop (not a baseline's, unless in shadow mode)


@dataclass(frozen=True)
class EventRecord:
    """One feedback event as received, with the status it was given."""

    event_id: str
    payload_hash: str
    decision_id: str
    customer: str | None
    type: str
    timestamp: float
    value: float | None
    channel: str | None
    status: str
    received_at: float


class InputKind(IntEnum):
    """What a ``LoopInput`` tells the learning loop (``sendwise.models.Learner``)."""

    SENT = 0  # a message went out (or is planned to, at ``sent_at``)
    ARRIVED = 1  # an outcome happened: ``successes`` of ``outcome`` at ``at``
    CLOSED = 2  # the attribution window closed without ``outcome``: ``failures`` (0 if undelivered)
    TICK = 3  # the clock moved to ``at``
    REFUND = 4  # ``successes`` is 1: the message was not delivered, its spend comes back; -1: delivered after all


class LoopInput(NamedTuple):
    """One input of a served model's learning loop, exactly what the loop is driven with.

    Times are hours since the Unix epoch; ``key`` is the decision id (empty for ticks); ``outcome`` is
    -1 for sends and ticks; ``customer`` is the pseudonym, only for policies that personalise.
    """

    kind: int
    key: str
    cell: int
    arm: int
    outcome: int
    successes: float
    failures: float
    sent_at: float
    at: float
    customer: str = ""


class LoggedInput(NamedTuple):
    """A ``LoopInput`` as stored: ``seq`` orders the log, ``txn`` groups one transaction's rows."""

    seq: int
    txn: int
    input: LoopInput


class ModelInfo(NamedTuple):
    """What the store remembers of a served model version."""

    catalog: dict[str, list[str]]
    value: dict[str, float]


class Erasure(NamedTuple):
    """How many rows of each kind an erasure removed."""

    decisions: int
    events: int
    channel_states: int


class CustomerState(NamedTuple):
    """What deciding for a set of customers depends on in the store (pseudonym → value; absent: none)."""

    blocked: dict[str, set[str]]
    sends: dict[str, list[tuple[str, float]]]


SuppressionKeys = Callable[[], dict[str, tuple[str, str]]]  # made on demand: suppression key → (customer, channel)


class Reader(ABC):
    """What planning a decision reads: consent, suppressions and recent sends of customers."""

    def customer_state(self, customers: Sequence[str], sends_since: float | None,
                       suppression_keys: SuppressionKeys) -> CustomerState:
        """Each customer's opted-out channels (by consent state, or after erasure on the suppression list)
        and, unless ``sends_since`` is None, their sends after it: what a decision plan reads.

        ``suppression_keys`` is called only if the suppression list holds any entry. A store that can
        read all of it at once (Redis: one round trip) does so.
        """
        blocked = self.unsubscribed_channels(customers)
        if self.any_suppressed():
            keys = suppression_keys()
            for key in self.suppressed(keys):
                customer, channel = keys[key]
                blocked.setdefault(customer, set()).add(channel)
        return CustomerState(blocked, {} if sends_since is None else self.sends_since(customers, sends_since))

    @abstractmethod
    def unsubscribed_channels(self, customers: Sequence[str]) -> dict[str, set[str]]:
        """Channels each customer unsubscribed from (and did not consent to again)."""

    @abstractmethod
    def suppressed(self, keys: Collection[str]) -> set[str]:
        """Which of the suppression keys (``Pseudonymizer.suppression_key``) are on the suppression list."""

    @abstractmethod
    def any_suppressed(self) -> bool:
        """Whether the suppression list holds any entry: when it holds none, no key needs computing."""

    @abstractmethod
    def sends_since(self, customers: Sequence[str], since: float) -> dict[str, list[tuple[str, float]]]:
        """(channel, send_at) of each customer's messages planned after ``since``, except failed deliveries."""


class Transaction(Reader):
    """Reads and writes inside one atomic, serialised unit of work."""

    @abstractmethod
    def add_decisions(self, records: Iterable[DecisionRecord]) -> None: ...

    @abstractmethod
    def decisions(self, decision_ids: Iterable[str]) -> dict[str, DecisionRecord]: ...

    @abstractmethod
    def update_decisions(self, records: Iterable[DecisionRecord]) -> None:
        """Write back ``delivery``, ``successes`` and ``closed`` of decisions (one statement for them all)."""

    @abstractmethod
    def event_hashes(self, event_ids: Iterable[str]) -> dict[str, str]:
        """Payload hash of each already stored event id."""

    def feedback_reads(self, event_ids: Iterable[str], decision_ids: Iterable[str],
                       consent_ids: Collection[str] = ()) -> tuple[dict[str, str], dict[str, DecisionRecord]]:
        """``event_hashes`` and ``decisions``: what applying feedback reads first. A store that can read both
        at once (Redis: one round trip, every lock with it, the consent of the customers of ``consent_ids``,
        the decisions whose events may change it, included) does so."""
        return self.event_hashes(event_ids), self.decisions(decision_ids)

    @abstractmethod
    def add_events(self, records: Iterable[EventRecord]) -> None: ...

    @abstractmethod
    def set_consent(self, customer: str, channel: str, unsubscribed: bool, at: float) -> None:
        """Apply an unsubscribe or consent to the customer's channel by the rule of ``consent.next_consent``."""

    @abstractmethod
    def opt_outs(self, customer: str) -> dict[str, float]:
        """The customer's channels with an opt-out in force, and its time."""

    @abstractmethod
    def update_suppression(self, customer: str, key: str, change: ConsentState) -> None:
        """Apply an opt-out or consent to the suppression entry ``key`` of one of ``customer``'s channels.

        By the rule of ``consent.next_consent``, with no entry meaning no opt-out: an opt-out adds the
        entry (or keeps the later time), a consent that is unambiguously later removes it. The list
        holds keys only, never ``customer``, and erasure leaves it alone.
        """

    @abstractmethod
    def log_inputs(self, model_version: str, inputs: Sequence[LoopInput]) -> list[LoggedInput] | None:
        """Append learning-loop inputs as one group, in order; they as logged, when their ``seq`` is known.

        A store that numbers the log only at commit (Redis) answers None. With the numbers, the
        served model applies its own inputs after the commit without reading them back
        (``LiveModel.catch_up``).
        """

    @abstractmethod
    def due_decisions(self, until: float, limit: int) -> list[DecisionRecord]:
        """Open decisions whose attribution window closed at or before ``until``, oldest first."""

    @abstractmethod
    def erase_customer(self, customer: str) -> Erasure: ...

    @abstractmethod
    def register_model(self, model_version: str, catalog: dict[str, list[str]], value: dict[str, float]) -> None:
        """Remember a model version's catalog and outcome values (for exporting logs with rewards)."""


class Store(ABC):
    """Where the server keeps everything that must outlive the process."""

    # Whether a decision is planned inside its transaction, from the one read it makes there, rather than from
    # a snapshot that the transaction reads again. Redis: its locks are per customer (a plan holds up only
    # decisions for the same customers) and each read is a round trip. SQLite: one writer at a time, so a
    # plan made inside would hold up every write, while a snapshot costs little.
    plans_in_transaction: ClassVar[bool] = False

    @abstractmethod
    def transaction(self, durable: bool = True) -> AbstractContextManager[Transaction]:
        """Context manager yielding a :class:`Transaction`; commits on exit, rolls back on error.

        A durable commit survives a power cut; otherwise it survives a crash of the process only.
        """

    def durable_unit(self, work: Callable[[Transaction], T]) -> T:
        """Run ``work(tx)`` as one all-or-nothing, durable unit and return its result once committed.

        By default a transaction of its own. SQLite lets the units of concurrent requests share one
        commit, one sync of the WAL (``server.group_commit``): each is still undone alone if it fails.
        """
        with self.transaction() as tx:
            return work(tx)

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Reader]:
        """Context manager yielding a :class:`Reader` that takes no lock and never waits for a writer.

        For answers that change nothing (the dashboard's dry-run explanation): a transaction would
        serialise them with the decisions and feedback they only look at.
        """

    @abstractmethod
    def input_log(self, model_version: str, after_seq: int, *, fresh: bool = False) -> list[LoggedInput]:
        """Learning-loop inputs of a model version with ``seq > after_seq``, in order.

        A store that reads the log at most every so often (Redis) reads it now when ``fresh`` is set.
        """

    @abstractmethod
    def open_decisions(self) -> int:
        """Decisions whose attribution window is still open."""

    @abstractmethod
    def check(self) -> str | None:
        """Raise :class:`StoreUnavailableError` unless the store answers.

        A store that can serve decisions while its backend is away (Redis) answers with a note saying
        so instead of raising; None means fully available.
        """

    @abstractmethod
    def closed_decisions(self) -> tuple[list[DecisionRecord], dict[str, ModelInfo]]:
        """Every closed decision, oldest first, and the catalog and values of each model version."""

    @abstractmethod
    def activity(self, until: float, hours: int) -> Activity:
        """Decisions per hour and channel, explorations and feedback in ``(until - hours h, until]``; open windows.

        Only reads, and never waits for a writer: the dashboard asks while decisions and feedback go on.
        """

    @abstractmethod
    def first_served(self, model_version: str) -> float | None:
        """When the first decision logged with ``model_version`` was made (None before its first one)."""

    @abstractmethod
    def add_hits(self, key: str, amount: int, window_start: float, window_seconds: float) -> int:
        """Add ``amount`` to ``key``'s counter in the fixed window starting at ``window_start``; its new total.

        The rate limits' counters, one per key and shared by every worker on the store: a later window
        starts the count again. Atomic, but it need not survive a power cut.
        """

    @abstractmethod
    def maintain(self) -> None:
        """Housekeeping the server runs every second or so, off the request path."""

    @abstractmethod
    def purge_erased(self) -> str | None:
        """After an erasure, remove what the deleted rows leave in the store's files; a note if it could not.

        SQLite rewrites the WAL into the database (deleted content is zeroed: ``secure_delete``); Redis
        rewrites its append-only file in the background. Until then the old bytes are on disk.
        """

    @abstractmethod
    def revoke_session(self, key: str, until: float, now: float) -> None:
        """Put a dashboard session (``key``, a digest of its id) on the revocation list until it expires
        (``until``); entries whose sessions have expired by ``now`` may go."""

    @abstractmethod
    def session_revoked(self, key: str) -> bool:
        """Whether a session was signed out (its cookie may still be presented by whoever copied it)."""

    @abstractmethod
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY, customer TEXT NOT NULL, created_at REAL NOT NULL,
    region TEXT NOT NULL, industry TEXT NOT NULL, campaign_type TEXT NOT NULL, lifecycle_stage TEXT,
    timezone TEXT NOT NULL, channel TEXT NOT NULL, local_hour INTEGER, send_at REAL,
    arm INTEGER NOT NULL, cell INTEGER NOT NULL, propensity REAL NOT NULL, explored INTEGER NOT NULL,
    cost REAL NOT NULL, seed INTEGER NOT NULL, row INTEGER NOT NULL, model_version TEXT NOT NULL,
    reason TEXT NOT NULL, window_closes_at REAL, delivery TEXT NOT NULL, successes TEXT NOT NULL,
    closed INTEGER NOT NULL, allowed TEXT NOT NULL DEFAULT '', support INTEGER NOT NULL DEFAULT 0,
    epsilon REAL NOT NULL DEFAULT 0.0, teaches INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS decisions_open ON decisions (closed, window_closes_at);
CREATE INDEX IF NOT EXISTS decisions_customer ON decisions (customer, send_at);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, payload_hash TEXT NOT NULL, decision_id TEXT NOT NULL, customer TEXT,
    type TEXT NOT NULL, timestamp REAL NOT NULL, value REAL, channel TEXT, status TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_customer ON events (customer);
CREATE TABLE IF NOT EXISTS loop_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, txn INTEGER NOT NULL, model_version TEXT NOT NULL,
    kind INTEGER NOT NULL, key TEXT NOT NULL, cell INTEGER NOT NULL, arm INTEGER NOT NULL,
    outcome INTEGER NOT NULL, successes REAL NOT NULL, failures REAL NOT NULL, sent_at REAL NOT NULL,
    at REAL NOT NULL, customer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS loop_log_version ON loop_log (model_version, seq);
CREATE TABLE IF NOT EXISTS channel_consent (
    customer TEXT NOT NULL, channel TEXT NOT NULL, unsubscribed INTEGER NOT NULL, changed_at REAL NOT NULL,
    PRIMARY KEY (customer, channel)
);
CREATE TABLE IF NOT EXISTS models (model_version TEXT PRIMARY KEY, catalog TEXT NOT NULL, outcome_values TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS suppression (key TEXT PRIMARY KEY, opted_out_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rate_counts (key TEXT PRIMARY KEY, window_start REAL NOT NULL, hits INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_sessions (key TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID;
"""
# One statement per counted request: the newest window wins, so workers whose clocks differ a little share it.
_ADD_HITS = (
    "INSERT INTO rate_counts (key, window_start, hits) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
    "hits = CASE WHEN excluded.window_start > window_start THEN excluded.hits ELSE hits + excluded.hits END, "
    "window_start = MAX(window_start, excluded.window_start) RETURNING hits")
# Columns added to ``decisions`` since its first version; a DB created before them gets them on open.
_ADDED_DECISION_COLUMNS = (
    ("allowed", "TEXT NOT NULL DEFAULT ''"),
    ("support", "INTEGER NOT NULL DEFAULT 0"),
    ("epsilon", "REAL NOT NULL DEFAULT 0.0"),
    ("teaches", "INTEGER NOT NULL DEFAULT 1"),
)
_DECISION_COLUMNS = tuple(f.name for f in fields(DecisionRecord))
_DECISION_SELECT = f"SELECT {', '.join(_DECISION_COLUMNS)} FROM decisions"
_EVENT_COLUMNS = tuple(f.name for f in fields(EventRecord))
_decision_row = attrgetter(*_DECISION_COLUMNS)  # much faster than dataclasses.astuple, which deep-copies
_event_row = attrgetter(*_EVENT_COLUMNS)


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


_EXPLORED, _CLOSED, _TEACHES = (_DECISION_COLUMNS.index(c) for c in ("explored", "closed", "teaches"))


def _decision(row: Sequence[Any]) -> DecisionRecord:
    """A decision from its row (columns in ``_DECISION_COLUMNS`` order); the stored 0/1 flags become bools."""
    values = list(row)
    values[_EXPLORED], values[_CLOSED] = bool(values[_EXPLORED]), bool(values[_CLOSED])
    values[_TEACHES] = bool(values[_TEACHES])
    return DecisionRecord(*values)


class SQLiteTransaction(Transaction):
    """A :class:`Transaction` on an open ``BEGIN IMMEDIATE`` of a SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def unsubscribed_channels(self, customers: Sequence[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        rows = self._conn.execute(
            f"SELECT customer, channel FROM channel_consent WHERE unsubscribed = 1 "
            f"AND customer IN ({_placeholders(len(customers))})", tuple(customers))
        for customer, channel in rows:
            out.setdefault(customer, set()).add(channel)
        return out

    def suppressed(self, keys: Collection[str]) -> set[str]:
        wanted = tuple(keys)
        rows = self._conn.execute(f"SELECT key FROM suppression WHERE key IN ({_placeholders(len(wanted))})", wanted)
        return {key for (key,) in rows}

    def any_suppressed(self) -> bool:
        return self._conn.execute("SELECT EXISTS (SELECT 1 FROM suppression)").fetchone()[0] == 1

    def sends_since(self, customers: Sequence[str], since: float) -> dict[str, list[tuple[str, float]]]:
        out: dict[str, list[tuple[str, float]]] = {}
        rows = self._conn.execute(
            f"SELECT customer, channel, send_at FROM decisions WHERE customer IN ({_placeholders(len(customers))}) "
            f"AND send_at > ? AND delivery != 'failed'", (*customers, since))
        for customer, channel, send_at in rows:
            out.setdefault(customer, []).append((channel, send_at))
        return out

    def add_decisions(self, records: Iterable[DecisionRecord]) -> None:
        self._conn.executemany(
            f"INSERT INTO decisions ({', '.join(_DECISION_COLUMNS)}) VALUES ({_placeholders(len(_DECISION_COLUMNS))})",
            map(_decision_row, records))

    def decisions(self, decision_ids: Iterable[str]) -> dict[str, DecisionRecord]:
        ids = tuple(set(decision_ids))
        rows = self._conn.execute(f"{_DECISION_SELECT} WHERE decision_id IN ({_placeholders(len(ids))})", ids)
        return {r[0]: _decision(r) for r in rows}

    def update_decisions(self, records: Iterable[DecisionRecord]) -> None:
        self._conn.executemany("UPDATE decisions SET delivery = ?, successes = ?, closed = ? WHERE decision_id = ?",
                               ((r.delivery, r.successes, int(r.closed), r.decision_id) for r in records))

    def event_hashes(self, event_ids: Iterable[str]) -> dict[str, str]:
        ids = tuple(set(event_ids))
        rows = self._conn.execute(
            f"SELECT event_id, payload_hash FROM events WHERE event_id IN ({_placeholders(len(ids))})", ids)
        return dict(rows.fetchall())

    def add_events(self, records: Iterable[EventRecord]) -> None:
        self._conn.executemany(
            f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES ({_placeholders(len(_EVENT_COLUMNS))})",
            map(_event_row, records))

    def set_consent(self, customer: str, channel: str, unsubscribed: bool, at: float) -> None:
        row = self._conn.execute("SELECT unsubscribed, changed_at FROM channel_consent WHERE customer = ? "
                                 "AND channel = ?", (customer, channel)).fetchone()
        current = None if row is None else ConsentState(bool(row[0]), row[1])
        state = next_consent(current, ConsentState(unsubscribed, at))
        if state != current:
            self._conn.execute("INSERT OR REPLACE INTO channel_consent (customer, channel, unsubscribed, changed_at) "
                               "VALUES (?, ?, ?, ?)", (customer, channel, int(state.unsubscribed), state.at))

    def opt_outs(self, customer: str) -> dict[str, float]:
        return dict(self._conn.execute("SELECT channel, changed_at FROM channel_consent WHERE customer = ? "
                                       "AND unsubscribed = 1", (customer,)).fetchall())

    def update_suppression(self, customer: str, key: str, change: ConsentState) -> None:
        row = self._conn.execute("SELECT opted_out_at FROM suppression WHERE key = ?", (key,)).fetchone()
        current = None if row is None else ConsentState(True, row[0])
        state = next_consent(current, change)
        if state == current:
            return
        if state.unsubscribed:
            self._conn.execute("INSERT OR REPLACE INTO suppression (key, opted_out_at) VALUES (?, ?)", (key, state.at))
        else:
            self._conn.execute("DELETE FROM suppression WHERE key = ?", (key,))

    def log_inputs(self, model_version: str, inputs: Sequence[LoopInput]) -> list[LoggedInput] | None:
        if not inputs:
            return []
        # The group's id is its first row's seq: the next AUTOINCREMENT value, read in O(1).
        (txn,) = self._conn.execute(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'loop_log'), 0) + 1").fetchone()
        self._conn.executemany(
            f"INSERT INTO loop_log (txn, model_version, {', '.join(LoopInput._fields)}) "
            f"VALUES ({_placeholders(2 + len(LoopInput._fields))})", ((txn, model_version, *row) for row in inputs))
        (last,) = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'loop_log'").fetchone()
        if last - txn + 1 != len(inputs):  # numbered other than one after another: let the reader read them
            return None
        return [LoggedInput(txn + i, txn, row) for i, row in enumerate(inputs)]

    def due_decisions(self, until: float, limit: int) -> list[DecisionRecord]:
        rows = self._conn.execute(
            f"{_DECISION_SELECT} WHERE closed = 0 AND window_closes_at <= ? ORDER BY window_closes_at LIMIT ?",
            (until, limit))
        return [_decision(r) for r in rows]

    def erase_customer(self, customer: str) -> Erasure:
        counts = [self._conn.execute(f"DELETE FROM {table} WHERE customer = ?", (customer,)).rowcount
                  for table in ("decisions", "events", "channel_consent")]
        self._conn.execute("UPDATE loop_log SET customer = '' WHERE customer = ?", (customer,))
        return Erasure(*counts)

    def register_model(self, model_version: str, catalog: dict[str, list[str]], value: dict[str, float]) -> None:
        self._conn.execute("INSERT OR REPLACE INTO models (model_version, catalog, outcome_values) VALUES (?, ?, ?)",
                           (model_version, json.dumps(catalog), json.dumps(value)))


class SQLiteStore(Store):
    """The default store: one SQLite file in WAL mode, ``synchronous=FULL``, ``busy_timeout`` 5 s.

    Transactions opened with ``durable=False`` commit with ``synchronous=NORMAL``: still atomic and
    safe when the process is killed, but a power cut may lose the last of them.

    One connection per process, serialised by a lock; ``BEGIN IMMEDIATE`` serialises writers across
    processes, so several workers on one file never lose an update. The file and its folder are
    created private (0600 / 0700); a network filesystem is refused because its locks are unreliable.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        fs_type = _filesystem_type(self.path)
        if fs_type in NETWORK_FILESYSTEMS:
            raise ValueError(f"state DB {str(self.path)!r} is on a {fs_type} filesystem; SQLite needs a local disk")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        self._lock = threading.RLock()
        self._busy_ms = BUSY_TIMEOUT_MS  # the connection's busy_timeout, lowered for a request near its deadline
        self._readers = threading.local()
        self._readers_lock = threading.Lock()
        self._reader_conns: list[sqlite3.Connection] = []
        self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                     check_same_thread=False)
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpointer_lock = threading.Lock()
        # Durable units of concurrent requests share commits (``durable_unit``).
        self.group_commit = GroupCommit(self._commit_units, BUSY_TIMEOUT_MS / 1000, StoreUnavailableError)
        for pragma in ("journal_mode = WAL", "synchronous = FULL", f"busy_timeout = {BUSY_TIMEOUT_MS}",
                       "secure_delete = ON",  # deleted rows are zeroed, not left in free space (erasure)
                       "wal_autocheckpoint = 0"):  # a commit never checkpoints: ``maintain`` does, off the request
            self._conn.execute(f"PRAGMA {pragma}")
        self._check_pragmas()
        with self._locked():
            self._conn.executescript(_SCHEMA)  # idempotent; each statement is atomic
            self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """``ALTER TABLE … ADD COLUMN`` what an older DB lacks, under a write lock (workers may race)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            have = {row[1] for row in self._conn.execute("PRAGMA table_info(decisions)")}
            for name, definition in _ADDED_DECISION_COLUMNS:
                if name not in have:
                    self._conn.execute(f"ALTER TABLE decisions ADD COLUMN {name} {definition}")
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _check_pragmas(self) -> None:
        journal = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = self._conn.execute("PRAGMA synchronous").fetchone()[0]
        busy = self._conn.execute("PRAGMA busy_timeout").fetchone()[0]
        if (journal, synchronous) != ("wal", 2) or busy < BUSY_TIMEOUT_MS:
            raise RuntimeError(f"state DB {str(self.path)!r} could not be made durable: journal_mode={journal}, "
                               f"synchronous={synchronous}, busy_timeout={busy}")

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[SQLiteTransaction]:
        with self._locked():
            # FULL syncs the WAL at commit; NORMAL leaves that to the OS (safe when only the process dies).
            self._conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield SQLiteTransaction(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # also after a failed COMMIT, or the connection stays stuck
                    self._conn.execute("ROLLBACK")
                raise

    def durable_unit(self, work: Callable[[Transaction], T]) -> T:
        return self.group_commit.run(work)

    def _commit_units(self, works: Sequence[Callable[[SQLiteTransaction], Any]]) -> list[Any]:
        """One durable transaction holding each of ``works`` in a savepoint: a failing one is undone alone.

        Each work's result, or the exception that undid it; if the commit fails, every work gets its error.
        """
        results: list[Any] = []
        try:
            with self.transaction() as tx:
                for work in works:
                    self._conn.execute("SAVEPOINT unit")
                    try:
                        results.append(work(tx))
                    except Exception as exc:  # noqa: BLE001 - undone alone; handed to the caller whose work it was
                        self._conn.execute("ROLLBACK TO unit")
                        results.append(exc)
                    self._conn.execute("RELEASE unit")
        except Exception as exc:  # noqa: BLE001 - the shared commit failed: none of the works happened
            return [exc] * len(works)
        return results

    def input_log(self, model_version: str, after_seq: int, *, fresh: bool = False) -> list[LoggedInput]:
        with self._read_only() as conn:
            rows = conn.execute(
                f"SELECT seq, txn, {', '.join(LoopInput._fields)} FROM loop_log "
                "WHERE model_version = ? AND seq > ? ORDER BY seq", (model_version, after_seq)).fetchall()
        return [LoggedInput(r[0], r[1], LoopInput(*r[2:])) for r in rows]

    def open_decisions(self) -> int:
        with self._locked():
            return int(self._conn.execute("SELECT COUNT(*) FROM decisions WHERE closed = 0").fetchone()[0])

    def check(self) -> None:
        with self._locked():
            self._conn.execute("SELECT 1 FROM decisions LIMIT 1").fetchall()

    def closed_decisions(self) -> tuple[list[DecisionRecord], dict[str, ModelInfo]]:
        with self._locked():
            models = {v: ModelInfo(json.loads(c), json.loads(o)) for v, c, o in
                      self._conn.execute("SELECT model_version, catalog, outcome_values FROM models")}
            rows = self._conn.execute(f"{_DECISION_SELECT} WHERE closed = 1 ORDER BY created_at, row").fetchall()
        return [_decision(r) for r in rows], models

    def activity(self, until: float, hours: int) -> Activity:
        since = until - hours * HOUR
        with self._read_only() as conn:
            hourly = [HourlyCount(int(b), c, n) for b, c, n in conn.execute(
                "SELECT CAST((created_at - ?) / ? AS INTEGER) AS bucket, channel, COUNT(*) FROM decisions "
                "WHERE created_at > ? AND created_at <= ? GROUP BY bucket, channel ORDER BY bucket, channel",
                (since, HOUR, since, until))]
            (explored,) = conn.execute("SELECT COALESCE(SUM(explored), 0) FROM decisions "
                                       "WHERE created_at > ? AND created_at <= ?", (since, until)).fetchone()
            feedback = [FeedbackCount(*row) for row in conn.execute(
                "SELECT type, status, COUNT(*) FROM events WHERE received_at > ? AND received_at <= ? "
                "GROUP BY type, status ORDER BY type, status", (since, until))]
            n_open, within_day = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(window_closes_at <= ?), 0) FROM decisions WHERE closed = 0",
                (until + DAY,)).fetchone()
            soon = [OpenWindow(*row) for row in conn.execute(
                "SELECT channel, region, industry, campaign_type, created_at, window_closes_at FROM decisions "
                "WHERE closed = 0 ORDER BY window_closes_at, decision_id LIMIT ?", (CLOSING_SOON_ROWS,))]
        return Activity(until, hours, hourly, int(explored), feedback, int(n_open), int(within_day), soon)

    def first_served(self, model_version: str) -> float | None:
        with self._read_only() as conn:
            (first,) = conn.execute("SELECT MIN(created_at) FROM decisions WHERE model_version = ?",
                                    (model_version,)).fetchone()
        return None if first is None else float(first)

    def add_hits(self, key: str, amount: int, window_start: float, window_seconds: float) -> int:
        with self._locked():
            self._conn.execute("PRAGMA synchronous = NORMAL")  # a counter is not worth an fsync per request
            (hits,) = self._conn.execute(_ADD_HITS, (key, window_start, amount)).fetchone()
        return int(hits)

    def maintain(self) -> None:
        """Copy committed WAL frames into the database (a PASSIVE checkpoint) on a connection of its own.

        Commits skip SQLite's automatic checkpoint, which would make every thousandth page of writes
        pay for copying and syncing the whole WAL inside some request's transaction. A passive
        checkpoint takes no lock that writers or readers wait for; it copies what no reader still needs.
        """
        with self._checkpointer_lock:
            if self._checkpointer is None:
                with _unavailable_on_lock():
                    self._checkpointer = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                                         isolation_level=None, check_same_thread=False)
            with _unavailable_on_lock():
                self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def purge_erased(self) -> str | None:
        with self._locked():
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            return ("the WAL could not be checkpointed while other connections read; its old frames go at the "
                    "next complete checkpoint")
        return None

    def revoke_session(self, key: str, until: float, now: float) -> None:
        with self.transaction():  # durable: a signed-out session must stay out after a crash
            self._conn.execute("DELETE FROM revoked_sessions WHERE until < ?", (now,))
            self._conn.execute("INSERT OR REPLACE INTO revoked_sessions (key, until) VALUES (?, ?)", (key, until))

    def session_revoked(self, key: str) -> bool:
        with self._read_only() as conn:
            return conn.execute("SELECT 1 FROM revoked_sessions WHERE key = ?", (key,)).fetchone() is not None

    @contextmanager
    def snapshot(self) -> Iterator[Reader]:
        with self._read_only() as conn:
            yield SQLiteTransaction(conn)  # only its reads are used; the connection refuses writes

    @contextmanager
    def _read_only(self) -> Iterator[sqlite3.Connection]:
        """This thread's read-only connection (``mode=ro``) in one deferred read transaction.

        It takes neither the store's lock nor a write lock: in WAL mode a reader sees the last commit
        before its first read, and neither waits for writers nor holds them up. Each thread keeps its
        connection (opening one costs more than most reads); a read nested in another reuses its snapshot.
        """
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            with _unavailable_on_lock():
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                       timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
            self._readers.conn = conn
            with self._readers_lock:  # not the store's lock, which a writer may hold
                self._reader_conns.append(conn)
        if conn.in_transaction:
            yield conn
            return
        with _unavailable_on_lock():
            conn.execute("BEGIN DEFERRED")  # one snapshot for every query of the answer
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """This worker's connection, then SQLite's locks: both waited for within the busy timeout and the
        request's deadline, so a request never waits forever (a wait past them is a retryable 503)."""
        if not self._lock.acquire(timeout=wait_budget(BUSY_TIMEOUT_MS / 1000)):
            raise StoreUnavailableError("state DB busy: this worker's other requests held it past the busy timeout "
                                        "or the request's deadline; retry")
        try:
            busy_ms = int(wait_budget(BUSY_TIMEOUT_MS / 1000) * 1000)  # below the default only near a deadline
            if busy_ms != self._busy_ms:
                self._conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
                self._busy_ms = busy_ms
            with _unavailable_on_lock():
                yield
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock, self._readers_lock, self._checkpointer_lock:
            for conn in self._reader_conns:
                conn.close()
            if self._checkpointer is not None:
                self._checkpointer.close()
            self._conn.close()


@contextmanager
def _unavailable_on_lock() -> Iterator[None]:
    """Turn SQLite's "database is locked" (busy past the timeout) into a retryable error."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreUnavailableError(f"state DB busy: {exc}") from exc
        raise


def _filesystem_type(path: Path) -> str | None:
    """Type of the filesystem holding ``path`` (longest mount point prefix in /proc/mounts), if known."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target, best, fs_type = str(path.resolve()), "", None
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")) \
                and len(parts[1]) > len(best):
            best, fs_type = parts[1], parts[2]
    return fs_type
