"""The operator's dashboard: what the engine learned, what it is doing, and why it would decide as it does.

Everything here only reads. The posterior comes from the served model (under its lock), activity from
the service's store (``Store.activity``, SQLite or Redis alike), and an explanation from the service's
own decision path run dry (nothing logged, nothing counted). Pages are rendered from the Jinja templates in
``dashboard_assets`` with autoescaping on; charts are SVG drawn here; the one script only signs in and
out. Access takes an API key with the ``admin`` scope, in a header or exchanged at ``/dashboard/login``
for a signed, expiring session cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import weakref
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, Field, ValidationError

from sendwise.models import N_HOURS, NO_MESSAGE, Catalog

from .activity import Activity
from .auth import ApiKeys
from .errors import InputError, ModelUnavailableError
from .experiments import experiment_assignment
from .export import decision_log
from .limits import bounded_decimal
from .live_model import LiveModel, OwnHistory
from .model_loader import configured_registry_uri
from .privacy import read_or_create_private
from .schemas import CustomerRequest, Decision, DecisionRequest, DecisionRows
from .service import SendwiseService
from .settings import Settings

if TYPE_CHECKING:
    from sendwise.models.experiments.lift import LiftReport

ASSETS = Path(__file__).parent / "dashboard_assets"
CREDIBLE_LEVEL = 0.9
INTERVAL_DRAWS = 2000
TOP_OPTIONS = 6
SCOPE = "admin"
SESSION_COOKIE = "sendwise_session"
SESSION_SECONDS = 8 * 3600
EXPIRY_DIGITS = 12  # a cookie's expiry in Unix seconds; more digits are no expiry this server issued
SESSION_SECRET_FILE = "dashboard_secret"
WINDOW_HOURS = {"24h": 24, "7d": 24 * 7}
Window = Literal["24h", "7d"]
Basis = Literal["posterior", "prior", "none"]
# Okabe–Ito colours (distinguishable with colour-blindness), one per channel; grey for no message.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442")
NO_MESSAGE_COLOUR = "#9a9a9a"
T = TypeVar("T")
LIFT_REFRESH_SECONDS = 60.0  # the lift report reads every closed decision: computed at most this often


class LiftPanel(NamedTuple):
    """The lift report of the server's own log, or why there is none yet, and when it was computed."""

    report: LiftReport | None
    note: str | None
    computed_at: str
    value_differences: list[Any]


_lift_cache: weakref.WeakKeyDictionary[SendwiseService, tuple[float, LiftPanel]] = weakref.WeakKeyDictionary()


def lift_panel(service: SendwiseService, now: datetime) -> LiftPanel | None:
    """The experiment's lift report over the closed decisions (None when no experiment is configured),
    recomputed at most every ``LIFT_REFRESH_SECONDS``: what ``sendwise lift`` says of an export."""
    assignment = experiment_assignment(service.settings)
    if assignment is None:
        return None
    cached = _lift_cache.get(service)
    if cached is not None and now.timestamp() - cached[0] < LIFT_REFRESH_SECONDS:
        return cached[1]
    from sendwise.models.experiments.lift import VALUE, lift_report  # scipy loads only when a page shows a report

    try:
        report = lift_report(decision_log(service.store), assignment.shares)
        panel = LiftPanel(report, None, _when(now.timestamp()),
                          [d for d in report.differences if d.metric == VALUE])
    except ValueError as exc:  # no closed decision yet, or a log the report cannot use
        panel = LiftPanel(None, str(exc), _when(now.timestamp()), [])
    _lift_cache[service] = (now.timestamp(), panel)
    return panel


class NoPosteriorError(LookupError):
    """The served policy keeps no Beta posterior (e.g. a static playbook), so there is nothing to show."""


# --- What the engine learned -----------------------------------------------------------------------------


class PosteriorCell(BaseModel):
    """One option of a segment: posterior mean net value and its central credible interval."""

    channel: str
    hour: int = Field(ge=0, le=23, description="local send hour")
    net_value: float = Field(description="posterior mean of Σ value[o]·rate[o] − cost; below 0 loses to no message")
    ci_low: float
    ci_high: float


