"""The :class:`Store` interface on one Redis server, shared by every worker on every host (``redis://``).

Layout (every key under ``sendwise:``; one logical database of a standalone Redis, not Redis Cluster):

- ``decision:{id}`` hash: ``record`` (the immutable fields as JSON), ``delivery``, ``successes``,
  ``closed`` (``0``/``1``) and, once closed, ``log_id``; ``open`` sorted set: open decision ids by the
  time their window closes; ``decision_log`` stream: each decision's final row, appended when it
  closes (the logged bandit feedback ``sendwise.server.export.decision_log`` reads);
- ``event_hashes`` hash: event id → payload hash (the idempotency keys); ``events`` hash: event id →
  the event as JSON;
- ``customer:{pseudonym}:decisions|sends|events|consent``: what erasure removes and caps and consent
  read (``sends`` holds ``channel|decision id`` by send time, except undelivered messages; ``consent``
  maps a channel to ``unsubscribed|at|consent_log entry``); ``consent_log`` stream: the latest consent
  change of each (customer, channel); ``suppressed`` hash: suppression key → ``at|suppression_log entry``
  (the opt-outs erasure leaves, ``server.consent``), ``suppression_log`` stream: their keys;
- ``inputs:{model version}`` stream: one entry per transaction that drives the learning loop (sends,
  arrivals, window closes, ticks), its id ``<seq>-0`` where ``seq`` (from the ``seq`` counter) numbers
  the transaction's last input; ``models`` hash. The stream holds pseudonyms only for policies that
  personalise, and erasure cannot rewrite its entries: it adds the SHA-1 of the pseudonym to the
  ``erased`` set instead (the store then names neither customer nor pseudonym), and ``input_log`` reads
  the erased customers' inputs without them (as SQLite blanks them);
- ``rate:{key}:{window start}`` counters of the rate limits (``key`` a keyed hash, never an API key
  or address), each expiring when two of its windows have passed;
- the dashboard's indexes, written and erased in the same commit as what they index, so that
  ``activity`` reads only the window it is asked about: ``created`` sorted set of
  ``explored|channel|decision id`` by creation time, ``served:{model version}`` sorted set of decision
  ids by creation time (``first_served``), ``received`` sorted set of ``type|status|event id`` by the
  time the event was received. Decisions and events stored before these indexes existed are not in
  them: they are missing from the activity counts and ``first_served`` (open windows, from ``open``,
  are complete).

Atomicity: a transaction locks what it reads before reading it (customers for a decision; event and
decision ids for feedback, with the consent of the customers whose events may change it; decision ids
for closing windows and erasure, then the consent of their customers; ``SET PX``, kept out of the AOF),
taking the locks and reading in one script, and buffers its writes; the rule of ``server.consent`` is
applied in Python under those locks. The commit is one Lua script that first checks that every lock is
still its own and, for a decision, that the consent of its customers is as it read it (feedback changes
consent under the consent lock alone), then writes everything and releases the locks, so a commit is
all or nothing and never runs twice. Lock order (customers, events, decisions, consent) rules out
deadlocks.

Snapshot: the counts a worker serves are its base model driven through the ``inputs`` stream in
order. ``input_log`` reads the stream (from the last entry this worker has) at most once per
``snapshot_seconds``, and at once after this worker committed a change, so decisions do not wait
on Redis for counts and see every delta committed more than ``snapshot_seconds`` earlier.

Outage: while Redis is unreachable, durable transactions (feedback, windows, erasure) raise
:class:`StoreUnavailableError` (HTTP 503) and decisions go on: counts from the last snapshot,
unsubscribes and suppressions from replicas of ``consent_log`` and ``suppression_log`` refreshed with
the snapshot, frequency caps from this worker's own decisions of the outage, and the decision log
appended to a private spool file that is written to Redis when it answers again (or by the next worker
to start on that folder).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from .activity import CLOSING_SOON_ROWS, DAY, HOUR, Activity, FeedbackCount, HourlyCount, OpenWindow, hour_bucket
from .consent import ConsentState, next_consent
from .deadline import wait_budget
from .settings import RedisDurability
from .store import (
    BUSY_TIMEOUT_MS,
    CustomerState,
    DecisionRecord,
    Erasure,
    EventRecord,
    LoggedInput,
    LoopInput,
    ModelInfo,
    StaleReadError,
    Store,
    StoreUnavailableError,
    SuppressionKeys,
    Transaction,
)

DURABILITY_RANK: dict[str, int] = {"none": 0, "everysec": 1, "always": 2}
PREFIX = "sendwise:"
LOCK_TTL_MS = 30_000  # longer than any transaction; frees the locks of a killed worker
CHUNK = 10_000  # stream entries per read
REDIS_MISSING = "the Redis state store needs the redis client; install it with: pip install 'sendwise[redis]'"
_MUTABLE = ("delivery", "successes", "closed")
_STORED = ("record", *_MUTABLE)  # a decision's hash fields, as ``_LOCK``'s "feedback" read returns them
_IMMUTABLE = tuple(f.name for f in fields(DecisionRecord) if f.name not in _MUTABLE)
_EVENT_FIELDS = tuple(f.name for f in fields(EventRecord))
log = logging.getLogger("sendwise.server")

# Adds ARGV[1] to the counter KEYS[1], which expires ARGV[2] ms after its first hit; returns the new total.
_ADD_HITS = """
local hits = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return hits
"""

# Takes locks for a transaction and reads what it locked them for, in one round trip. ARGV = token, ttl in ms,
# "1" for all-or-nothing (else the free ones), n, n lock keys, prefix, the read and its arguments:
# - "" reads nothing (reply 0);
# - "customers", "1" to read consent, since ("" for no sends: else a ZRANGEBYSCORE bound), customers...: reply
#   {{i, channel, ...} each opted-out channel, {i, channel, send_at, ...} each send after since (not failed),
#   1 if the suppression list holds any entry}, i the 0-based position of the customer among the arguments;
# - "feedback", n, n event ids, then decision id, "1" to lock its customer's consent, ...: reply {the stored
#   payload hash of each event id, record, delivery, successes, closed of each decision id} (false for
#   unknown ones); the consent locks asked for are taken with the others (all-or-nothing only).
# A lock this transaction already holds counts as free. Returns {1, the keys taken (all-or-nothing: those
# beyond the n asked), the reply}, or {0, {}, 0}, taking and reading nothing, when all-or-nothing finds a lock
# held by another. Lock writes are not propagated: a restarted Redis starts without stale locks.
_LOCK = """
redis.set_repl(redis.REPL_NONE)
local token, ttl, all, n = ARGV[1], ARGV[2], ARGV[3] == '1', tonumber(ARGV[4])
local p, read, first = ARGV[5 + n], ARGV[6 + n], 7 + n
local keys, extra, reply = {}, {}, 0
for i = 5, 4 + n do keys[#keys + 1] = ARGV[i] end
if read == 'customers' then
  local consent, since, blocked, sends = ARGV[first] == '1', ARGV[first + 1], {}, {}
  for i = first + 2, #ARGV do
    local c, at = p .. 'customer:' .. ARGV[i], i - first - 2
    if consent then
      local flat = redis.call('HGETALL', c .. ':consent')
      for j = 1, #flat, 2 do
        if string.sub(flat[j + 1], 1, 2) == '1|' then blocked[#blocked + 1] = at; blocked[#blocked + 1] = flat[j] end
      end
    end
    if since ~= '' then
      local flat = redis.call('ZRANGEBYSCORE', c .. ':sends', since, '+inf', 'WITHSCORES')
      for j = 1, #flat, 2 do
        sends[#sends + 1] = at; sends[#sends + 1] = string.match(flat[j], '^(.*)|'); sends[#sends + 1] = flat[j + 1]
      end
    end
  end
  reply = {blocked, sends, redis.call('EXISTS', p .. 'suppressed')}
elseif read == 'feedback' then
  local n_events, hashes, decisions, seen = tonumber(ARGV[first]), {}, {}, {}
  if n_events > 0 then hashes = redis.call('HMGET', p .. 'event_hashes', unpack(ARGV, first + 1, first + n_events)) end
  for i = first + 1 + n_events, #ARGV, 2 do
    local row = redis.call('HMGET', p .. 'decision:' .. ARGV[i], 'record', 'delivery', 'successes', 'closed')
    for j = 1, 4 do decisions[#decisions + 1] = row[j] end
    if row[1] and all and ARGV[i + 1] == '1' then
      local key = p .. 'lock:consent:' .. cjson.decode(row[1]).customer
      if not seen[key] then seen[key] = true; keys[#keys + 1] = key; extra[#extra + 1] = key end
    end
  end
  reply = {hashes, decisions}
end
if all then
  local taken = {}
  for _, key in ipairs(keys) do
    if redis.call('SET', key, token, 'NX', 'PX', ttl) then taken[#taken + 1] = key
    elseif redis.call('GET', key) ~= token then
      for _, mine in ipairs(taken) do redis.call('DEL', mine) end
      return {0, {}, 0}
    end
  end
  return {1, extra, reply}
end
local taken = {}
for _, key in ipairs(keys) do
  if redis.call('SET', key, token, 'NX', 'PX', ttl) then taken[#taken + 1] = key end
end
return {1, taken, reply}
"""

_UNLOCK = """
redis.set_repl(redis.REPL_NONE)
for i = 2, #ARGV do
  if redis.call('GET', ARGV[i]) == ARGV[1] then redis.call('DEL', ARGV[i]) end
end
return 0
"""

# Commits a transaction: ARGV = token, plan (JSON; every value a string), then the record (JSON) of each of
# ``plan.decisions``, in order, apart so that it is not escaped into the plan. Changes nothing and fails with
# LOCKLOST if a lock of the transaction is gone (releasing the locks makes a repeated commit fail the same
# way), or with CHANGED, keeping the locks, if a customer of ``plan.watch`` ({customer, its opted-out channels
# sorted and joined by commas} as the transaction read them) has opted out or in since: consent changes take
# the consent lock, not the customer's. Returns the seq of the last input of each group of ``plan.outcomes``.
_COMMIT = """
local token, plan = ARGV[1], cjson.decode(ARGV[2])
local p = plan.prefix
-- ``redis.call(command, key, ...)`` with the items of ``list`` as arguments, up to 1000 a call (``unpack`` has a
-- bounded stack); the replies, in order, as one list.
local function batched(command, key, list)
  local out = {}
  for i = 1, #list, 1000 do
    local args = {unpack(list, i, math.min(i + 999, #list))}
    if key then table.insert(args, 1, key) end
    local reply = redis.call(command, unpack(args))
    if type(reply) == 'table' then for j = 1, #reply do out[#out + 1] = reply[j] end end
  end
  return out
end
local holders = batched('MGET', nil, plan.locks)
for i, key in ipairs(plan.locks) do
  if holders[i] ~= token then return redis.error_reply('LOCKLOST ' .. key) end
end
for _, w in ipairs(plan.watch) do
  local flat, blocked = redis.call('HGETALL', p .. 'customer:' .. w[1] .. ':consent'), {}
  for j = 1, #flat, 2 do
    if string.sub(flat[j + 1], 1, 2) == '1|' then blocked[#blocked + 1] = flat[j] end
  end
  table.sort(blocked)
  if table.concat(blocked, ',') ~= w[2] then return redis.error_reply('CHANGED consent of a customer') end
end
local function close(key, record, delivery, successes)
  local log_id = redis.call('XADD', p .. 'decision_log', '*', 'record', record, 'delivery', delivery,
                            'successes', successes)
  redis.call('HSET', key, 'log_id', log_id)
end
local function sends(d)
  if d.send_at == nil then return end
  local key, member = p .. 'customer:' .. d.customer .. ':sends', d.channel .. '|' .. d.id
  if d.delivery == 'failed' then redis.call('ZREM', key, member) else redis.call('ZADD', key, d.send_at, member) end
end
-- The activity indexes of a decision (its created_at; its 'explored|channel|id' entry; its model version's
-- key) and of an event (its received_at; its 'type|status|id' entry), read from the stored JSON.
local function decision_index(id, record)
  local r = cjson.decode(record)
  local explored = (r.explored == true or r.explored == 1) and '1' or '0'
  local entry = explored .. '|' .. r.channel .. '|' .. id
  return string.format('%.17g', r.created_at), entry, p .. 'served:' .. r.model_version
end
local function event_index(id, record)
  local e = cjson.decode(record)
  return string.format('%.17g', e.received_at), e.type .. '|' .. e.status .. '|' .. id
end
-- Sorted-set members to add, (score, member) pairs by key; ``flush`` writes them, one ZADD per 500 and key.
local added, order = {}, {}
local function add(key, score, member)
  if not added[key] then added[key] = {}; order[#order + 1] = key end
  local list = added[key]
  list[#list + 1] = score; list[#list + 1] = member
end
local function flush()
  for _, key in ipairs(order) do batched('ZADD', key, added[key]) end
  added, order = {}, {}
end
for i, d in ipairs(plan.decisions) do
  local key, record = p .. 'decision:' .. d.id, ARGV[2 + i]
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'record', record, 'delivery', d.delivery, 'successes', d.successes, 'closed', d.closed)
    local at, entry, served = decision_index(d.id, record)
    add(p .. 'created', at, entry)
    add(served, at, d.id)
    redis.call('SADD', p .. 'customer:' .. d.customer .. ':decisions', d.id)
    sends(d)
    if d.closed == '1' then close(key, record, d.delivery, d.successes) else add(p .. 'open', d.window, d.id) end
  end
end
flush()
for _, d in ipairs(plan.updates) do
  local key = p .. 'decision:' .. d.id
  local was_closed = redis.call('HGET', key, 'closed')
  if was_closed then
    redis.call('HSET', key, 'delivery', d.delivery, 'successes', d.successes, 'closed', d.closed)
    sends(d)
    if d.closed == '1' and was_closed == '0' then
      redis.call('ZREM', p .. 'open', d.id)
      close(key, redis.call('HGET', key, 'record'), d.delivery, d.successes)
    end
  end
end
for _, e in ipairs(plan.events) do
  if redis.call('HSETNX', p .. 'event_hashes', e.id, e.hash) == 1 then
    redis.call('HSET', p .. 'events', e.id, e.record)
    add(p .. 'received', event_index(e.id, e.record))
    if e.customer then redis.call('SADD', p .. 'customer:' .. e.customer .. ':events', e.id) end
  end
end
flush()
-- Field ``field`` of hash ``key`` holds 'state|entry', ``entry`` its entry in the stream ``log`` (the
-- replicas' feed); a nil ``state`` removes the field. The transaction decided the state under its locks.
local function put_state(key, field, state, log, ...)
  local current = redis.call('HGET', key, field)
  if current then redis.call('XDEL', log, string.match(current, '|([^|]*)$')) end
  if state then redis.call('HSET', key, field, state .. '|' .. redis.call('XADD', log, '*', ...))
  else redis.call('HDEL', key, field) end
end
for _, c in ipairs(plan.consent) do
  put_state(p .. 'customer:' .. c.customer .. ':consent', c.channel, c.unsubscribed .. '|' .. c.at,
            p .. 'consent_log', 'customer', c.customer, 'channel', c.channel, 'unsubscribed', c.unsubscribed)
end
for _, s in ipairs(plan.suppression) do
  put_state(p .. 'suppressed', s.key, s.at, p .. 'suppression_log', 'key', s.key)
end
local lasts = {}
for _, o in ipairs(plan.outcomes) do
  local last = redis.call('INCRBY', p .. 'seq', o.count)
  redis.call('XADD', p .. 'inputs:' .. o.version, string.format('%d-0', last), 'rows', o.rows)
  lasts[#lasts + 1] = last
end
for _, m in ipairs(plan.models) do redis.call('HSET', p .. 'models', m.version, m.info) end
for _, customer in ipairs(plan.erase) do
  local c = p .. 'customer:' .. customer
  for _, id in ipairs(redis.call('SMEMBERS', c .. ':decisions')) do
    local log_id, record = unpack(redis.call('HMGET', p .. 'decision:' .. id, 'log_id', 'record'))
    if log_id then redis.call('XDEL', p .. 'decision_log', log_id) end
    if record then
      local _, entry, served = decision_index(id, record)
      redis.call('ZREM', p .. 'created', entry)
      redis.call('ZREM', served, id)
    end
    redis.call('ZREM', p .. 'open', id)
    redis.call('DEL', p .. 'decision:' .. id)
  end
  for _, id in ipairs(redis.call('SMEMBERS', c .. ':events')) do
    local record = redis.call('HGET', p .. 'events', id)
    if record then redis.call('ZREM', p .. 'received', select(2, event_index(id, record))) end
    redis.call('HDEL', p .. 'event_hashes', id)
    redis.call('HDEL', p .. 'events', id)
  end
  for _, value in ipairs(redis.call('HVALS', c .. ':consent')) do
    redis.call('XDEL', p .. 'consent_log', string.match(value, '|([^|]*)$'))
  end
  redis.call('DEL', c .. ':decisions', c .. ':sends', c .. ':events', c .. ':consent')
  redis.call('SADD', p .. 'erased', redis.sha1hex(customer))
end
redis.set_repl(redis.REPL_NONE)
batched('DEL', nil, plan.locks)
return lasts
"""


def _import_redis() -> Any:
    try:
        import redis
    except ImportError:
        raise ImportError(REDIS_MISSING) from None
    return redis


def _retryable(exc: Exception) -> bool:
    """Whether a Redis error means "retry later" (Redis unavailable, or this transaction's locks expired)."""
    errors = _import_redis().exceptions
    return isinstance(exc, errors.ConnectionError | errors.TimeoutError | errors.ReadOnlyError
                      | errors.OutOfMemoryError) or (isinstance(exc, errors.ResponseError)
                                                     and str(exc).startswith(("MISCONF", "LOCKLOST")))


def _number(value: float) -> str:
    """A float as Redis and Lua parse it back exactly (``repr``), infinity included."""
    return repr(float(value))


def _update_row(record: DecisionRecord) -> dict[str, str]:
    """What the commit script needs to update a stored decision: its mutable fields and its send, as strings."""
    row = {"id": record.decision_id, "customer": record.customer, "channel": record.channel,
           "delivery": record.delivery, "successes": record.successes, "closed": "1" if record.closed else "0"}
    if record.send_at is not None:
        row["send_at"] = _number(record.send_at)
    return row


def _decision_row(record: DecisionRecord) -> dict[str, str]:
    """What the commit script needs to insert a decision: all strings, the immutable part as one JSON value."""
    return _update_row(record) | {
        "record": json.dumps({name: getattr(record, name) for name in _IMMUTABLE}),
        "window": _number(float("inf") if record.window_closes_at is None else record.window_closes_at)}


def _decision(raw: dict[str, str]) -> DecisionRecord:
    """A decision from its hash, or from its ``decision_log`` entry (which has no ``closed``: all are)."""
    return DecisionRecord(**json.loads(raw["record"]), delivery=raw["delivery"], successes=raw["successes"],
                          closed=raw.get("closed", "1") == "1")


def _consent_key(customer: str) -> str:
    return f"{PREFIX}customer:{customer}:consent"


def _sends_key(customer: str) -> str:
    return f"{PREFIX}customer:{customer}:sends"


SUPPRESSED = f"{PREFIX}suppressed"


def _consent_state(value: str) -> ConsentState:
    """A stored ``unsubscribed|at|entry`` consent value."""
    unsubscribed, at, _ = value.split("|", 2)
    return ConsentState(unsubscribed == "1", float(at))


def _suppression_state(value: str) -> ConsentState:
    """A stored ``at|entry`` suppression value: an opt-out at ``at``."""
    return ConsentState(True, float(value.split("|", 1)[0]))


class _Plan:
    """The buffered writes of one transaction, in the form the commit script reads."""

    def __init__(self) -> None:
        self.decisions: list[dict[str, str]] = []
        self.updates: dict[str, dict[str, str]] = {}
        self.events: list[dict[str, str]] = []
        self.consent: list[dict[str, str]] = []
        self.suppression: list[dict[str, str]] = []
        self.outcomes: list[dict[str, str]] = []
        self.models: list[dict[str, str]] = []
        self.erase: list[str] = []
        self.watch: dict[str, str] = {}  # customer → the opted-out channels read under its lock (``_COMMIT``)

    def __bool__(self) -> bool:
        return any((self.decisions, self.updates, self.events, self.consent, self.suppression, self.outcomes,
                    self.models, self.erase))

    def args(self, token: str, locks: Iterable[str]) -> list[str]:
        """The commit script's arguments: ``token``, the plan as JSON, then each new decision's record."""
        rows = [{k: v for k, v in row.items() if k != "record"} for row in self.decisions]
        plan = json.dumps({"prefix": PREFIX, "locks": list(locks), "decisions": rows,
                           "updates": list(self.updates.values()), "events": self.events, "consent": self.consent,
                           "suppression": self.suppression, "outcomes": self.outcomes, "models": self.models,
                           "erase": self.erase, "watch": list(self.watch.items())})
        return [token, plan, *(row["record"] for row in self.decisions)]


class _Spool:
    """Decisions made while Redis was unreachable: in memory and in a private file, until written to Redis.

    Each process appends to its own file, locked (``flock``) while the process lives; a file whose
    lock can be taken belongs to a process that died before writing it to Redis.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.records: list[DecisionRecord] = []
        self._fd: int | None = None

    def append(self, records: Sequence[DecisionRecord]) -> None:
        """Append to the file (flushed to the OS: it survives the process, not a power cut) and to memory."""
        if self._fd is None:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.write(self._fd, "".join(json.dumps(_decision_row(r)) + "\n" for r in records).encode())
        self.records += records

    def clear(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        self.records = []

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def orphans(self) -> Iterator[tuple[Path, list[dict[str, str]]]]:
        """(file, decision rows) of each spool file left by a process that is gone; delete a file once written."""
        for path in sorted(self.folder.glob("*.jsonl")) if self.folder.is_dir() else []:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # written and deleted by a worker starting at the same time
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live process's spool
                os.close(fd)
                continue
            try:
                yield path, [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            finally:
                os.close(fd)


class RedisTransaction(Transaction):
    """A :class:`Transaction` that locks before it reads and commits its buffered writes in one script.

    A non-durable transaction (a decision) that finds Redis unreachable carries on offline: reads
    come from the store's replica and spool, and the decisions go to the spool.
    """

    def __init__(self, store: RedisStore, durable: bool, *, locking: bool = True) -> None:
        self._store = store
        self._locking = locking
        self._redis = store.redis
        self._durable = durable
        self._token = uuid.uuid4().hex
        self._held: set[str] = set()
        self._plan = _Plan()
        self._logged: list[tuple[list[LoggedInput], Sequence[LoopInput]]] = []  # log_inputs' lists, to number
        self._new: list[DecisionRecord] = []
        self._states: dict[tuple[str, str], ConsentState | None] = {}  # (hash, field) → state this commit writes
        self.offline = not store.reachable()
        if self.offline and durable:
            raise store.unavailable()

    @contextmanager
    def _online(self) -> Iterator[bool]:
        """Yield True to read Redis, False when offline; a non-durable transaction goes offline on an outage."""
        if self.offline:
            yield False
            return
        try:
            with self._store.outage_guard():
                yield True
        except StoreUnavailableError:
            if self._durable or self._store.reachable():
                raise  # busy, or a lost lock: not an outage
            self.offline = True
            self._held = set()

    def _lock(self, kind: str, ids: Iterable[str], wait: bool = True,
              read: Sequence[str] = ()) -> tuple[list[str], Any]:
        """Lock ``ids`` of ``kind`` and run ``read`` under the locks (``_take``); the ids locked, the read's reply."""
        keys = {f"{PREFIX}lock:{kind}:{i}": i for i in ids}
        reply = self._take(list(keys), kind, wait, read)
        return [keys[k] for k in keys if k in self._held or not self._locking], reply

    def _take(self, keys: Sequence[str], kind: str, wait: bool = True, read: Sequence[str] = ()) -> Any:
        """Take the lock ``keys`` and run ``read`` (one of ``_LOCK``'s) under them, one round trip a try.

        All of them, waiting up to the busy timeout, or without ``wait`` the free ones; ``kind`` names
        them in the error of a wait that ran out. Returns the read's reply (None without a read).
        """
        wanted = [k for k in keys if k not in self._held] if self._locking else []  # a snapshot takes no lock
        if not wanted and not read:
            return None
        deadline, delay = time.monotonic() + wait_budget(BUSY_TIMEOUT_MS / 1000), 0.001
        while True:
            done, taken, reply = self._store.lock_script(
                args=[self._token, LOCK_TTL_MS, "1" if wait else "0", len(wanted), *wanted, PREFIX, *read])
            if done:
                self._held.update(taken, wanted if wait else ())
                return reply
            if time.monotonic() > deadline:
                raise StoreUnavailableError(f"state store busy: another transaction held a {kind} lock past the "
                                            f"busy timeout ({BUSY_TIMEOUT_MS / 1000:.0f} s) or the request's "
                                            "deadline; retry")
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    def _read_customers(self, customers: Sequence[str], consent: bool, sends_since: float | None
                        ) -> tuple[dict[str, set[str]], dict[str, list[tuple[str, float]]], bool]:
        """Lock the customers and read, in one round trip, their opted-out channels (if ``consent``), their sends
        after ``sends_since`` (unless None) and whether the suppression list holds any entry.

        The opted-out channels read under the lock are watched: the commit fails (``StaleReadError``) if
        feedback changed them meanwhile, as it may without the customer's lock.
        """
        since = "" if sends_since is None else f"({_number(sends_since)}"
        _, (blocked_rows, send_rows, any_suppressed) = self._lock(
            "customer", customers, read=["customers", "1" if consent else "0", since, *customers])
        blocked: dict[str, set[str]] = {}
        for i in range(0, len(blocked_rows), 2):
            blocked.setdefault(customers[blocked_rows[i]], set()).add(blocked_rows[i + 1])
        sends: dict[str, list[tuple[str, float]]] = {}
        for i in range(0, len(send_rows), 3):
            sends.setdefault(customers[send_rows[i]], []).append((send_rows[i + 1], float(send_rows[i + 2])))
        if consent and self._locking:
            self._plan.watch.update((c, ",".join(sorted(blocked.get(c, ())))) for c in customers)
        return blocked, sends, bool(any_suppressed)

    def customer_state(self, customers: Sequence[str], sends_since: float | None,
                       suppression_keys: SuppressionKeys) -> CustomerState:
        """Consent, sends and whether anything is suppressed in one round trip (``_read_customers``); the
        suppression keys, made only when the list holds any, in a second."""
        with self._online() as online:
            if online:
                blocked, sends, any_suppressed = self._read_customers(customers, True, sends_since)
                if any_suppressed:
                    keys = suppression_keys()
                    wanted = list(keys)
                    for key, value in zip(wanted, self._redis.hmget(SUPPRESSED, wanted), strict=True):
                        if value is not None:
                            customer, channel = keys[key]
                            blocked.setdefault(customer, set()).add(channel)
                return CustomerState(blocked, sends)
        return super().customer_state(customers, sends_since, suppression_keys)  # offline: the replica and spool

    def unsubscribed_channels(self, customers: Sequence[str]) -> dict[str, set[str]]:
        with self._online() as online:
            if online:
                return self._read_customers(customers, True, None)[0]
        return self._store.replica_unsubscribed(customers)

    def suppressed(self, keys: Collection[str]) -> set[str]:
        wanted = list(keys)
        with self._online() as online:
            if online:
                found = self._redis.hmget(SUPPRESSED, wanted) if wanted else []
                return {k for k, v in zip(wanted, found, strict=True) if v is not None}
        return self._store.replica_suppressed(wanted)

    def any_suppressed(self) -> bool:
        with self._online() as online:
            if online:
                return bool(self._redis.exists(SUPPRESSED))
        return self._store.replica_any_suppressed()

    def sends_since(self, customers: Sequence[str], since: float) -> dict[str, list[tuple[str, float]]]:
        with self._online() as online:
            if online:
                return self._read_customers(customers, False, since)[1]
        return self._store.spooled_sends(customers, since)

    def add_decisions(self, records: Iterable[DecisionRecord]) -> None:
        self._new += records

    def decisions(self, decision_ids: Iterable[str]) -> dict[str, DecisionRecord]:
        """The decisions, locked, and their customers' consent, which feedback may change."""
        ids = set(decision_ids)
        return self.feedback_reads((), ids, ids)[1]

    def feedback_reads(self, event_ids: Iterable[str], decision_ids: Iterable[str],
                       consent_ids: Collection[str] = ()) -> tuple[dict[str, str], dict[str, DecisionRecord]]:
        """The events' stored hashes and the decisions, locked, and the consent of the customers of
        ``consent_ids``: every lock taken at once, in one round trip with the reads. A consent lock not
        taken here is taken when the transaction changes that consent (``_change``)."""
        events, ids = list(set(event_ids)), list(set(decision_ids))
        keys = [*(f"{PREFIX}lock:event:{i}" for i in events), *(f"{PREFIX}lock:decision:{i}" for i in ids)]
        flagged = [arg for i in ids for arg in (i, "1" if i in consent_ids else "0")]
        with self._store.outage_guard():
            hashes, rows = self._take(keys, "event or decision", read=["feedback", str(len(events)), *events, *flagged])
        return ({i: h for i, h in zip(events, hashes, strict=True) if h is not None},
                {i: _decision(dict(zip(_STORED, rows[4 * k:4 * k + 4], strict=True)))
                 for k, i in enumerate(ids) if rows[4 * k] is not None})

    def _read_decisions(self, ids: Sequence[str]) -> dict[str, DecisionRecord]:
        pipe = self._redis.pipeline(transaction=False)
        for decision_id in ids:
            pipe.hgetall(f"{PREFIX}decision:{decision_id}")
        return {i: _decision(raw) for i, raw in zip(ids, pipe.execute(), strict=True) if raw}

    def update_decisions(self, records: Iterable[DecisionRecord]) -> None:
        for record in records:
            self._plan.updates[record.decision_id] = _update_row(record)

    def event_hashes(self, event_ids: Iterable[str]) -> dict[str, str]:
        return self.feedback_reads(event_ids, ())[0]

    def add_events(self, records: Iterable[EventRecord]) -> None:
        self._plan.events += [
            {"id": r.event_id, "hash": r.payload_hash, "record": json.dumps({f: getattr(r, f) for f in _EVENT_FIELDS})}
            | ({} if r.customer is None else {"customer": r.customer}) for r in records]

    def set_consent(self, customer: str, channel: str, unsubscribed: bool, at: float) -> None:
        current, state = self._change(customer, _consent_key(customer), channel, _consent_state,
                                      ConsentState(unsubscribed, at))
        if state != current:
            self._plan.consent.append({"customer": customer, "channel": channel,
                                       "unsubscribed": "1" if state.unsubscribed else "0", "at": _number(state.at)})

    def opt_outs(self, customer: str) -> dict[str, float]:
        with self._store.outage_guard():
            self._lock("customer", [customer])
            states = {channel: _consent_state(v) for channel, v in self._redis.hgetall(_consent_key(customer)).items()}
        return {channel: state.at for channel, state in states.items() if state.unsubscribed}

    def update_suppression(self, customer: str, key: str, change: ConsentState) -> None:
        current, state = self._change(customer, SUPPRESSED, key, _suppression_state, change)
        if state != current and (current is not None or state.unsubscribed):  # a consent over no entry: none
            self._plan.suppression.append({"key": key} | ({"at": _number(state.at)} if state.unsubscribed else {}))

    def _change(self, customer: str, hash_key: str, field: str, parse: Callable[[str], ConsentState],
                change: ConsentState) -> tuple[ConsentState | None, ConsentState]:
        """The state of ``field`` before and after ``change`` (``consent.next_consent``).

        Reads the committed state under ``customer``'s consent lock, or the one this transaction
        already decided (the commit writes the last of them).
        """
        if (hash_key, field) in self._states:
            current = self._states[hash_key, field]
        else:
            with self._store.outage_guard():
                self._lock("consent", [customer])
                value = self._redis.hget(hash_key, field)
            current = None if value is None else parse(value)
        state = next_consent(current, change)
        self._states[hash_key, field] = state
        return current, state

    def log_inputs(self, model_version: str, inputs: Sequence[LoopInput]) -> list[LoggedInput] | None:
        """The inputs go in the commit, whose script numbers them: the list it returns is filled in then."""
        logged: list[LoggedInput] = []
        if inputs:
            self._plan.outcomes.append({"version": model_version, "count": str(len(inputs)),
                                        "rows": json.dumps([list(row) for row in inputs])})
            self._logged.append((logged, inputs))
        return logged

    def due_decisions(self, until: float, limit: int) -> list[DecisionRecord]:
        """Like SQLite's, except that decisions another transaction holds are left for a later round."""
        with self._store.outage_guard():
            candidates = self._redis.zrangebyscore(f"{PREFIX}open", "-inf", _number(until), start=0, num=limit)
            records = self._read_decisions(self._lock("decision", candidates, wait=False)[0])
        due = [r for r in records.values() if not r.closed and r.window_closes_at is not None
               and r.window_closes_at <= until]
        return sorted(due, key=lambda r: r.window_closes_at or 0.0)

    def erase_customer(self, customer: str) -> Erasure:
        base = f"{PREFIX}customer:{customer}"
        with self._store.outage_guard():
            self._lock("customer", [customer])
            self._lock("decision", self._redis.smembers(f"{base}:decisions"))
            self._lock("consent", [customer])
            pipe = self._redis.pipeline(transaction=False)
            pipe.scard(f"{base}:decisions").scard(f"{base}:events").hlen(f"{base}:consent")
            counts = pipe.execute()
        self._plan.erase.append(customer)
        return Erasure(*counts)

    def register_model(self, model_version: str, catalog: dict[str, list[str]], value: dict[str, float]) -> None:
        self._plan.models.append({"version": model_version,
                                  "info": json.dumps({"catalog": catalog, "value": value})})

    def commit(self) -> None:
        """Write everything at once (or, offline, spool the decisions); then the locks are released."""
        self._plan.decisions = [_decision_row(r) for r in self._new]
        if not self.offline and (self._plan or self._held):
            try:
                with self._store.outage_guard():
                    try:
                        lasts = self._store.commit_script(args=self._plan.args(self._token, self._held))
                    except _import_redis().exceptions.ResponseError as exc:
                        if str(exc).startswith("CHANGED"):
                            raise StaleReadError(f"the commit found the state it read changed: {exc}") from exc
                        raise
                for (logged, inputs), last in zip(self._logged, lasts, strict=True):
                    logged += [LoggedInput(last - len(inputs) + 1 + i, last, row) for i, row in enumerate(inputs)]
                self._store.committed(self._plan, [logged for logged, _ in self._logged])
                return
            except StoreUnavailableError:
                if self._durable or self._store.reachable():
                    raise
                # Redis went away. A lost reply may hide a commit that happened: the spool inserts only the absent.
        if self._new:
            self._store.spool(self._new)

    def rollback(self) -> None:
        """Release the locks (best effort: a lock that is not released expires)."""
        if self._held and self._store.reachable():
            try:
                self._store.unlock_script(args=[self._token, *self._held])
            except Exception as exc:  # noqa: BLE001 - the transaction's own error is the one to report
                log.warning("could not release %d state locks (they expire in %d s): %s", len(self._held),
                            LOCK_TTL_MS // 1000, exc)


class RedisStore(Store):
    """State in Redis, shared by workers; refuses to start on a Redis less durable than ``durability`` asks.

    ``durability`` compares with the server's ``CONFIG GET appendonly appendfsync``: ``always`` needs
    ``appendonly yes`` + ``appendfsync always`` (an acknowledged event survives a crash of Redis or
    its host), ``everysec`` at least ``appendfsync everysec`` (the last second may be lost), ``none``
    checks nothing.
    """

    plans_in_transaction = True

    def __init__(self, url: str, *, durability: RedisDurability = "everysec", snapshot_seconds: float = 1.0,
                 spool_dir: Path) -> None:
        redis_module = _import_redis()
        # Any: with decode_responses every reply is str, which redis-py's annotations (bytes | str) cannot say.
        self.redis: Any = redis_module.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=1.0, socket_timeout=BUSY_TIMEOUT_MS / 1000,
            retry=redis_module.retry.Retry(redis_module.backoff.NoBackoff(), 0))
        kwargs = self.redis.connection_pool.connection_kwargs
        self.where = f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}/{kwargs.get('db', 0)}"
        self.snapshot_seconds = snapshot_seconds
        self.last_error: Exception | None = None
        self.lock_script = self.redis.register_script(_LOCK)
        self.unlock_script = self.redis.register_script(_UNLOCK)
        self.commit_script = self.redis.register_script(_COMMIT)
        self.add_hits_script = self.redis.register_script(_ADD_HITS)
        self._lock = threading.RLock()
        self._offline_until = 0.0
        self._contact = time.monotonic()
        self._refresh_due = 0.0
        self._outcomes_due: dict[str, float] = {}
        self._outcomes_seen: dict[str, int] = {}
        self._unsubscribed: dict[str, set[str]] = {}
        self._consent_cursor = "0-0"
        self._suppressed: set[str] = set()
        self._suppression_cursor = "0-0"
        self._spool = _Spool(spool_dir)
        try:
            self._check_durability(durability)
            self._flush_orphans()
            self._refresh()
        except redis_module.exceptions.RedisError as exc:
            raise StoreUnavailableError(f"Redis at {self.where} did not answer at start-up: {exc}") from exc

    def _check_durability(self, asked: RedisDurability) -> None:
        if asked == "none":
            return
        try:
            config = self.redis.config_get("append*")
        except _import_redis().exceptions.ResponseError as exc:
            raise RuntimeError(f"cannot read the durability settings of Redis at {self.where} (CONFIG GET "
                               f"appendonly/appendfsync: {exc}); set SENDWISE_REDIS_DURABILITY=none to skip the "
                               "check if durability is ensured otherwise") from exc
        appendonly, appendfsync = config.get("appendonly"), config.get("appendfsync")
        actual = appendfsync if appendonly == "yes" and appendfsync in DURABILITY_RANK else "none"
        if DURABILITY_RANK[actual] < DURABILITY_RANK[asked]:
            raise RuntimeError(
                f"Redis at {self.where} runs with appendonly={appendonly}, appendfsync={appendfsync}, weaker than "
                f"SENDWISE_REDIS_DURABILITY={asked!r} asks; set 'appendonly yes' and 'appendfsync {asked}' in "
                "redis.conf (or CONFIG SET), or lower SENDWISE_REDIS_DURABILITY")

    # --- availability ---------------------------------------------------------------------------------

    def reachable(self) -> bool:
        """False while a recent failure says Redis is down (for ``snapshot_seconds``, then it is tried again)."""
        return time.monotonic() >= self._offline_until

    def unavailable(self) -> StoreUnavailableError:
        return StoreUnavailableError(f"Redis at {self.where} is unreachable ({self.last_error}); retry shortly")

    @contextmanager
    def outage_guard(self) -> Iterator[None]:
        """Turn an outage into :class:`StoreUnavailableError` and remember it; note every successful contact."""
        try:
            yield
        except _import_redis().exceptions.RedisError as exc:
            if not _retryable(exc):
                raise
            self.last_error = exc
            if not str(exc).startswith("LOCKLOST"):
                if self.reachable():
                    log.warning("Redis at %s unreachable (%s): decisions from the last snapshot, feedback refused",
                                self.where, exc)
                self._offline_until = time.monotonic() + self.snapshot_seconds
            raise StoreUnavailableError(f"state store unavailable: {exc}; retry shortly") from exc
        self._contact = time.monotonic()

    # --- the Store interface --------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[RedisTransaction]:
        """Reads without locks (the last committed state, or the replica while Redis is away); never commits."""
        yield RedisTransaction(self, durable=False, locking=False)

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[RedisTransaction]:
        if self.reachable():
            try:
                self._refresh_if_due()
            except StoreUnavailableError:
                if durable:
                    raise
        tx = RedisTransaction(self, durable)
        try:
            yield tx
            tx.commit()
        except BaseException:
            tx.rollback()
            raise

    def input_log(self, model_version: str, after_seq: int, *, fresh: bool = False) -> list[LoggedInput]:
        """New loop inputs, read from Redis at most once per ``snapshot_seconds`` (at once when ``fresh``, or
        after a local commit whose inputs did not directly follow those read: another worker's came between).

        While Redis is unreachable the snapshot stays as it is (an empty answer), except for a model
        version this worker has never read, which cannot be served without its deltas.
        """
        now = time.monotonic()
        seen = self._outcomes_seen.get(model_version)
        due = fresh or now >= self._outcomes_due.get(model_version, 0.0)
        if seen is not None and after_seq >= seen and (not due or not self.reachable()):
            return []
        try:
            with self.outage_guard():
                rows = self._read_outcomes(model_version, after_seq)
        except StoreUnavailableError:
            if seen is None:
                raise
            return []
        self._outcomes_seen[model_version] = rows[-1].seq if rows else after_seq
        self._outcomes_due[model_version] = now + self.snapshot_seconds
        return rows

    def _read_outcomes(self, model_version: str, after_seq: int) -> list[LoggedInput]:
        """The inputs after ``after_seq``, erased customers' without their pseudonym."""
        rows: list[LoggedInput] = []
        start = f"({after_seq}-0"
        erased = self.redis.smembers(f"{PREFIX}erased")
        while entries := self.redis.xrange(f"{PREFIX}inputs:{model_version}", min=start, count=CHUNK):
            for entry_id, entry in entries:
                last, inputs = int(entry_id.split("-")[0]), json.loads(entry["rows"])
                rows += [LoggedInput(last - len(inputs) + 1 + i, last, _without(LoopInput(*row), erased))
                         for i, row in enumerate(inputs)]
            start = f"({entries[-1][0]}"
        return rows

    def open_decisions(self) -> int:
        with self.outage_guard():
            return int(self.redis.zcard(f"{PREFIX}open"))

    def check(self) -> str | None:
        """None when Redis answers; while it does not, a note that decisions run on the last snapshot."""
        if self.reachable():
            try:
                with self.outage_guard():
                    self.redis.ping()
                self._refresh_if_due()
                return None
            except StoreUnavailableError:
                pass
        return (f"Redis at {self.where} unreachable ({self.last_error}): decisions use the snapshot of "
                f"{time.monotonic() - self._contact:.0f} s ago, feedback is refused until it answers")

    def closed_decisions(self) -> tuple[list[DecisionRecord], dict[str, ModelInfo]]:
        with self.outage_guard():
            models = {v: ModelInfo(**json.loads(info)) for v, info in self.redis.hgetall(f"{PREFIX}models").items()}
            records, start = [], "-"
            while entries := self.redis.xrange(f"{PREFIX}decision_log", min=start, count=CHUNK):
                records += [_decision(entry) for _, entry in entries]
                start = f"({entries[-1][0]}"
        return sorted(records, key=lambda r: (r.created_at, r.row)), models

    def activity(self, until: float, hours: int) -> Activity:
        """Like SQLite's, from the ``created`` and ``received`` indexes (only the window's entries) and ``open``."""
        since = until - hours * HOUR
        hourly: Counter[tuple[int, str]] = Counter()
        feedback: Counter[tuple[str, str]] = Counter()
        explored = 0
        with self.outage_guard():
            for entry, at in self._scored(f"{PREFIX}created", since, until):
                hourly[hour_bucket(at, since), entry[2:entry.rindex("|")]] += 1
                explored += entry[0] == "1"
            for entry, _ in self._scored(f"{PREFIX}received", since, until):
                event_type, status, _ = entry.split("|", 2)
                feedback[event_type, status] += 1
            pipe = self.redis.pipeline(transaction=False)
            pipe.zcard(f"{PREFIX}open").zcount(f"{PREFIX}open", "-inf", _number(until + DAY))
            pipe.zrange(f"{PREFIX}open", 0, CLOSING_SOON_ROWS - 1)  # by close time, then id: SQLite's order
            n_open, within_day, soonest = pipe.execute()
            for decision_id in soonest:
                pipe.hget(f"{PREFIX}decision:{decision_id}", "record")
            records = [json.loads(r) for r in pipe.execute() if r is not None]  # None: erased meanwhile
        soon = [OpenWindow(r["channel"], r["region"], r["industry"], r["campaign_type"], r["created_at"],
                           r["window_closes_at"]) for r in records]
        return Activity(until, hours, [HourlyCount(b, c, n) for (b, c), n in sorted(hourly.items())], explored,
                        [FeedbackCount(t, s, n) for (t, s), n in sorted(feedback.items())], int(n_open),
                        int(within_day), soon)

    def first_served(self, model_version: str) -> float | None:
        with self.outage_guard():
            first = self.redis.zrange(f"{PREFIX}served:{model_version}", 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def maintain(self) -> None:
        """Nothing: Redis compacts and persists by itself."""

    def purge_erased(self) -> str | None:
        """``BGREWRITEAOF``: the rewritten file holds the data as it is now, without the erased customer's
        commands (Redis runs it after a rewrite in progress; a managed Redis may not allow it)."""
        try:
            with self.outage_guard():
                self.redis.bgrewriteaof()
        except (_import_redis().exceptions.ResponseError, StoreUnavailableError) as exc:
            return f"the append-only file was not rewritten ({exc}); the erased commands stay until its next rewrite"
        return None

    def revoke_session(self, key: str, until: float, now: float) -> None:
        """``revoked:{key}`` exists until the session would have expired."""
        with self.outage_guard():
            self.redis.set(f"{PREFIX}revoked:{key}", "1", px=max(1, int((until - now) * 1000)))

    def session_revoked(self, key: str) -> bool:
        with self.outage_guard():
            return bool(self.redis.exists(f"{PREFIX}revoked:{key}"))

    def add_hits(self, key: str, amount: int, window_start: float, window_seconds: float) -> int:
        """``rate:{key}:{window_start}`` counts the window; it expires when two windows have passed."""
        if not self.reachable():
            raise self.unavailable()
        with self.outage_guard():
            return int(self.add_hits_script(keys=[f"{PREFIX}rate:{key}:{window_start!r}"],
                                            args=[amount, int(window_seconds * 2000)]))

    def _scored(self, key: str, since: float, until: float) -> Iterator[tuple[str, float]]:
        """(member, score) of the sorted set ``key`` with ``since < score <= until``, read ``CHUNK`` at a time.

        Each read starts at the last score seen, skipping the members with that score already read, so
        a chunk edge inside a run of equal scores (a batch of decisions) neither drops nor repeats one.
        """
        low, skip = f"({_number(since)}", 0
        while chunk := self.redis.zrangebyscore(key, low, _number(until), start=skip, num=CHUNK, withscores=True):
            yield from chunk
            if len(chunk) < CHUNK:
                return
            last = chunk[-1][1]
            ties = sum(score == last for _, score in chunk)
            skip, low = (skip + ties if low == _number(last) else ties), _number(last)  # from ``last`` inclusive

    def close(self) -> None:
        if self._spool.records and self.reachable():
            try:
                self._refresh()
            except StoreUnavailableError as exc:
                log.warning("%d decisions stay in the spool (%s) until a worker starts on it: %s",
                            len(self._spool.records), self._spool.folder, exc)
        self._spool.close()
        self.redis.close()

    # --- snapshot, replica and spool ------------------------------------------------------------------

    def committed(self, plan: _Plan, logged: Sequence[Sequence[LoggedInput]]) -> None:
        """After a commit: count this worker's own inputs (``logged``, per group of ``plan.outcomes``) as read
        when they directly follow what the log was read up to, else read the log on the next ``input_log``;
        and put its consent changes and suppressions into the replica at once (Redis may go away before the
        next refresh)."""
        with self._lock:
            for outcome, rows in zip(plan.outcomes, logged, strict=True):
                version = outcome["version"]
                if self._outcomes_seen.get(version) == rows[0].seq - 1:
                    self._outcomes_seen[version] = rows[-1].seq  # nothing of another's in between
                else:
                    self._outcomes_due[version] = 0.0
            for change in plan.consent:
                self._fold_consent(change["customer"], change["channel"], change["unsubscribed"])
            for entry in plan.suppression:
                (self._suppressed.add if "at" in entry else self._suppressed.discard)(entry["key"])

    def _fold_consent(self, customer: str, channel: str, unsubscribed: str) -> None:
        channels = self._unsubscribed.pop(customer, set())
        (channels.add if unsubscribed == "1" else channels.discard)(channel)
        if channels:
            self._unsubscribed[customer] = channels

    def _refresh_if_due(self) -> None:
        if self._spool.records or time.monotonic() >= self._refresh_due:
            with self._lock:
                if self._spool.records or time.monotonic() >= self._refresh_due:  # not done meanwhile
                    self._refresh()

    def _refresh(self) -> None:
        """Write spooled decisions to Redis and fold new consent changes into the replica."""
        with self._lock, self.outage_guard():
            if self._spool.records:
                self._write_decisions([_decision_row(r) for r in self._spool.records])
                log.info("wrote %d decisions made while Redis was unreachable", len(self._spool.records))
                self._spool.clear()
            while entries := self.redis.xrange(f"{PREFIX}consent_log", min=f"({self._consent_cursor}", count=CHUNK):
                for _, change in entries:
                    self._fold_consent(change["customer"], change["channel"], change["unsubscribed"])
                self._consent_cursor = entries[-1][0]
            # Only additions reach the replica this way: a lifted suppression leaves it at the next start.
            while entries := self.redis.xrange(f"{PREFIX}suppression_log", min=f"({self._suppression_cursor}",
                                               count=CHUNK):
                self._suppressed.update(entry["key"] for _, entry in entries)
                self._suppression_cursor = entries[-1][0]
            self._refresh_due = time.monotonic() + self.snapshot_seconds

    def _write_decisions(self, rows: list[dict[str, str]]) -> None:
        """Insert decisions not yet in Redis (a spool may hold some that are)."""
        for i in range(0, len(rows), 1000):
            plan = _Plan()
            plan.decisions = rows[i:i + 1000]
            self.commit_script(args=plan.args("", []))

    def _flush_orphans(self) -> None:
        for path, rows in self._spool.orphans():
            self._write_decisions(rows)
            log.info("wrote %d decisions left in the spool %s by a stopped worker", len(rows), path.name)
            path.unlink(missing_ok=True)

    def spool(self, records: list[DecisionRecord]) -> None:
        with self._lock:
            self._spool.append(records)

    def spooled_sends(self, customers: Sequence[str], since: float) -> dict[str, list[tuple[str, float]]]:
        """Sends this worker planned while Redis was unreachable (the only ones it can count then)."""
        wanted = set(customers)
        out: dict[str, list[tuple[str, float]]] = {}
        with self._lock:
            for r in self._spool.records:
                if r.customer in wanted and r.send_at is not None and r.send_at > since and r.delivery != "failed":
                    out.setdefault(r.customer, []).append((r.channel, r.send_at))
        return out

    def replica_unsubscribed(self, customers: Sequence[str]) -> dict[str, set[str]]:
        with self._lock:
            return {c: set(self._unsubscribed[c]) for c in customers if self._unsubscribed.get(c)}

    def replica_suppressed(self, keys: Collection[str]) -> set[str]:
        with self._lock:
            return self._suppressed.intersection(keys)

    def replica_any_suppressed(self) -> bool:
        with self._lock:
            return bool(self._suppressed)


def _without(row: LoopInput, erased: set[str]) -> LoopInput:
    """``row`` without its customer's pseudonym if that customer was erased (``erased``: SHA-1 digests)."""
    if row.customer and _digest(row.customer) in erased:
        return row._replace(customer="")
    return row


@lru_cache(maxsize=1 << 16)
def _digest(pseudonym: str) -> str:
    """The SHA-1 hex digest the commit script's ``redis.sha1hex`` gives for an erased pseudonym."""
    return hashlib.sha1(pseudonym.encode()).hexdigest()
