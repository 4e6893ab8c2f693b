"""Guardrails: which (channel, local hour) options a customer may get, before the policy chooses.

Every rule becomes part of the arm mask that goes *into* the engine, so the best allowed option is
chosen rather than a forbidden one being clipped afterwards:

- channels the caller did not list, and channels the customer unsubscribed from;
- quiet hours per region × channel (from the world, e.g. NA SMS only 08–21 local) and per request;
- the send window: hour ``h`` is allowed iff its next occurrence after now lies in
  ``[not_before, deadline]`` (``models.timing``), so the reported ``send_at`` always honours it;
- frequency caps per channel and over all channels within a rolling window. A send at ``t`` is allowed
  only if fewer than ``cap`` sends lie within ``(t - W, t + W)``; then no window of length ``W``
  anywhere can hold more than ``cap`` sends, whatever order the sends were planned in;
- budgets (``SENDWISE_BUDGETS``, else the world's ``[budget]``): a channel whose month's budget is spent
  is removed (rule ``budget``), and one the pacing priced above its cost says so in the reason's
  ``cost_multipliers`` (``budget_effects``; the pacing itself is the model's, ``models.policies.pacing``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from sendwise.models import N_HOURS, Catalog, parse_budgets, send_instants
from sendwise.models.policies import Pricing

from .schemas import CustomerRequest, Guardrail, GuardrailRule
from .settings import Settings

if TYPE_CHECKING:
    from sendwise.models.domain.world import World


@dataclass(frozen=True)
class ServingRules:
    """What the server enforces besides the model: quiet hours, attribution windows, frequency caps."""

    send_hours: dict[tuple[str, str], frozenset[int]] = field(default_factory=dict)  # (region, channel) → allowed
    attribution_hours: dict[str, float] = field(default_factory=dict)
    default_attribution_hours: float = 72.0
    channel_caps: dict[str, int] = field(default_factory=dict)
    total_cap: int | None = None
    cap_window_hours: float = 168.0
    budgets: dict[str, float] = field(default_factory=dict)  # channel -> USD per 30-day month, paced

    @classmethod
    def from_world(cls, settings: Settings, world: World | None) -> ServingRules:
        """The world's rules (none without a world), each overridden by a setting when that is set."""
        send_hours: dict[tuple[str, str], frozenset[int]] = {}
        attribution: dict[str, float] = {}
        caps: dict[str, int] = {}
        total_cap, window = None, 168.0
        budgets: dict[str, float] = {}
        if world is not None:
            budgets = dict(world.budgets)
            channels, regions = world.catalog.channels, world.catalog.regions
            for r, region in enumerate(regions):
                for c, channel in enumerate(channels):
                    if not world.hour_allowed[r, c].all():
                        send_hours[region, channel] = frozenset(np.flatnonzero(world.hour_allowed[r, c]).tolist())
            attribution = dict(zip(channels, world.attribution_window_hours.tolist(), strict=True))
            caps = dict(zip(channels, world.cap_per_week.tolist(), strict=True))
            total_cap = int(world.cap_per_week_total)
        return cls(
            send_hours=send_hours,
            attribution_hours={**attribution, **settings.attribution_hours},
            default_attribution_hours=settings.default_attribution_hours,
            channel_caps=caps if settings.channel_caps is None else dict(settings.channel_caps),
            total_cap=total_cap if settings.total_cap is None else settings.total_cap,
            cap_window_hours=window if settings.cap_window_hours is None else settings.cap_window_hours,
            budgets=budgets if settings.budgets is None else _parse_budgets(settings, world),
        )

    @property
    def has_caps(self) -> bool:
        return self.total_cap is not None or bool(self.channel_caps)

    @property
    def longest_attribution_window(self) -> timedelta:
        return timedelta(hours=max([self.default_attribution_hours, *self.attribution_hours.values()]))

    def attribution_window_hours(self, channel: str) -> float:
        return self.attribution_hours.get(channel, self.default_attribution_hours)

    def allowed_hours(self, catalog: Catalog) -> np.ndarray:
        """Quiet hours as bool (n_regions, n_channels, 24) over a catalog, True where sending is allowed."""
        allowed = np.ones((len(catalog.regions), len(catalog.channels), N_HOURS), dtype=np.bool_)
        for (region, channel), hours in self.send_hours.items():
            if region in catalog.regions and channel in catalog.channels:
                row = allowed[catalog.region_index(region), catalog.channel_index(channel)]
                row[:] = np.isin(np.arange(N_HOURS), sorted(hours))
        return allowed


