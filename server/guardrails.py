"""Guardrails: which (channel, local hour) options a customer may get, before the policy chooses.

Every rule becomes part of the arm mask that goes *into* the engine, so the best allowed option is
chosen rather than a forbidden one being clipped afterwards:

- channels the caller did not list, and channels the customer unsubscribed from;
- quiet hours per region × channel (from the world, e.g. NA SMS only 08–21 local) and per request;
- the send window: hour ``h`` is allowed iff its next occurrence after now lies in
  ``[not_before, deadline]`` (``server.timing``), so the reported ``send_at`` always honours it;
- frequency caps per channel and over all channels within a rolling window. A send at ``t`` is allowed
  only if fewer than ``cap`` sends lie within ``(t - W, t + W)``; then no window of length ``W``
  anywhere can hold more than ``cap`` sends, whatever order the sends were planned in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from sendwise.models import N_HOURS, Catalog

from .schemas import CustomerRequest, Guardrail, GuardrailRule
from .settings import Settings
from .timing import next_send_at

if TYPE_CHECKING:
    from sendwise.models.world import World


@dataclass(frozen=True)
class ServingRules:
    """What the server enforces besides the model: quiet hours, attribution windows, frequency caps."""

    send_hours: dict[tuple[str, str], frozenset[int]] = field(default_factory=dict)  # (region, channel) → allowed
    attribution_hours: dict[str, float] = field(default_factory=dict)
    default_attribution_hours: float = 72.0
    channel_caps: dict[str, int] = field(default_factory=dict)
    total_cap: int | None = None
    cap_window_hours: float = 168.0

    @classmethod
    def from_world(cls, settings: Settings, world: World | None) -> ServingRules:
        """The world's rules (none without a world), each overridden by a setting when that is set."""
        send_hours: dict[tuple[str, str], frozenset[int]] = {}
        attribution: dict[str, float] = {}
        caps: dict[str, int] = {}
        total_cap, window = None, 168.0
        if world is not None:
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
class CustomerOptions:
    """One customer's arm mask, the UTC instant of each local hour, and what each guardrail removed."""

    mask: np.ndarray  # bool (n_arms,)
    send_at: list[datetime | None]  # per local hour; None outside the send window (shared: do not mutate)
    guardrails: list[Guardrail]


def customer_options(
    customer: CustomerRequest,
    catalog: Catalog,
    rules: ServingRules,
    quiet_allowed: np.ndarray,
    unsubscribed: set[str],
    sends: Sequence[tuple[str, float]],
    now: datetime,
) -> CustomerOptions:
    """Apply every guardrail to one customer; ``quiet_allowed`` is ``rules.allowed_hours(catalog)``."""
    n_channels = len(catalog.channels)
    requested = [catalog.channels.index(ch) for ch in dict.fromkeys(customer.channels)]
    instants = _send_instants(customer.timezone, now, customer.not_before, customer.deadline)
    in_window = np.array([t is not None for t in instants])
    allowed = np.zeros((n_channels, N_HOURS), dtype=np.bool_)
    guardrails: list[Guardrail] = []
    if not in_window.all() and requested:
        guardrails.append(Guardrail(rule="send_window", channel=None, hours=_hours(~in_window)))
    caps = _cap_limits(catalog, rules, instants, sends)
    for c in requested:
        channel = catalog.channels[c]
        if channel in unsubscribed:
            guardrails.append(Guardrail(rule="unsubscribed", channel=channel, hours=list(range(N_HOURS))))
            continue
        quiet_ok = quiet_allowed[catalog.region_index(customer.region), c].copy()
        if channel in customer.quiet_hours:
            quiet_ok[customer.quiet_hours[channel].hours()] = False
        allowed[c] = in_window & quiet_ok & caps.channel_ok[c] & caps.total_ok
        checks: tuple[tuple[GuardrailRule, np.ndarray], ...] = (("quiet_hours", quiet_ok),
                                                                 ("channel_cap", caps.channel_ok[c]))
        for rule, ok in checks:
            if not ok.all():
                guardrails.append(Guardrail(rule=rule, channel=channel, hours=_hours(~ok)))
    if requested and not caps.total_ok.all():
        guardrails.append(Guardrail(rule="total_cap", channel=None, hours=_hours(~caps.total_ok)))
    mask = catalog.arm_mask(np.ones((1, n_channels), dtype=np.bool_), allowed[None])[0]
    return CustomerOptions(mask, instants, guardrails)


@dataclass(frozen=True)
class _Caps:
    channel_ok: np.ndarray  # bool (n_channels, 24)
    total_ok: np.ndarray  # bool (24,)


def _cap_limits(catalog: Catalog, rules: ServingRules, instants: list[datetime | None],
                sends: Sequence[tuple[str, float]]) -> _Caps:
    """Hours at which one more send keeps every rolling window within its cap (see the module doc)."""
    n_channels = len(catalog.channels)
    channel_ok = np.ones((n_channels, N_HOURS), dtype=np.bool_)
    total_ok = np.ones(N_HOURS, dtype=np.bool_)
    if not sends:
        return _Caps(channel_ok, total_ok)
    when = np.array([t.timestamp() if t is not None else np.nan for t in instants])
    sent_at = np.array([s[1] for s in sends])
    near = np.abs(when[:, None] - sent_at[None, :]) < rules.cap_window_hours * 3600.0  # (24, n_sends)
    if rules.total_cap is not None:
        total_ok = near.sum(axis=1) < rules.total_cap
    for c, channel in enumerate(catalog.channels):
        cap = rules.channel_caps.get(channel)
        if cap is not None:
            same = np.array([s[0] == channel for s in sends])
            channel_ok[c] = (near & same[None, :]).sum(axis=1) < cap
    return _Caps(channel_ok, total_ok)


@lru_cache(maxsize=1024)
def _send_instants(tz: str, now: datetime, not_before: datetime | None,
                   deadline: datetime | None) -> list[datetime | None]:
    """UTC instant of each local hour (None outside the window); cached, as a batch shares zones and ``now``."""
    return [next_send_at(h, tz, now, not_before, deadline) for h in range(N_HOURS)]


def _hours(flags: np.ndarray) -> list[int]:
    return np.flatnonzero(flags).tolist()
