"""Worlds as data: a TOML file describes a market, ``load_world`` turns it into arrays for the simulator.

The packaged seed world (``models/domain/worlds/seed.toml``) carries a source for every number; users copy it
and edit. Loading is strict: an unknown key, a table that misses a channel (or region, industry), a
negative cost or a rate outside [0, 1] is a ``ValueError`` naming the file, the key path and the
expected form, e.g. ``seed.toml: [engagement.email] ecommerce = 1.7: rate must lie in [0, 1]``.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .catalog import DEFAULT_OUTCOMES, N_HOURS, NO_MESSAGE, OPEN, REVENUE, REVENUE_UNIT, Catalog
from .economics import Economics, parse_budgets

WORLDS_DIR = Path(__file__).parent / "worlds"
N_WEEKDAYS = 7
_LIFT_LEVELS = ("two_channels", "three_or_more_channels")
_CAMPAIGN_GROUPS = ("lifecycle", "behaviour", "data")


OBJECTIVES = ("clicks", "revenue")


@dataclass(frozen=True, eq=False)
class Conversion:
    """Orders that follow clicks (``[conversion]``): what the revenue objective is made of.

    per_click : (I, C), the probability that a click leads to an order; order_value : (I, C), the mean
    order in USD, gamma distributed with shape ``order_value_shape``; value_per_usd : what one USD of
    orders is worth to the business (its contribution margin), the revenue objective's value.
    """

    per_click: np.ndarray
    order_value: np.ndarray
    order_value_shape: float
    value_per_usd: float

    def revenue_rate(self, industry: np.ndarray, channel: np.ndarray) -> np.ndarray:
        """Expected order value per click in ``REVENUE_UNIT`` (the revenue outcome's success per click)."""
        return self.per_click[industry, channel] * self.order_value[industry, channel] / REVENUE_UNIT


@dataclass(frozen=True, eq=False)
class World:
    """A market ready for the engine: names in ``catalog``, numbers in arrays indexed by catalog ids.

    Shapes use ``R`` regions, ``I`` industries, ``C`` channels, ``T`` campaign types, ``S`` lifecycle
    stages, ``Q`` RFM segments and ``A = C*24 + 1`` arms (the no-message arm last).
    """

    name: str
    path: Path
    description: str
    catalog: Catalog
    value: np.ndarray                   # (n_outcomes,): click value, unsubscribe value (negative)[, open value]
    cost: np.ndarray                    # (R, A): per-message cost; 0 on the no-message arm
    fixed_monthly_cost: np.ndarray      # (C,): charged once a channel is used in a month
    region_timezones: dict[str, str]    # region -> IANA time zone
    utc_offset_hours: np.ndarray        # (R,): local time minus UTC on the reference date
    region_share: np.ndarray            # (R,): share of customers, sums to 1
    industry_share: np.ndarray          # (I,)
    lifecycle_stages: tuple[str, ...]
    lifecycle_share: np.ndarray         # (S,)
    trigger_probability: np.ndarray     # (S,): daily probability that a campaign triggers
    campaign_groups: dict[str, str]     # campaign type -> lifecycle | behaviour | data
    campaign_multiplier: np.ndarray     # (T,): click-rate multiplier relative to a broadcast
    campaign_weights: np.ndarray        # (S, T): campaign mix per stage, rows sum to 1
    rfm_segments: tuple[str, ...]
    rfm_share: np.ndarray               # (Q,)
    rfm_engagement: np.ndarray          # (Q,): click-rate multiplier of the segment
    reach: np.ndarray                   # (R, C): P(customer is reachable and opted in)
    delivery: np.ndarray                # (C,): P(a sent message is seen)
    engagement: np.ndarray              # (I, C): base click rate per delivered message
    region_multiplier: np.ndarray       # (R, C)
    click_value_multiplier: np.ndarray  # (I, C): value of a click relative to value[click]
    hour_curves: np.ndarray             # (R, C, 24): hour-of-day weight, local time, max 1
    day_of_week: np.ndarray             # (C, 7): Monday first
    hour_allowed: np.ndarray            # (R, C, 24) bool: False in quiet hours
    affinity_sigma: float               # lognormal sigma of per-customer channel affinity
    hour_shift_sd: float                # sd of the per-customer preferred-hour shift, hours
    max_hour_shift: int
    fatigue_click_power: np.ndarray     # (C,): same-channel clicks scale by n7 ** -power
    fatigue_unsubscribe_power: np.ndarray  # (C,): unsubscribe hazard scales by n7 ** power
    cross_channel_scale: float
    cross_channel_power: float
    unsubscribe_hazard: np.ndarray      # (I, C): per delivered message
    delay_median_hours: np.ndarray      # (C,): lognormal response delay
    delay_sigma: np.ndarray             # (C,)
    attribution_window_hours: np.ndarray  # (C,)
    lift: np.ndarray                    # (I, T, 2): click lift at 2 and at 3+ distinct channels in 7 days
    cap_per_week_total: int
    cap_per_week: np.ndarray            # (C,) int64
    playbook: dict[str, list[Any]]      # industry -> [channel, hour]
    start_weekday: int                  # weekday of day 0, 0 = Monday
    budgets: dict[str, float]           # channel -> USD per 30-day month in simulations (``[budget]``)
    open_per_click: np.ndarray | None = None  # (C,): opens per click (>= 1); None: the world reports no opens
    conversion: Conversion | None = None  # orders after clicks (``[conversion]``); None: clicks stand for them
    objective: str = "clicks"  # what ``value`` rewards: "clicks", or "revenue" (``with_objective``)

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False

    @property
    def economics(self) -> Economics:
        """What a policy in this world maximises: ``value`` per outcome minus ``cost`` per message."""
        return Economics(self.value, self.cost)

    def expected_hour_curves(self) -> np.ndarray:
        """Hour curves averaged over the population's preferred-hour shifts, float64 (R, C, 24)."""
        shifts, probs = self.hour_shift_distribution()
        hours = np.arange(N_HOURS)
        return sum(p * self.hour_curves[:, :, (hours - s) % N_HOURS] for s, p in zip(shifts, probs, strict=True))

    def hour_shift_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        """Possible preferred-hour shifts (int64) and their probabilities: round(Normal(0, sd)), clipped."""
        shifts = np.arange(-self.max_hour_shift, self.max_hour_shift + 1)
        if self.hour_shift_sd == 0:
            return shifts, (shifts == 0).astype(np.float64)
        edges = np.append(shifts - 0.5, shifts[-1] + 0.5) / self.hour_shift_sd
        cdf = np.array([0.5 * (1 + math.erf(e / math.sqrt(2))) for e in edges])
        cdf[0], cdf[-1] = 0.0, 1.0  # clipping puts the tails on the extreme shifts
        return shifts, np.diff(cdf)

    def with_objective(self, objective: str) -> World:
        """The same market scored by ``objective``: ``"clicks"`` (the world file's ``[value]``) or ``"revenue"``.

        The revenue objective adds the outcome ``revenue`` (orders in ``REVENUE_UNIT`` USD, worth
        ``value_per_usd`` each USD) and values a click at 0: the click stays an outcome, a free sign of
        interest like an open, and the order it leads to is what counts.
        """
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
        if objective == self.objective:
            return self
        if objective == "clicks" or self.objective != "clicks":
            raise ValueError(f"world {self.name!r} is scored by {self.objective!r}; load it again for {objective!r}")
        if self.conversion is None:
            raise ValueError(f"world {self.name!r} has no [conversion] table: the revenue objective needs its "
                             "conversion rates and order values")
        catalog = replace(self.catalog, outcomes=(*self.catalog.outcomes, REVENUE))
        value = np.append(self.value, self.conversion.value_per_usd * REVENUE_UNIT)
        value[self.catalog.outcome_index("click")] = 0.0
        return replace(self, catalog=catalog, value=value, objective=objective)

    def without_channels(self, channels: Sequence[str]) -> World:
        """The same market with ``channels`` switched off: nobody is reachable on them.

        Only the reach changes, so a population drawn with the same seed is the same customers with
        the same random draws (common random numbers): a run with and without a channel differs by
        the channel alone.
        """
        unknown = [c for c in channels if c not in self.catalog.channels]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}; known: {', '.join(self.catalog.channels)}")
        reach = self.reach.copy()
        reach[:, [self.catalog.channels.index(c) for c in channels]] = 0.0
        return replace(self, reach=reach)