@dataclass(frozen=True)
class BatchOptions:
    """Per customer of a request: the arm mask, the UTC instant of each local hour, what each guardrail removed."""

    mask: np.ndarray  # bool (n_customers, n_arms)
    send_at: list[tuple[datetime | None, ...]]  # per customer, per local hour; None outside the send window
    guardrails: list[list[Guardrail]]  # customers left with the same options share one list: do not mutate


def batch_options(
    customers: Sequence[CustomerRequest],
    catalog: Catalog,
    rules: ServingRules,
    quiet_allowed: np.ndarray,
    unsubscribed: Sequence[Collection[str]],
    sends: Sequence[Sequence[tuple[str, float]]],
    now: datetime,
) -> BatchOptions:
    """Apply every guardrail to every customer of a request.

    ``quiet_allowed`` is ``rules.allowed_hours(catalog)``; ``unsubscribed[i]`` and ``sends[i]`` are
    those of ``customers[i]``. Customers alike in everything a guardrail looks at (zone, window,
    region, channels, quiet hours, unsubscribes, planned sends) get the same options, so the options
    are worked out once per such profile, as arrays over the profiles.
    """
    profiles: dict[Hashable, int] = {}  # profile → its index among the distinct profiles
    rows: list[int] = []  # the first customer of each profile
    profile_of: list[int] = []
    for i, (customer, blocked, planned) in enumerate(zip(customers, unsubscribed, sends, strict=True)):
        quiet = tuple((name, q.start, q.end) for name, q in customer.quiet_hours.items())
        k = profiles.setdefault((customer.timezone, customer.not_before, customer.deadline, customer.region,
                                 tuple(customer.channels), quiet, frozenset(blocked), tuple(planned)), len(profiles))
        if k == len(rows):
            rows.append(i)
        profile_of.append(k)
    alike = _options([customers[r] for r in rows], catalog, rules, quiet_allowed, [unsubscribed[r] for r in rows],
                     [sends[r] for r in rows], now)
    return BatchOptions(alike.mask[profile_of], [alike.send_at[k] for k in profile_of],
                        [alike.guardrails[k] for k in profile_of])


def _options(customers: Sequence[CustomerRequest], catalog: Catalog, rules: ServingRules, quiet_allowed: np.ndarray,
             unsubscribed: Sequence[Collection[str]], sends: Sequence[Sequence[tuple[str, float]]],
             now: datetime) -> BatchOptions:
    """The options of customers each unlike the others, as arrays over them."""
    n, n_channels = len(customers), len(catalog.channels)
    channel_id = {name: c for c, name in enumerate(catalog.channels)}
    instants, seconds = zip(*(_window_instants((c.timezone, c.not_before, c.deadline), now) for c in customers),
                            strict=True)
    when = np.stack(seconds)  # (n, 24) UTC seconds, NaN outside the window
    in_window = ~np.isnan(when)
    requested = np.zeros((n, n_channels), dtype=np.bool_)
    unsub = np.zeros((n, n_channels), dtype=np.bool_)
    quiet_ok = quiet_allowed[[catalog.region_index(c.region) for c in customers]]  # a copy, (n, n_channels, 24)
    wanted: list[tuple[int, ...]] = []
    for i, customer in enumerate(customers):
        wanted.append(tuple(dict.fromkeys(channel_id[name] for name in customer.channels)))
        requested[i, wanted[-1]] = True
        unsub[i, [channel_id[name] for name in unsubscribed[i] if name in channel_id]] = True
        for name, quiet in customer.quiet_hours.items():
            quiet_ok[i, channel_id[name], quiet.hours()] = False
    channel_ok, total_ok = _cap_limits(catalog, rules, when, sends, channel_id)
    mask = catalog.arm_mask(requested & ~unsub, in_window[:, None, :] & quiet_ok & channel_ok & total_ok[:, None, :])
    guardrails = _removed(catalog, wanted, in_window, unsub, quiet_ok, channel_ok, total_ok)
    return BatchOptions(mask, list(instants), guardrails)