class SegmentPosterior(BaseModel):
    """The served model's belief about every channel × hour option of one segment."""

    region: str
    industry: str
    campaign_type: str
    model_version: str
    credible_level: float = Field(description="probability mass inside [ci_low, ci_high]")
    channels: list[str]
    cells: list[PosteriorCell] = Field(description="channel-major: the 24 hours of channels[0], then channels[1], …")
    best: PosteriorCell | None = Field(
        description="the highest mean; None when all are below 0 (no message wins) or the basis is 'none'")
    basis: Basis = Field(description=(
        "posterior: the served model's belief (its source's state and the feedback it learned); prior: the "
        "world's prior with no feedback learned yet, so every value is the prior's expectation; none: the same "
        "with a flat prior (the same rates for every option), so the values differ by cost alone and say nothing"))


def segment_posterior(service: SendwiseService, region: str, industry: str, campaign_type: str) -> SegmentPosterior:
    """Posterior mean net value and credible interval of every option in a segment (page and JSON alike).

    Intervals come from ``INTERVAL_DRAWS`` Beta draws with a fixed seed, so the same posterior always
    gives the same numbers; they are computed once per served model and posterior version. The model
    first catches up with every worker's commits, so two workers on one store give the same answer.
    While the server serves the world's prior and has learned no outcome yet, the numbers are the
    prior's, and ``basis`` says so.
    """
    live = service.model
    if live is None:
        raise ModelUnavailableError(f"no model is served yet ({service.model_error or 'loading'}); retry shortly")
    live.catch_up(service.store, fresh=True)  # what every worker has committed, so all workers answer alike
    cold = service.settings.model_uri is None and live.n_resolved == 0
    return _segment_posterior(live, live.applied_seq, cold, region, industry, campaign_type)


@lru_cache(maxsize=64)
def _segment_posterior(live: LiveModel, applied_seq: int, cold: bool, region: str, industry: str,
                       campaign_type: str) -> SegmentPosterior:
    """``segment_posterior`` of one model; ``applied_seq`` keys the cache, as every update the model learns moves it.

    ``cold``: the model is the world's prior and has learned nothing yet.
    """
    catalog, policy = live.catalog, live.policy
    cell = _segment_cell(catalog, region, industry, campaign_type)
    alpha, beta = _cell_posterior(live, cell)
    cost = policy.cost[catalog.region_index(region), :-1]
    rates = alpha / (alpha + beta)
    basis: Basis = "posterior" if not cold else "none" if np.allclose(rates, rates[:, :1]) else "prior"
    mean = policy.value @ rates - cost
    draws = np.random.default_rng(0).beta(alpha, beta, size=(INTERVAL_DRAWS, *alpha.shape))
    tail = (1.0 - CREDIBLE_LEVEL) / 2
    low, high = np.quantile(np.einsum("o,doa->da", policy.value, draws) - cost, [tail, 1.0 - tail], axis=0)
    channel_idx, hours = catalog.arm_channels()[:-1], catalog.arm_hours()[:-1]
    cells = [PosteriorCell(channel=catalog.channels[c], hour=int(h), net_value=float(m), ci_low=float(lo),
                           ci_high=float(hi))
             for c, h, m, lo, hi in zip(channel_idx, hours, mean, low, high, strict=True)]
    best = max(cells, key=lambda c: c.net_value)
    return SegmentPosterior(region=region, industry=industry, campaign_type=campaign_type, model_version=live.version,
                            credible_level=CREDIBLE_LEVEL, channels=list(catalog.channels), cells=cells,
                            best=best if best.net_value >= 0 and basis != "none" else None, basis=basis)


def _segment_cell(catalog: Catalog, region: str, industry: str, campaign_type: str) -> int:
    """The segment's cell id; a 422 naming each unknown name and the known ones."""
    errors = []
    for name, index, value in (("region", catalog.region_index, region), ("industry", catalog.industry_index, industry),
                               ("campaign_type", catalog.campaign_index, campaign_type)):
        try:
            index(value)
        except ValueError as exc:
            errors.append((("path", name), str(exc)))
    if errors:
        raise InputError(errors)
    return int(catalog.cell(region, industry, campaign_type))