def known_worlds() -> list[str]:
    """Names of the worlds shipped with sendwise."""
    return sorted(p.stem for p in WORLDS_DIR.glob("*.toml"))


def load_world(name_or_path: str | Path = "seed") -> World:
    """Load a world by packaged name (``"seed"``) or from a path to a TOML file.

    Examples
    --------
    >>> world = load_world("seed")
    >>> world.cost.shape == (len(world.catalog.regions), world.catalog.n_arms)
    True
    """
    path = Path(name_or_path)
    if not isinstance(name_or_path, Path) and path.suffix != ".toml" and len(path.parts) == 1:
        path = WORLDS_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise ValueError(f"unknown world {str(name_or_path)!r}; known: {', '.join(known_worlds())} "
                             "(or pass the path of a .toml file)")
    if not path.is_file():
        raise FileNotFoundError(f"world file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path.name}: not valid TOML: {exc}") from None
    return _Reader(path, data).world()


class _Reader:
    """Walks the parsed TOML, checks every key and value, and builds the arrays."""

    _KINDS = {
        "rate": (lambda x: 0.0 <= x <= 1.0, "rate must lie in [0, 1]"),
        "cost": (lambda x: x >= 0.0, "cost must be a number >= 0"),
        "multiplier": (lambda x: x > 0.0, "multiplier must be a number > 0"),
        "weight": (lambda x: x >= 0.0, "weight must be a number >= 0"),
        "exponent": (lambda x: x >= 0.0, "exponent must be a number >= 0"),
        "hours": (lambda x: x > 0.0, "hours must be a number > 0"),
        "value": (lambda x: True, "value must be a finite number"),
        "per_click": (lambda x: x >= 1.0, "opens per click must be a number >= 1 (every click is an open)"),
    }

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    def fail(self, where: Sequence[str], message: str) -> NoReturn:
        location = f"[{'.'.join(where)}]" if where else "top level"
        raise ValueError(f"{self.path.name}: {location} {message}")

    def table(self, where: tuple[str, ...], keys: Sequence[str] | None = None, *, complete: bool = True,
              optional: bool = False) -> dict[str, Any]:
        """The table at ``where``; keys outside ``keys`` (and, if ``complete``, missing ones) are errors."""
        node: Any = self.data
        for depth, key in enumerate(where):
            if not isinstance(node, dict) or key not in node:
                if optional:
                    return {}
                self.fail(where[:depth], f"missing key {key!r}")
            node = node[key]
        if not isinstance(node, dict):
            self.fail(where[:-1], f"{where[-1]} must be a table")
        if keys is not None:
            expected = ", ".join(keys)
            for key in node:
                if key not in keys:
                    self.fail(where, f"unknown key {key!r}; expected: {expected}")
            for key in keys if complete else ():
                if key not in node:
                    self.fail(where, f"missing key {key!r}; expected: {expected}")
        return node

    def number(self, where: tuple[str, ...], key: str, value: Any, kind: str) -> float:
        ok, rule = self._KINDS[kind]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not ok(value):
            self.fail(where, f"{key} = {_show(value)}: {rule}")
        return float(value)

    def integer(self, where: tuple[str, ...], key: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(where, f"{key} = {_show(value)}: must be an integer in [{low}, {high}]")
        return int(value)

    def vector(self, where: tuple[str, ...], keys: Sequence[str], kind: str) -> np.ndarray:
        """Values of a table keyed exactly by ``keys``, float64 (len(keys),)."""
        node = self.table(where, keys)
        return np.array([self.number(where, k, node[k], kind) for k in keys])

    def matrix(self, where: tuple[str, ...], outer: Sequence[str], inner: Sequence[str], kind: str) -> np.ndarray:
        """``[where.<outer>] <inner> = x`` tables as float64 (len(outer), len(inner))."""
        self.table(where, outer)
        return np.stack([self.vector((*where, o), inner, kind) for o in outer])

    def overrides(self, where: tuple[str, ...], outer: Sequence[str],
                  inner: Sequence[str]) -> list[tuple[int, int, Any]]:
        """Sparse ``[where.<outer>] <inner> = x`` entries as (outer index, inner index, raw value)."""
        entries = []
        for o in self.table(where, outer, complete=False, optional=True):
            sub_table = self.table((*where, o), inner, complete=False)
            entries += [(list(outer).index(o), list(inner).index(i), v) for i, v in sub_table.items()]
        return entries

    def curve(self, where: tuple[str, ...], key: str, value: Any, length: int, kind: str) -> np.ndarray:
        ok, rule = self._KINDS[kind]
        if not isinstance(value, list) or len(value) != length or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and ok(x) for x in value
        ):
            self.fail(where, f"{key}: must be a list of {length} numbers; each {rule}")
        return np.array(value, dtype=np.float64)

    def names(self, where: tuple[str, ...], key: str) -> tuple[str, ...]:
        value = self.table(where).get(key)
        if not isinstance(value, list) or not value or not all(isinstance(x, str) and x for x in value):
            self.fail(where, f"{key} must be a non-empty list of names")
        if len(set(value)) != len(value) or NO_MESSAGE in value:
            self.fail(where, f"{key} = {_show(value)}: names must be unique and not {NO_MESSAGE!r}")
        return tuple(value)

    def world(self) -> World:
        self.table((), ("world", "catalog", "regions", "value", "cost", "reach", "delivery", "engagement",
                        "region_multiplier", "click_value_multiplier", "hour_curve", "hour_curve_by_region",
                        "day_of_week", "quiet_hours", "population", "heterogeneity", "campaigns", "fatigue",
                        "unsubscribe", "delay", "lift", "frequency_caps", "playbook", "budget", "open_per_click",
                        "conversion"),
                   complete=False)
        head = self.table(("world",), ("description", "start_weekday", "timezone_reference_date"))
        self.table(("catalog",), ("channels", "industries"))
        channels, industries = self.names(("catalog",), "channels"), self.names(("catalog",), "industries")
        regions = tuple(self.table(("regions",)))
        campaigns = tuple(self.table(("campaigns",)))
        stages = tuple(self.table(("population", "lifecycle")))
        segments = tuple(self.table(("population", "rfm")))
        entries = {("regions",): (regions, ("timezone", "share")),
                   ("campaigns",): (campaigns, ("group", "click_multiplier", "weights")),
                   ("population", "lifecycle"): (stages, ("share", "trigger_probability")),
                   ("population", "rfm"): (segments, ("share", "engagement"))}
        for where, (names, fields) in entries.items():
            if not names:
                self.fail(where, "must name at least one entry")
            for name in names:
                self.table((*where, name), fields)
        open_per_click = None
        if "open_per_click" in self.data:
            open_per_click = self.vector(("open_per_click",), channels, "per_click")
        outcomes = DEFAULT_OUTCOMES if open_per_click is None else (*DEFAULT_OUTCOMES, OPEN)
        catalog = Catalog(channels=channels, regions=regions, industries=industries, campaign_types=campaigns,
                          outcomes=outcomes)
        fatigue = self.table(("fatigue",), ("cross_channel_scale", "cross_channel_power", "click_power",
                                            "unsubscribe_power"))
        hetero = self.table(("heterogeneity",), ("affinity_sigma", "hour_shift_sd", "max_hour_shift"))
        caps = self.table(("frequency_caps",), ("per_week_total", "per_week"))
        per_week = self.table(("frequency_caps", "per_week"), channels)
        delays = self.matrix(("delay",), channels, ("median_hours", "sigma", "window_hours"), "hours")
        timezones, offsets = self.timezones(regions, head["timezone_reference_date"])
        day_of_week = self.table(("day_of_week",), channels)
        return World(
            name=self.path.stem,
            path=self.path,
            description=str(head["description"]),
            catalog=catalog,
            value=self.values(outcomes),
            cost=self.cost(regions, channels),
            fixed_monthly_cost=self.vector(("cost", "fixed_monthly"), channels, "cost"),
            region_timezones=timezones,
            utc_offset_hours=offsets,
            region_share=self.shares(("regions",), self.field(("regions",), regions, "share", "weight")),
            industry_share=self.shares(("population", "industry_share"),
                                       self.vector(("population", "industry_share"), industries, "weight")),
            lifecycle_stages=stages,
            lifecycle_share=self.shares(("population", "lifecycle"),
                                        self.field(("population", "lifecycle"), stages, "share", "weight")),
            trigger_probability=self.field(("population", "lifecycle"), stages, "trigger_probability", "rate"),
            campaign_groups={t: self.campaign_group(t) for t in campaigns},
            campaign_multiplier=self.field(("campaigns",), campaigns, "click_multiplier", "multiplier"),
            campaign_weights=self.campaign_weights(campaigns, stages),
            rfm_segments=segments,
            rfm_share=self.shares(("population", "rfm"),
                                  self.field(("population", "rfm"), segments, "share", "weight")),
            rfm_engagement=self.field(("population", "rfm"), segments, "engagement", "multiplier"),
            reach=self.matrix(("reach",), channels, regions, "rate").T.copy(),
            delivery=self.vector(("delivery",), channels, "rate"),
            engagement=self.matrix(("engagement",), channels, industries, "rate").T.copy(),
            region_multiplier=self.matrix(("region_multiplier",), channels, regions, "multiplier").T.copy(),
            click_value_multiplier=self.sparse(("click_value_multiplier",), industries, channels, "multiplier"),
            hour_curves=self.hour_curves(regions, channels),
            day_of_week=np.stack([self.curve(("day_of_week",), c, day_of_week[c], N_WEEKDAYS, "multiplier")
                                  for c in channels]),
            hour_allowed=self.quiet_hours(regions, channels),
            affinity_sigma=self.number(("heterogeneity",), "affinity_sigma", hetero["affinity_sigma"], "weight"),
            hour_shift_sd=self.number(("heterogeneity",), "hour_shift_sd", hetero["hour_shift_sd"], "weight"),
            max_hour_shift=self.integer(("heterogeneity",), "max_hour_shift", hetero["max_hour_shift"], 0, 12),
            fatigue_click_power=self.vector(("fatigue", "click_power"), channels, "exponent"),
            fatigue_unsubscribe_power=self.vector(("fatigue", "unsubscribe_power"), channels, "exponent"),
            cross_channel_scale=self.number(("fatigue",), "cross_channel_scale", fatigue["cross_channel_scale"],
                                            "multiplier"),
            cross_channel_power=self.number(("fatigue",), "cross_channel_power", fatigue["cross_channel_power"],
                                            "exponent"),
            unsubscribe_hazard=self.matrix(("unsubscribe",), channels, industries, "rate").T.copy(),
            delay_median_hours=delays[:, 0].copy(),
            delay_sigma=delays[:, 1].copy(),
            attribution_window_hours=delays[:, 2].copy(),
            lift=self.lift(industries, campaigns),
            cap_per_week_total=self.integer(("frequency_caps",), "per_week_total", caps["per_week_total"], 1, 10_000),
            cap_per_week=np.array([self.integer(("frequency_caps", "per_week"), c, per_week[c], 1, 10_000)
                                   for c in channels], dtype=np.int64),
            playbook=self.playbook(industries, channels),
            start_weekday=self.integer(("world",), "start_weekday", head["start_weekday"], 0, N_WEEKDAYS - 1),
            budgets=self.budgets(catalog),
            open_per_click=open_per_click,
            conversion=self.conversion(industries, channels) if "conversion" in self.data else None,
        )

    def conversion(self, industries: tuple[str, ...], channels: tuple[str, ...]) -> Conversion:
        """``[conversion]``: orders per click and mean order value per industry, each optionally scaled per
        channel (``per_click_multiplier``, ``order_value_multiplier``: ``[... .<industry>] <channel> = x``)."""
        where = ("conversion",)
        node = self.table(where, ("order_value_shape", "value_per_usd", "per_click", "order_value",
                                  "per_click_multiplier", "order_value_multiplier"), complete=False)
        for key in ("order_value_shape", "value_per_usd", "per_click", "order_value"):
            if key not in node:
                self.fail(where, f"missing key {key!r}")
        per_click = self.vector((*where, "per_click"), industries, "rate")[:, None] * self.sparse(
            (*where, "per_click_multiplier"), industries, channels, "multiplier")
        if np.any(per_click > 1.0):
            self.fail(where, "per_click x per_click_multiplier must stay a probability (<= 1)")
        order_value = self.vector((*where, "order_value"), industries, "cost")[:, None] * self.sparse(
            (*where, "order_value_multiplier"), industries, channels, "multiplier")
        return Conversion(per_click=per_click, order_value=order_value,
                          order_value_shape=self.number(where, "order_value_shape", node["order_value_shape"],
                                                        "multiplier"),
                          value_per_usd=self.number(where, "value_per_usd", node["value_per_usd"], "weight"))

    def values(self, outcomes: tuple[str, ...]) -> np.ndarray:
        """``[value]``: click and unsubscribe, and ``open`` (default 0) in a world that reports opens."""
        node = self.table(("value",), outcomes, complete=False)
        for key in DEFAULT_OUTCOMES:
            if key not in node:
                self.fail(("value",), f"missing key {key!r}; expected: {', '.join(outcomes)}")
        return np.array([self.number(("value",), k, node.get(k, 0.0), "value") for k in outcomes])

    def budgets(self, catalog: Catalog) -> dict[str, float]:
        """The optional ``[budget.<channel>] per_month = USD`` tables, checked by ``parse_budgets``."""
        try:
            return parse_budgets(self.table(("budget",), optional=True), catalog)
        except ValueError as exc:
            self.fail(("budget",), str(exc))

    def cost(self, regions: tuple[str, ...], channels: tuple[str, ...]) -> np.ndarray:
        self.table(("cost",), ("per_message", "fixed_monthly"))
        per_message = self.matrix(("cost", "per_message"), channels, regions, "cost")  # (C, R)
        cost = np.zeros((len(regions), len(channels) * N_HOURS + 1))
        cost[:, :-1] = np.repeat(per_message.T, N_HOURS, axis=1)
        return cost

    def timezones(self, regions: tuple[str, ...], date: Any) -> tuple[dict[str, str], np.ndarray]:
        if isinstance(date, str):
            try:
                date = dt.date.fromisoformat(date)
            except ValueError:
                pass
        if not isinstance(date, dt.date):
            self.fail(("world",), f"timezone_reference_date = {_show(date)}: must be a date like 2025-01-15")
        when = dt.datetime.combine(date, dt.time(12))
        zones, offsets = {}, []
        for r in regions:
            where = ("regions", r)
            zone = self.table(where, ("timezone", "share"))["timezone"]
            try:
                offset = when.replace(tzinfo=zoneinfo.ZoneInfo(str(zone))).utcoffset()
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.fail(where, f"timezone = {_show(zone)}: must be an IANA time zone such as \"Europe/Berlin\"")
            zones[r] = str(zone)
            offsets.append(offset.total_seconds() / 3600.0)
        return zones, np.array(offsets)

    def field(self, where: tuple[str, ...], names: Sequence[str], field: str, kind: str) -> np.ndarray:
        """``field`` of each sub-table ``[where.<name>]``, float64 (len(names),)."""
        return np.array([self.number((*where, n), field, self.table((*where, n))[field], kind) for n in names])

    def shares(self, where: tuple[str, ...], shares: np.ndarray) -> np.ndarray:
        """Shares must sum to 1 (within 1e-6)."""
        if abs(shares.sum() - 1.0) > 1e-6:
            self.fail(where, f"shares sum to {shares.sum():.6g}: they must sum to 1")
        return shares

    def campaign_group(self, name: str) -> str:
        group = self.table(("campaigns", name))["group"]
        if group not in _CAMPAIGN_GROUPS:
            self.fail(("campaigns", name), f"group = {_show(group)}: must be one of {', '.join(_CAMPAIGN_GROUPS)}")
        return group

    def campaign_weights(self, campaigns: tuple[str, ...], stages: tuple[str, ...]) -> np.ndarray:
        weights = np.zeros((len(stages), len(campaigns)))
        for t, name in enumerate(campaigns):
            where = ("campaigns", name, "weights")
            for s, stage in enumerate(stages):
                weights[s, t] = self.number(where, stage, self.table(where, stages)[stage], "weight")
        for s, stage in enumerate(stages):
            if weights[s].sum() <= 0:
                self.fail(("campaigns",), f"no campaign has a weight > 0 for lifecycle stage {stage!r}")
        return weights / weights.sum(axis=1, keepdims=True)

    def sparse(self, where: tuple[str, ...], outer: Sequence[str], inner: Sequence[str], kind: str) -> np.ndarray:
        """Dense (len(outer), len(inner)) array of ones with the overrides at ``where`` applied."""
        out = np.ones((len(outer), len(inner)))
        for o, i, v in self.overrides(where, outer, inner):
            out[o, i] = self.number((*where, outer[o]), inner[i], v, kind)
        return out

    def hour_curves(self, regions: tuple[str, ...], channels: tuple[str, ...]) -> np.ndarray:
        node = self.table(("hour_curve",), channels)
        base = np.stack([self.curve(("hour_curve",), c, node[c], N_HOURS, "rate") for c in channels])
        curves = np.repeat(base[None], len(regions), axis=0)
        for c, r, v in self.overrides(("hour_curve_by_region",), channels, regions):
            curves[r, c] = self.curve(("hour_curve_by_region", channels[c]), regions[r], v, N_HOURS, "rate")
        return curves

    def quiet_hours(self, regions: tuple[str, ...], channels: tuple[str, ...]) -> np.ndarray:
        allowed = np.ones((len(regions), len(channels), N_HOURS), dtype=np.bool_)
        for c, r, v in self.overrides(("quiet_hours",), channels, regions):
            ok = isinstance(v, list) and len(v) == 2 and all(isinstance(h, int) and not isinstance(h, bool) for h in v)
            if not ok or not 0 <= v[0] < v[1] <= N_HOURS:
                self.fail(("quiet_hours", channels[c]),
                          f"{regions[r]} = {_show(v)}: must be [first, end] local hours, 0 <= first < end <= 24")
            allowed[r, c] = (np.arange(N_HOURS) >= v[0]) & (np.arange(N_HOURS) < v[1])
        return allowed

    def lift(self, industries: tuple[str, ...], campaigns: tuple[str, ...]) -> np.ndarray:
        node = self.table(("lift",), (*_LIFT_LEVELS, "by_industry", "by_campaign"), complete=False)
        for level in _LIFT_LEVELS:
            if level not in node:
                self.fail(("lift",), f"missing key {level!r}; expected: {', '.join(_LIFT_LEVELS)}")
        lift = np.empty((len(industries), len(campaigns), 2))
        for k, level in enumerate(_LIFT_LEVELS):
            lift[:, :, k] = self.number(("lift",), level, node[level], "multiplier")
        by_industry = self.table(("lift", "by_industry"), industries, complete=False, optional=True)
        for name, v in by_industry.items():
            lift[industries.index(name)] = self.number(("lift", "by_industry"), name, v, "multiplier")
        for i, t, v in self.overrides(("lift", "by_campaign"), industries, campaigns):
            lift[i, t] = self.number(("lift", "by_campaign", industries[i]), campaigns[t], v, "multiplier")
        return lift

    def playbook(self, industries: tuple[str, ...], channels: tuple[str, ...]) -> dict[str, list[Any]]:
        node = self.table(("playbook",), industries)
        for name, entry in node.items():
            ok = isinstance(entry, list) and len(entry) == 2 and entry[0] in channels
            if not ok or isinstance(entry[1], bool) or not isinstance(entry[1], int) or not 0 <= entry[1] < N_HOURS:
                self.fail(("playbook",), f"{name} = {_show(entry)}: must be [channel, local hour 0-23] "
                                         f"with a channel of {', '.join(channels)}")
        return {name: [node[name][0], int(node[name][1])] for name in industries}


def _show(value: Any) -> str:
    """A value as it would appear in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)