_WindowKey = tuple[str, datetime | None, datetime | None]  # time zone, not_before, deadline
_Instants = tuple[tuple[datetime | None, ...], np.ndarray]  # per local hour: UTC instant, and as seconds (NaN: None)


class _SendInstantsCache:
    """``timing.send_instants`` per (zone, not_before, deadline), reused for as long as it cannot change.

    The next occurrence of each local hour after ``now`` stays the same until ``now`` reaches the
    earliest of them, so instants computed at ``t0`` hold for every ``now`` in ``[t0, earliest)``:
    consecutive requests reuse them instead of converting 24 local times again.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[_WindowKey, tuple[datetime, datetime, _Instants]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, window: _WindowKey, now: datetime) -> _Instants:
        with self._lock:
            entry = self._entries.get(window)
        if entry is not None and entry[0] <= now < entry[1]:
            return entry[2]
        zone, not_before, deadline = window
        instants = send_instants(zone, now, not_before, deadline)
        seconds = np.array([np.nan if t is None else t.timestamp() for t in instants])
        seconds.flags.writeable = False  # shared by every request that reuses it
        until = min((t for t in instants if t is not None), default=_END_OF_TIME)
        with self._lock:
            self._entries[window] = (now, until, (instants, seconds))
            self._entries.move_to_end(window)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return instants, seconds


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_window_instants = _SendInstantsCache(size=4096)


def _removed(catalog: Catalog, wanted: list[tuple[int, ...]], in_window: np.ndarray, unsubscribed: np.ndarray,
             quiet_ok: np.ndarray, channel_ok: np.ndarray, total_ok: np.ndarray) -> list[list[Guardrail]]:
    """What each guardrail removed from each customer's requested channels (``wanted``), rule by rule."""
    window_cut: list[bool] = (~np.all(in_window, axis=1)).tolist()
    total_cut: list[bool] = (~np.all(total_ok, axis=1)).tolist()
    quiet_cut: list[list[bool]] = (~np.all(quiet_ok, axis=2)).tolist()
    cap_cut: list[list[bool]] = (~np.all(channel_ok, axis=2)).tolist()
    unsub: list[list[bool]] = unsubscribed.tolist()
    out: list[list[Guardrail]] = []
    for i, channels in enumerate(wanted):
        removed: list[Guardrail] = []
        out.append(removed)
        if not channels:
            continue
        if window_cut[i]:
            removed.append(_cut("send_window", None, in_window[i]))
        for c in channels:
            channel = catalog.channels[c]
            if unsub[i][c]:
                removed.append(Guardrail(rule="unsubscribed", channel=channel, hours=list(range(N_HOURS))))
                continue
            if quiet_cut[i][c]:
                removed.append(_cut("quiet_hours", channel, quiet_ok[i, c]))
            if cap_cut[i][c]:
                removed.append(_cut("channel_cap", channel, channel_ok[i, c]))
        if total_cut[i]:
            removed.append(_cut("total_cap", None, total_ok[i]))
    return out