def _cell_posterior(live: LiveModel, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Copies of one cell's Beta parameters without the no-message arm, float64 (n_outcomes, n_arms - 1).

    The same posterior the policy decides from (``Policy.posterior``: open messages included), read
    under the model's lock.
    """
    posterior = live.posterior_of(cell)
    if posterior is None:
        raise NoPosteriorError(f"the served policy {live.policy.name!r} keeps no Beta posterior to show")
    alpha, beta = posterior
    return alpha[:, :-1], beta[:, :-1]


# --- Why the engine would decide as it does --------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """A dry-run decision for one customer, the best allowed options, and what the guardrails removed."""

    customer: CustomerRequest
    decision: Decision
    options: list[PosteriorCell]  # allowed options by posterior mean, best first, at most TOP_OPTIONS
    n_allowed: int
    own_history: OwnHistory | None = None  # how the customer's own history moves each channel


def explain(service: SendwiseService, customer: CustomerRequest, now: datetime) -> Explanation:
    """What ``POST /v1/decisions`` would answer for ``customer`` now, and the options it weighed."""
    (decision,) = dry_run_decide(service, DecisionRequest(customers=[customer]), now).decisions
    posterior = segment_posterior(service, customer.region, customer.industry, customer.campaign_type)
    removed = {(g.channel, h) for g in decision.reason.guardrails for h in g.hours}
    allowed = [c for c in posterior.cells if c.channel in customer.channels
               and (c.channel, c.hour) not in removed and (None, c.hour) not in removed]
    ranked = sorted(allowed, key=lambda c: -c.net_value)
    own = None if service.model is None else service.model.own_history(service.pseudonymize(customer.customer_id))
    return Explanation(customer, decision, ranked[:TOP_OPTIONS], len(ranked), own)


def dry_run_decide(service: SendwiseService, request: DecisionRequest, now: datetime) -> DecisionRows:
    """``service.decide`` without logging or counting: the same code path as ``POST /v1/decisions``."""
    return service.decide(request, now, dry_run=True)


# --- Who may look --------------------------------------------------------------------------------------


class Ticket(NamedTuple):
    """A valid session cookie's revocation key (SHA-256 of its random id) and expiry (epoch seconds)."""

    key: str
    expires_at: int


@dataclass(frozen=True)
class Sessions:
    """Signed, expiring session cookies ``id.expires.mac``, mac = HMAC-SHA256(secret, id.expires | key digest).

    A cookie is good until it expires, while the key it was issued for still holds the admin scope
    (taking a key out of ``SENDWISE_API_KEYS`` ends its sessions), and until it is signed out: sign-out
    puts a digest of the session's id on the store's revocation list, so a copy of the cookie is
    refused by every worker as well.
    """

    secret: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> Sessions:
        """The secret from a private file in the state folder, made once (workers on one host share it)."""
        content, _ = read_or_create_private(settings.state_dir / SESSION_SECRET_FILE, secrets.token_hex(32))
        return cls(bytes.fromhex(content))

    def issue(self, api_key: str, now: datetime) -> str:
        payload = f"{secrets.token_urlsafe(16)}.{int(now.timestamp()) + SESSION_SECONDS}"
        return f"{payload}.{self._mac(payload, hashlib.sha256(api_key.encode()).digest())}"

    def verify(self, cookie: str | None, keys: ApiKeys, now: datetime) -> Ticket | None:
        """The ticket of ``cookie`` if it is unexpired and signed for a current admin key (constant time),
        else None. Whether it was signed out is the store's to say (``Store.session_revoked``)."""
        session_id, _, rest = (cookie or "").partition(".")
        expires, _, mac = rest.partition(".")
        expires_at = bounded_decimal(expires, EXPIRY_DIGITS)
        if not (session_id and expires_at is not None and expires_at > now.timestamp()):
            return None
        payload, presented, admitted = f"{session_id}.{expires}", mac.encode(), False
        for digest, scopes in keys.entries:
            admitted |= hmac.compare_digest(self._mac(payload, digest).encode(), presented) and SCOPE in scopes
        return Ticket(hashlib.sha256(session_id.encode()).hexdigest(), expires_at) if admitted else None

    def _mac(self, payload: str, key_digest: bytes) -> str:
        return hmac.new(self.secret, payload.encode() + b"|" + key_digest, hashlib.sha256).hexdigest()


# --- Pages ---------------------------------------------------------------------------------------------


class PageQuery(BaseModel):
    """The page's GET parameters: the segment, the activity window, and an optional customer to explain."""

    region: str | None = Field(default=None, max_length=200)
    industry: str | None = Field(default=None, max_length=200)
    campaign_type: str | None = Field(default=None, max_length=200)
    window: Window = "24h"
    customer_id: str | None = Field(default=None, max_length=200)
    timezone: str = Field(default="UTC", max_length=200)
    channels: list[str] = Field(default_factory=list, max_length=64)


_templates = Environment(loader=FileSystemLoader(ASSETS), autoescape=True, undefined=StrictUndefined,
                         trim_blocks=True, lstrip_blocks=True)


def render_login() -> str:
    return _templates.get_template("login.html").render()


def render_dashboard(service: SendwiseService, query: PageQuery, now: datetime) -> str:
    """The whole page; each part that cannot be shown says why instead, and the rest still renders."""
    live = service.model
    catalog = live.catalog if live is not None else None
    region = query.region or (catalog.regions[0] if catalog else "")
    industry = query.industry or (catalog.industries[0] if catalog else "")
    campaign_type = query.campaign_type or (catalog.campaign_types[0] if catalog else "")
    notices: list[str] = []
    posterior = _attempt(notices, lambda: segment_posterior(service, region, industry, campaign_type))
    explanation = None
    if query.customer_id is not None:
        asked = {"customer_id": query.customer_id, "timezone": query.timezone, "region": region, "industry": industry,
                 "campaign_type": campaign_type, "channels": query.channels}
        explanation = _attempt(notices, lambda: explain(service, CustomerRequest.model_validate(asked), now))
    activity = service.store.activity(now.timestamp(), WINDOW_HOURS[query.window])
    channels = list(catalog.channels) if catalog else sorted({h.channel for h in activity.hourly} - {NO_MESSAGE})
    colours = defaultdict(lambda: NO_MESSAGE_COLOUR,  # grey too for channels an older model had
                          {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(channels)})
    first = None if live is None else service.store.first_served(live.version)
    return _templates.get_template("dashboard.html").render(
        catalog=catalog, region=region, industry=industry, campaign_type=campaign_type, query=query,
        notices=list(dict.fromkeys(notices)), posterior=posterior,
        heatmap=None if posterior is None else heatmap(posterior),
        explanation=explanation, option_rows=None if explanation is None else option_rows(explanation),
        activity=activity, bars=hourly_bars(activity, colours), colours=colours, closing=closing_rows(activity, now),
        model=model_facts(service, first), budgets=[] if live is None else live.budget_status(),
        lift=lift_panel(service, now),
        readiness=service.readiness(), selected_channels=set(query.channels if query.customer_id else channels),
        now=_when(now.timestamp()), hour_ranges=hour_ranges, when=_when)


def _attempt(notices: list[str], build: Callable[[], T]) -> T | None:
    """``build()``, or None with the reason added to ``notices`` when the request or the model rules it out."""
    try:
        return build()
    except ValidationError as exc:
        notices.extend(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    except (InputError, NoPosteriorError, ModelUnavailableError) as exc:
        notices.append(str(exc))
    return None


# --- Drawing -------------------------------------------------------------------------------------------
# SVG user units. The heatmap: one row per channel, one column per local hour.
CELL_W, CELL_H, LABEL_W, HEAD_H = 36, 26, 84, 20
# The activity chart: stacked bars of decisions per hour, coloured by channel.
PLOT_W, PLOT_H, AXIS_W, AXIS_H = 880, 150, 36, 20
LIGHT, DARK = (236, 247, 241), (0, 94, 68)  # the colour ramp of positive net values, 0 → the segment's best
LEGEND_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)  # of the segment's best, one legend tick each
MAX_DECIMALS = 6
BELOW_ZERO = "url(#below-zero)"  # a hatch pattern defined in the page
HATCH = ("#f7e3e3", "#e6bcbc")  # its background and stripes
BELOW_ZERO_INK = "#7a2626"  # the text on it: at least MIN_CONTRAST on both of its colours
NO_DATA = "#eef1f0"  # cells of a flat prior that has learned nothing
INK, WHITE, BLACK = "#1d2b26", "#ffffff", "#000000"  # INK is the page's text colour
MIN_CONTRAST = 4.5  # WCAG 2 AA for text


@dataclass(frozen=True)
class HeatCell:
    x: int
    y: int
    fill: str
    ink: str
    text: str
    title: str
    best: bool
    below: bool
    cell: PosteriorCell


@dataclass(frozen=True)
class Heatmap:
    width: int
    height: int
    cells: list[HeatCell]
    rows: list[tuple[int, str]]  # (y of the row's middle, channel)
    columns: list[tuple[int, str]]  # (x of the column's middle, hour)
    legend: list[tuple[str, str]]  # (fill, label), left to right
    cell_w: int = CELL_W
    cell_h: int = CELL_H
    label_x: int = LABEL_W - 8
    hatch: tuple[str, str] = HATCH


def heatmap(posterior: SegmentPosterior) -> Heatmap:
    """Cells coloured by mean net value (hatched below 0), with the interval in each cell's hover title.

    Each cell's text takes the colour that reads on its fill (``text_ink``). On the basis ``none`` the
    cells show no number: a flat prior that learned nothing has none to give.
    """
    top = posterior.best.net_value if posterior.best else 0.0
    no_data = posterior.basis == "none"
    what = {"posterior": "mean net value", "prior": "prior mean net value (no feedback yet)",
            "none": "no data yet; the flat prior's mean net value"}[posterior.basis]
    cells = []
    for i, cell in enumerate(posterior.cells):
        row = i // N_HOURS
        below, best = cell.net_value < 0 and not no_data, cell == posterior.best
        fill = NO_DATA if no_data else BELOW_ZERO if below else _ramp(max(cell.net_value, 0.0) / top if top else 0.0)
        title = (f"{cell.channel} {cell.hour:02d}:00 · {what} {cell.net_value:+.4f} · "
                 f"{posterior.credible_level:.0%} credible interval {cell.ci_low:+.4f} to {cell.ci_high:+.4f} "
                 f"(width {cell.ci_high - cell.ci_low:.4f})"
                 + ("; below 0, so no message beats it" if below else "") + ("; the best option" if best else ""))
        cells.append(HeatCell(x=LABEL_W + cell.hour * CELL_W, y=HEAD_H + row * CELL_H, fill=fill, below=below,
                              ink=BELOW_ZERO_INK if below else text_ink(fill),
                              text="—" if no_data else _fmt(cell.net_value), title=title, best=best, cell=cell))
    return Heatmap(width=LABEL_W + N_HOURS * CELL_W + 2, height=HEAD_H + len(posterior.channels) * CELL_H + 2,
                   cells=cells, rows=[(HEAD_H + r * CELL_H + CELL_H // 2, c) for r, c in enumerate(posterior.channels)],
                   columns=[(LABEL_W + h * CELL_W + CELL_W // 2, f"{h:02d}") for h in range(N_HOURS)],
                   legend=heatmap_legend(top, no_data))


def heatmap_legend(top: float, no_data: bool = False) -> list[tuple[str, str]]:
    """(fill, label) pairs: ramp ticks from 0 to ``top`` (the best mean) in as many decimals as keep them
    distinct, and the hatch of below 0; no ramp when nothing is above 0, one grey entry when there is no data."""
    if no_data:
        return [(NO_DATA, "— no data yet: a flat prior and no feedback")]
    ramp = []
    if top > 0:
        decimals = next((d for d in range(3, MAX_DECIMALS) if len({_fmt(s * top, d) for s in LEGEND_SHARES})
                         == len(LEGEND_SHARES)), MAX_DECIMALS)
        ramp = [(_ramp(s), _fmt(s * top, decimals)) for s in LEGEND_SHARES]
    return [*ramp, (BELOW_ZERO, "below 0: no message wins")]


def text_ink(fill: str) -> str:
    """The text colour for a ``#rrggbb`` fill: the page's ink if it reaches ``MIN_CONTRAST`` there, else white
    if that does, else whichever of white and black contrasts more (on the ramp's middle, black)."""
    for ink in (INK, WHITE):
        if contrast_ratio(ink, fill) >= MIN_CONTRAST:
            return ink
    return max((WHITE, BLACK), key=lambda ink: contrast_ratio(ink, fill))


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours, from 1 (the same) to 21 (black on white)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a ``#rrggbb`` colour."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _ramp(share: float) -> str:
    return "#" + "".join(f"{round(lo + (hi - lo) * share):02x}" for lo, hi in zip(LIGHT, DARK, strict=True))


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # (x, label) along the time axis
    y_max: int
    left: int = AXIS_W
    right: int = AXIS_W + PLOT_W
    bottom: int = PLOT_H


def hourly_bars(activity: Activity, colours: Mapping[str, str]) -> BarChart:
    """Decisions per hour of the window, stacked by channel in ``colours`` order, oldest hour on the left."""
    step = PLOT_W / activity.hours
    per_bucket: dict[int, dict[str, int]] = {}
    for h in activity.hourly:
        per_bucket.setdefault(h.bucket, {})[h.channel] = h.decisions
    y_max = max((sum(b.values()) for b in per_bucket.values()), default=0) or 1
    bars = []
    for bucket, counts in per_bucket.items():
        base = float(PLOT_H)
        ago = activity.hours - bucket
        for channel in sorted(counts, key=lambda c: list(colours).index(c) if c in colours else len(colours)):
            height = counts[channel] / y_max * PLOT_H
            base -= height
            bars.append(Bar(x=AXIS_W + bucket * step, y=base, width=max(step - 1.0, 1.0), height=height,
                            fill=colours[channel],
                            title=f"{counts[channel]} × {channel}, {ago} to {ago - 1} h ago"))
    every = 3 if activity.hours <= 24 else 24
    unit, scale = ("h", 1) if activity.hours <= 24 else ("d", 24)
    ticks = [(AXIS_W + b * step, f"−{(activity.hours - b) // scale} {unit}") for b in range(0, activity.hours, every)]
    return BarChart(width=AXIS_W + PLOT_W + 8, height=PLOT_H + AXIS_H, bars=bars,
                    ticks=[*ticks, (AXIS_W + PLOT_W, "now")], y_max=y_max)


@dataclass(frozen=True)
class ClosingRow:
    channel: str
    segment: str
    decided: str
    closes: str


def closing_rows(activity: Activity, now: datetime) -> list[ClosingRow]:
    at = now.timestamp()
    return [ClosingRow(w.channel, f"{w.region} · {w.industry} · {w.campaign_type}", f"{_span(at - w.created_at)} ago",
                       f"in {_span(w.window_closes_at - at)}" if w.window_closes_at > at
                       else f"due {_span(at - w.window_closes_at)} ago") for w in activity.closing_soon]


@dataclass(frozen=True)
class OptionRow:
    label: str
    net_value: float
    interval: str
    chosen: bool


def option_rows(explanation: Explanation) -> list[OptionRow]:
    """The best allowed options, with the no-message option (worth exactly 0) at its rank."""
    decision = explanation.decision
    rows = [OptionRow(f"{o.channel} {o.hour:02d}:00", o.net_value, f"{o.ci_low:+.4f} to {o.ci_high:+.4f}",
                      (o.channel, o.hour) == (decision.channel, decision.local_hour)) for o in explanation.options]
    at = next((i for i, r in enumerate(rows) if r.net_value < 0), len(rows))
    rows.insert(at, OptionRow("no message", 0.0, "exactly 0", decision.channel == NO_MESSAGE))
    return rows


@dataclass(frozen=True)
class ModelFacts:
    version: str | None
    source: str
    alias: str | None
    first_served: str


def model_facts(service: SendwiseService, first_served: float | None) -> ModelFacts:
    settings = service.settings
    uri = settings.model_uri
    registered = configured_registry_uri(settings)
    alias = None if registered is None else registered.alias
    return ModelFacts(version=None if service.model is None else service.model.version,
                      source=uri or f"prior of the world {settings.world!r}", alias=alias,
                      first_served="no decision yet" if first_served is None else _when(first_served))


def hour_ranges(hours: list[int]) -> str:
    """Local hours as ranges, e.g. ``00–06, 22–23``."""
    if len(hours) == N_HOURS:
        return "all day"
    runs: list[list[int]] = []
    for h in sorted(hours):
        if runs and h == runs[-1][-1] + 1:
            runs[-1].append(h)
        else:
            runs.append([h])
    return ", ".join(f"{r[0]:02d}" if len(r) == 1 else f"{r[0]:02d}–{r[-1]:02d}" for r in runs)


def _fmt(value: float, decimals: int = 3) -> str:
    """A net value without the leading zero (``.021``, ``−.501``), to fit a heatmap cell; three decimals unless told."""
    text = f"{abs(value):.{decimals}f}".removeprefix("0")
    return f"−{text}" if value < 0 and text.strip(".0") else text


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    minutes = int(max(seconds, 0.0) // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
