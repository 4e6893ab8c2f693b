"""A running sendwise app behind the learning loop's protocol (``sendwise.models.policies.loop.Loop``).

``ServedLoop`` drives a real app in this process through ``fastapi.testclient.TestClient``: the app of
``create_app`` on a temporary state folder (SQLite store, the world's serving rules, the world's prior
as the model, an API key), its real routes, validation, guardrails, store and learning. Only the
``get_now`` dependency is overridden, by a clock the loop moves. The app's two timers are set never
to fire: windows close when the loop's clock says so, through the code the close-windows timer runs
(``SendwiseService.close_windows`` with the loop's clock).

Time: loop time ``t`` (hours since midnight UTC of day 0) is the instant ``epoch + t`` hours, with
``epoch`` a UTC midnight on the world's ``start_weekday`` in northern winter, when the seed world's
fixed UTC offsets hold. The server's clock reads one second less (``epoch + t h - 1 s``), so a send
hour that falls exactly on a loop instant (local 19:00 in New York at 00:00 UTC) still lies in the
server's future, as it does in the simulator.

Per call of the protocol:

- ``decide``: one customer per row (``c<customer_idx>``), the cell's region, industry and campaign
  type, the region's IANA zone, the channels with at least one allowed hour in the row's mask, and the
  send window ``[epoch + now, epoch + now + 24 h - 1 s]``; POST /v1/decisions in chunks of at most
  1,000. A server choice the simulator's mask forbids becomes the no-message arm for the simulator,
  is counted (``mask_mismatches``) and is reported to the server as undelivered (a ``failed`` event),
  so it teaches the served model nothing.
- ``sent``: checks that each message's send time is the server's ``send_at``.
- ``resolve``: every outcome that happened is POSTed to /v1/feedback (``clicked``, ``unsubscribed``, ``opened``)
  at its arrival time, with the clock at the end of the simulated day; windows are not posted.
- ``advance``: moves the clock and closes the attribution windows due by it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from sendwise.models import N_HOURS, NO_MESSAGE, DecisionBatch, World
from sendwise.models.policies.loop import Choices, Resolved, Sends
from sendwise.server import Settings, create_app
from sendwise.server.deps import get_now
from sendwise.server.export import decision_log

API_KEY = "served-loop-key-0123456789abcdef"
CHUNK = 1000  # the API's largest decision request and feedback request
NEVER_SECONDS = 1e9  # timer period that outlives any run: the loop closes windows itself
WINTER_MONDAY = datetime(2024, 11, 4, tzinfo=UTC)  # no DST change in the seed world's zones until 2025-03-09
EVENT_TYPE = {"click": "clicked", "unsubscribe": "unsubscribed", "open": "opened"}
ONE_SECOND = timedelta(seconds=1)


def epoch_of(world: World) -> datetime:
    """The UTC midnight of loop time 0: a winter day whose weekday is the world's ``start_weekday``."""
    return WINTER_MONDAY + timedelta(days=world.start_weekday)


def offset_drift(world: World, epoch: datetime, n_days: int) -> dict[str, float]:
    """Regions whose zone's UTC offset somewhere in the run differs from the world's fixed one (hours)."""
    from zoneinfo import ZoneInfo

    drift = {}
    for r, region in enumerate(world.catalog.regions):
        zone = ZoneInfo(world.region_timezones[region])
        for day in range(n_days + 1):
            offset = (epoch + timedelta(days=day)).astimezone(zone).utcoffset()
            hours = 0.0 if offset is None else offset.total_seconds() / 3600.0
            if abs(hours - world.utc_offset_hours[r]) > 1e-9:
                drift[region] = hours - float(world.utc_offset_hours[r])
                break
    return drift


@dataclass
class ServedStats:
    """What a served run did, and where served and simulated worlds disagreed."""

    decisions: int = 0
    requests: int = 0
    mask_mismatches: int = 0          # server chose an arm the simulator's mask forbids
    narrower_masks: int = 0           # rows where the server allowed fewer arms than the simulator
    wider_masks: int = 0              # rows where the server allowed an arm the simulator forbids
    send_time_mismatches: int = 0     # sends whose simulated time differs from the server's send_at
    events_posted: int = 0
    windows_closed: int = 0
    event_status: Counter = field(default_factory=Counter)
    narrower_rules: Counter = field(default_factory=Counter)  # guardrails of the narrower rows
    decide_seconds: float = 0.0
    feedback_seconds: float = 0.0
    close_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in self.__dict__.items()}