def budget_effects(catalog: Catalog, mask: np.ndarray, guardrails: list[list[Guardrail]],
                   pricing: Pricing) -> tuple[list[list[Guardrail]], list[dict[str, float]]]:
    """What the budgets did to each row of a batch whose arm mask was ``mask`` before pricing.

    Returns each row's guardrails with a ``budget`` one per channel it could have had whose month's
    budget is spent, and the channels still allowed whose cost the pacing multiplied (channel -> multiplier).
    Rows alike share their lists and dicts, as ``guardrails`` do.
    """
    n_channels = len(catalog.channels)
    allowed = mask[:, :n_channels * N_HOURS].reshape(mask.shape[0], n_channels, N_HOURS).any(axis=2)
    cut = allowed & pricing.exhausted[None, :]
    priced = allowed & ~cut & (pricing.multiplier > 1.0)[None, :]
    if not cut.any() and not priced.any():
        return guardrails, [{}] * mask.shape[0]
    every_hour = list(range(N_HOURS))
    merged: dict[tuple[int, tuple[int, ...]], list[Guardrail]] = {}
    multipliers: dict[tuple[int, ...], dict[str, float]] = {}
    rows_out: list[list[Guardrail]] = []
    priced_out: list[dict[str, float]] = []
    for shared, cut_row, priced_row in zip(guardrails, cut.tolist(), priced.tolist(), strict=True):
        spent = tuple(c for c in range(n_channels) if cut_row[c])
        key = (id(shared), spent)
        if key not in merged:
            merged[key] = shared + [Guardrail(rule="budget", channel=catalog.channels[c], hours=every_hour)
                                    for c in spent] if spent else shared
        rows_out.append(merged[key])
        repriced = tuple(c for c in range(n_channels) if priced_row[c])
        if repriced not in multipliers:
            multipliers[repriced] = {catalog.channels[c]: round(float(pricing.multiplier[c]), 4) for c in repriced}
        priced_out.append(multipliers[repriced])
    return rows_out, priced_out


def _parse_budgets(settings: Settings, world: World | None) -> dict[str, float]:
    """``SENDWISE_BUDGETS`` checked against the world's channels (without a world, the model's check them)."""
    budgets = settings.budgets or {}
    catalog = world.catalog if world is not None else Catalog(channels=tuple(budgets) or ("email",))
    return parse_budgets(budgets, catalog)


def _cut(rule: GuardrailRule, channel: str | None, ok: np.ndarray) -> Guardrail:
    """A guardrail that removed the hours where ``ok`` is False."""
    return Guardrail(rule=rule, channel=channel, hours=np.flatnonzero(~ok).tolist())


def _cap_limits(catalog: Catalog, rules: ServingRules, when: np.ndarray, sends: Sequence[Sequence[tuple[str, float]]],
                channel_id: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Hours at which one more send keeps every rolling window within its cap (see the module doc).

    ``when`` is each customer's send instant per local hour (NaN outside the window), ``sends[i]``
    the (channel, send time) of customer ``i``'s planned messages. Returns bool (n, n_channels, 24)
    for the channel caps and bool (n, 24) for the total cap.
    """
    n, n_channels = when.shape[0], len(catalog.channels)
    channel_ok = np.ones((n, n_channels, N_HOURS), dtype=np.bool_)
    total_ok = np.ones((n, N_HOURS), dtype=np.bool_)
    row = np.array([i for i, planned in enumerate(sends) for _ in planned], dtype=np.intp)
    if not row.size:
        return channel_ok, total_ok
    sent_at = np.array([t for planned in sends for _, t in planned])
    near = (np.abs(when[row] - sent_at[:, None]) < rules.cap_window_hours * 3600.0).astype(np.int64)  # (n_sends, 24)
    if rules.total_cap is not None:
        total = np.zeros((n, N_HOURS), dtype=np.int64)
        np.add.at(total, row, near)
        total_ok = total < rules.total_cap
    if rules.channel_caps:
        channel = np.array([channel_id.get(name, -1) for planned in sends for name, _ in planned])
        known = channel >= 0  # a channel the served catalog does not know still counts towards the total
        per_channel = np.zeros((n, n_channels, N_HOURS), dtype=np.int64)
        np.add.at(per_channel, (row[known], channel[known]), near[known])
        cap = np.array([rules.channel_caps.get(name, np.inf) for name in catalog.channels])
        channel_ok = per_channel < cap[None, :, None]
    return channel_ok, total_ok