class ServedLoop:
    """The ``Loop`` protocol on a real app; use it as a context manager (it runs the app's lifespan).

    Parameters
    ----------
    world : the world the simulator runs; the app loads the same file (its prior and serving rules).
    state_dir : a fresh folder for the app's state DB and secrets.
    policy : the served prior policy (``SENDWISE_DEFAULT_POLICY``).
    seed : the prior policy's seed (``SENDWISE_SEED``).
    prior_trials : the served policy's cold start (``SENDWISE_PRIOR_TRIALS``): 0 for the flat prior a
        policy built by ``make_world_policy(name, world, seed=seed)`` has, > 0 for pseudo-sends at the world's rates.
    """

    def __init__(self, world: World, state_dir: Path, *, policy: str = "hier_ts", seed: int = 0,
                 prior_trials: float = 0.0) -> None:
        self.world = world
        self.state_dir = Path(state_dir)
        self.policy = policy
        self.seed = seed
        self.prior_trials = prior_trials
        self.catalog = world.catalog
        self.epoch = epoch_of(world)
        self.now = self.epoch - ONE_SECOND
        self.stats = ServedStats()
        self._decision_ids: list[str] = []      # by the simulator's decision number
        self._send_at: list[float] = []         # UTC seconds, NaN for no message
        self._support: dict[str, int] = {}      # decision id -> arms the server allowed
        self._channel_id = {name: c for c, name in enumerate(self.catalog.channels)}
        self._client: TestClient | None = None

    # ---------------------------------------------------------------- lifespan

    def __enter__(self) -> ServedLoop:
        settings = Settings(state_dir=self.state_dir, world=str(self.world.path), model_uri=None,
                            default_policy=self.policy, seed=self.seed, decision_seed=self.seed, api_keys=API_KEY,
                            model_refresh_seconds=NEVER_SECONDS, close_windows_seconds=NEVER_SECONDS,
                            prior_trials=self.prior_trials)
        app = create_app(settings)
        app.dependency_overrides[get_now] = self._clock
        self._client = TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"})
        self._client.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._client is not None:
            self._client.__exit__(exc_type, exc, tb)
            self._client = None

    @property
    def client(self) -> TestClient:
        if self._client is None:
            raise RuntimeError("ServedLoop is not running; use it as `with ServedLoop(...) as loop:`")
        return self._client

    @property
    def service(self) -> Any:
        """The app's ``SendwiseService`` (its store and window closing)."""
        return self.client.app.state.service

    def _clock(self) -> datetime:
        return self.now

    def _move_clock(self, hours: float) -> None:
        """Server time for loop time ``hours``; it never runs backwards."""
        self.now = max(self.now, self.epoch + timedelta(hours=float(hours)) - ONE_SECOND)

    # ---------------------------------------------------------------- the protocol

    def decide(self, batch: DecisionBatch, now: float) -> Choices:
        if batch.customer_idx is None:
            raise ValueError("`batch.customer_idx` is required: the server keeps caps and consent per customer")
        self._move_clock(now)
        n_rows, n_channels = batch.n_rows, len(self.catalog.channels)
        start = self.epoch + timedelta(hours=float(now))
        deadline = start + timedelta(hours=N_HOURS) - ONE_SECOND
        window = {"not_before": start.isoformat(), "deadline": deadline.isoformat()}
        requested = batch.mask[:, :-1].reshape(n_rows, n_channels, N_HOURS).any(axis=2)
        customers = self._customers(batch, requested, window)
        answers: list[dict[str, Any]] = []
        began = time.perf_counter()
        for first in range(0, n_rows, CHUNK):
            response = self.client.post("/v1/decisions", json={"customers": customers[first:first + CHUNK]})
            if response.status_code != 200:
                raise RuntimeError(f"POST /v1/decisions answered {response.status_code}: {response.text[:2000]}")
            answers += response.json()["decisions"]
            self.stats.requests += 1
        self.stats.decide_seconds += time.perf_counter() - began
        arm = np.array([self._arm(d["channel"], d["local_hour"]) for d in answers], dtype=np.int64)
        served_mask = self._served_masks(requested, [d["reason"]["guardrails"] for d in answers])
        rows = np.arange(n_rows)
        forbidden = ~batch.mask[rows, arm]
        self.stats.decisions += n_rows
        self.stats.mask_mismatches += int(forbidden.sum())
        narrower = np.flatnonzero((batch.mask & ~served_mask).any(axis=1))
        self.stats.narrower_masks += int(narrower.size)
        self.stats.narrower_rules.update(g["rule"] for i in narrower.tolist()
                                         for g in answers[i]["reason"]["guardrails"])
        self.stats.wider_masks += int((served_mask & ~batch.mask).any(axis=1).sum())
        support = served_mask.sum(axis=1)
        for d, n_allowed in zip(answers, support.tolist(), strict=True):
            self._decision_ids.append(d["decision_id"])
            self._send_at.append(np.nan if d["send_at"] is None else datetime.fromisoformat(d["send_at"]).timestamp())
            self._support[d["decision_id"]] = n_allowed
        if forbidden.any():  # never sent: the served model must not count it as a failed message
            undelivered = [answers[i]["decision_id"] for i in np.flatnonzero(forbidden)]
            self._post_events([{"event_id": f"{d}:failed", "decision_id": d, "type": "failed",
                                "timestamp": self.now.isoformat()} for d in undelivered])
        epsilon = float(self.service.model.policy.epsilon)
        return Choices(arm=np.where(forbidden, self.catalog.null_arm, arm),
                       propensity=np.array([d["propensity"] for d in answers], dtype=np.float64),
                       explored=np.array([d["reason"]["mode"] == "exploration" for d in answers]) & ~forbidden,
                       support=support.astype(np.int64), epsilon=np.full(n_rows, epsilon))

    def sent(self, sends: Sends) -> None:
        keys = self._known(sends.key)
        served = np.array([self._send_at[k] for k in keys.tolist()])
        simulated = np.array([(self.epoch + timedelta(hours=float(h))).timestamp() for h in sends.sent_at.tolist()])
        self.stats.send_time_mismatches += int(np.sum(~(np.abs(served - simulated) <= 1.0)))

    def resolve(self, resolved: Resolved) -> None:
        rows = np.flatnonzero(resolved.arrived)
        if not rows.size:
            return
        day_end = (np.floor(resolved.resolved_at[rows].max() / N_HOURS) + 1) * N_HOURS
        self._move_clock(day_end)
        keys = self._known(resolved.key[rows])
        events = []
        for key, row in zip(keys.tolist(), rows.tolist(), strict=True):
            outcome = self.catalog.outcomes[int(resolved.outcome_idx[row])]
            if outcome not in EVENT_TYPE:
                raise ValueError(f"outcome {outcome!r} has no feedback event; known: {sorted(EVENT_TYPE)}")
            delay = float(resolved.resolved_at[row] - resolved.sent_at[row]) * 3600.0
            event = {"event_id": f"{self._decision_ids[key]}:{outcome}", "decision_id": self._decision_ids[key],
                     "type": EVENT_TYPE[outcome],
                     "timestamp": datetime.fromtimestamp(self._send_at[key] + delay, UTC).isoformat()}
            if outcome == "unsubscribe":
                event["channel"] = self.catalog.channel_of(int(resolved.arm[row]))
            events.append(event)
        self._post_events(events)

    def advance(self, now: float) -> None:
        self._move_clock(now)
        began = time.perf_counter()
        self.stats.windows_closed += self.service.close_windows(self.now)
        self.stats.close_seconds += time.perf_counter() - began

    # ---------------------------------------------------------------- the decision log

    def uniform_weights(self) -> tuple[np.ndarray, str, int]:
        """Per row of the exported decision log: (1 / allowed arms) / logged propensity, the importance weight
        of the uniform policy, whose mean is 1 when the logged propensities are right.

        The run must be over: every window still open is closed first (the clock jumps past the longest
        one), so the log holds every decision and no channel is under-represented for its long window.
        The rows are those ``sendwise export-logs`` writes (``server.export.decision_log``); their allowed
        sets come from the log when it records them, else from the masks the responses' guardrails
        describe. Returns the weights, that source, and how many logged allowed sets differ in size from
        what the guardrails describe (0 when the log and the responses agree).
        """
        settings = self.service.settings
        longest = max(float(self.world.attribution_window_hours.max()), settings.default_attribution_hours,
                      *settings.attribution_hours.values())
        self.now += timedelta(hours=longest + 1.0, seconds=settings.attribution_grace_seconds)
        self.service.close_windows(self.now)
        try:
            log = decision_log(self.service.store)
        except ValueError:  # no decision at all
            return np.empty(0), "none", 0
        described = np.array([self._support[d] for d in log.decision_id.tolist()])
        if log.allowed is None:
            return 1.0 / (described * log.propensity), "response guardrails", 0
        support = log.allowed.sum(axis=1)
        return 1.0 / (support * log.propensity), "logged allowed arms", int(np.sum(support != described))

    # ---------------------------------------------------------------- helpers

    def _customers(self, batch: DecisionBatch, requested: np.ndarray, window: dict[str, str]) -> list[dict[str, Any]]:
        catalog, zones = self.catalog, self.world.region_timezones
        region_idx, industry_idx, campaign_idx = catalog.cell_parts(batch.cell_idx)
        channel_lists: dict[bytes, list[str]] = {}
        out = []
        for i, (customer, r, ind, camp) in enumerate(zip(batch.customer_idx.tolist(), region_idx.tolist(),
                                                         industry_idx.tolist(), campaign_idx.tolist(), strict=True)):
            key = requested[i].tobytes()
            if key not in channel_lists:
                channel_lists[key] = [catalog.channels[c] for c in np.flatnonzero(requested[i])]
            region = catalog.regions[r]
            out.append({"customer_id": f"c{customer}", "timezone": zones[region], "region": region,
                        "industry": catalog.industries[ind], "campaign_type": catalog.campaign_types[camp],
                        "channels": channel_lists[key], **window})
        return out

    def _arm(self, channel: str, local_hour: int | None) -> int:
        if channel == NO_MESSAGE:
            return self.catalog.null_arm
        return self._channel_id[channel] * N_HOURS + int(local_hour)

    def _served_masks(self, requested: np.ndarray, guardrails: Sequence[list[dict[str, Any]]]) -> np.ndarray:
        """The arm mask the server decided under: the requested channels minus what each guardrail removed."""
        n_rows, n_channels = requested.shape
        per_hour = np.repeat(requested[:, :, None], N_HOURS, axis=2)
        for i, removed in enumerate(guardrails):
            for g in removed:
                channels = np.flatnonzero(requested[i]) if g["channel"] is None else [self._channel_id[g["channel"]]]
                per_hour[i][np.ix_(channels, g["hours"])] = False
        mask = np.ones((n_rows, self.catalog.n_arms), dtype=np.bool_)
        mask[:, :-1] = per_hour.reshape(n_rows, -1)
        return mask

    def _known(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.int64)
        if keys.size and (keys.min() < 0 or keys.max() >= len(self._decision_ids)):
            raise ValueError(f"unknown decision key {int(keys.max())}: {len(self._decision_ids)} decisions so far")
        return keys

    def _post_events(self, events: list[dict[str, Any]]) -> None:
        began = time.perf_counter()
        for first in range(0, len(events), CHUNK):
            response = self.client.post("/v1/feedback", json={"events": events[first:first + CHUNK]})
            if response.status_code != 200:
                raise RuntimeError(f"POST /v1/feedback answered {response.status_code}: {response.text[:2000]}")
            self.stats.event_status.update(r["status"] for r in response.json()["results"])
        self.stats.events_posted += len(events)
        self.stats.feedback_seconds += time.perf_counter() - began
