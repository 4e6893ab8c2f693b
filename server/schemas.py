"""Request and response bodies of the HTTP API; each request schema carries its own constraints.

Names (channels, regions, industries, campaign types) are checked against the served model's
catalog by the service, because the catalog can change with the model; everything that does not
depend on the model (sizes, time zones, finite numbers, aware datetimes) is checked here.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError, to_json

MAX_CUSTOMERS = 1000
MAX_EVENTS = 1000
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is exactly ``message`` (no "Value error, " prefix)."""
    return PydanticCustomError("value_error", "{message}", {"message": message})


# Characters refused in names and ids, by Unicode category: they break logs and CSVs, or make text
# look other than it is (a bidirectional override reverses what follows; a zero-width space is unseen).
_INVISIBLE = {
    "Cc": "control characters",
    "Cf": "invisible format characters (Unicode Cf, such as bidirectional overrides and zero-width characters)",
    "Zl": "line or paragraph separators (Unicode Zl, Zp)",
    "Zp": "line or paragraph separators (Unicode Zl, Zp)",
}


def _plain_text(value: str) -> str:
    """Refuse invisible characters (``_INVISIBLE``); pydantic already refuses lone surrogates."""
    if value.isascii() and value.isprintable():  # the usual case, checked in C: no ASCII character is Cf, Zl, Zp
        return value
    for ch in value:
        what = _INVISIBLE.get(unicodedata.category(ch))
        if what is not None:
            raise invalid(f"must not contain {what}")
    return value


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _time_zone(value: str) -> str:
    if value not in _zone_names():
        raise invalid(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'")
    return value


def _iso_text(value: object) -> object:
    """Accept date-times only as ISO 8601 text, as the schema says (not, say, bare epoch numbers)."""
    if not isinstance(value, str):
        raise invalid("must be an ISO 8601 date-time string with a time zone")
    return value


def _in_utc(value: datetime) -> datetime:
    """Normalise to UTC within [1970, 2200), so later arithmetic can neither overflow nor go negative."""
    if not EARLIEST <= value < LATEST:
        raise invalid("must lie between 1970-01-01 and 2200-01-01")
    return value.astimezone(UTC)


Text = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_plain_text)]
Name = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_plain_text)]
TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_time_zone)]
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]
Hour = Annotated[int, Field(ge=0, le=23, strict=True)]


class StrictModel(BaseModel):
    """Unknown fields and non-finite numbers are errors, not silently dropped or accepted."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class QuietHours(StrictModel):
    """No message from ``start``:00 up to ``end``:00 local time; wraps past midnight when start > end."""

    start: Hour
    end: Hour

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise invalid("`start` and `end` must differ; leave the channel out of `channels` to block it all day")
        return self

    def hours(self) -> list[int]:
        """The quiet local hours."""
        if self.start < self.end:
            return list(range(self.start, self.end))
        return [*range(self.start, 24), *range(self.end)]


class CustomerRequest(StrictModel):
    """One customer to decide for, with the message's context and the options the caller allows."""

    customer_id: Text
    timezone: TimeZone = Field(description="IANA time zone of the customer, e.g. 'America/New_York'")
    region: Name
    industry: Name
    campaign_type: Name
    lifecycle_stage: Name | None = None
    channels: list[Name] = Field(max_length=64, description="reachable, consented channels for this message")
    not_before: UtcDatetime | None = Field(None, description="earliest send instant (timezone-aware)")
    deadline: UtcDatetime | None = Field(None, description="latest send instant (timezone-aware)")
    quiet_hours: dict[Name, QuietHours] = Field(
        default_factory=dict, max_length=64, description="per-channel quiet hours on top of the configured ones"
    )
    transactional: bool = Field(False, strict=True, description="a message the customer must get: never held out")
    default_channel: Name | None = Field(
        None, description="what the caller would send without sendwise: an experiment's baseline (and shadow mode's)")
    default_hour: Hour | None = Field(None, description="local hour of `default_channel` (default: its playbook hour)")

    @model_validator(mode="after")
    def _window_in_order(self) -> CustomerRequest:
        if self.not_before is not None and self.deadline is not None and self.deadline < self.not_before:
            raise invalid("`deadline` must not be before `not_before`")
        if self.default_hour is not None and self.default_channel is None:
            raise invalid("`default_hour` needs `default_channel`")
        if self.default_channel is not None and self.default_channel not in self.channels:
            raise invalid(f"`default_channel` {self.default_channel!r} must be one of `channels`")
        return self


class DecisionRequest(StrictModel):
    customers: list[CustomerRequest] = Field(min_length=1, max_length=MAX_CUSTOMERS)


GuardrailRule = Literal["unsubscribed", "quiet_hours", "send_window", "channel_cap", "total_cap", "budget"]


class Guardrail(BaseModel):
    """Options a guardrail removed: ``hours`` of ``channel`` (every requested channel when None)."""

    rule: GuardrailRule
    channel: str | None
    hours: list[int]


class ModelChoice(BaseModel):
    """Shadow mode: what the model would have chosen for a customer served the baseline, and how likely."""

    channel: str
    local_hour: int | None
    propensity: float
    agrees: bool = Field(description="the model's choice is the option that was sent")
    sent_probability: float = Field(description="the model's probability of the option that was sent (for off-policy "
                                                "estimates of what the model would have earned)")


class Reason(BaseModel):
    """Why this option, and what was ruled out.

    ``exploitation``: the policy's most probable option for this request. ``exploration``: any other,
    drawn uniformly among the allowed options (the exploration floor) or a Thompson draw of an option
    the posterior does not favour most; ``propensity`` says how likely it was. ``holdout``: the
    customer is in the holdout (``SENDWISE_HOLDOUT_SHARE``), so no message. ``baseline``: the customer is
    in an experiment's baseline group (``SENDWISE_BASELINE_SHARE``) and gets the baseline's option; in
    shadow mode ``model_choice`` says what the model would have chosen instead. A guardrail ``budget`` removed a
    channel whose month's budget is spent; ``cost_multipliers`` names the channels whose cost the budget
    pacing multiplied for this decision (2.0: each message counted as twice its cost).
    """

    mode: Literal["exploration", "exploitation", "holdout", "baseline"]
    guardrails: list[Guardrail]
    cost_multipliers: dict[str, float] = Field(default_factory=dict)
    model_choice: ModelChoice | None = None


class Decision(BaseModel):
    decision_id: UUID
    customer_id: str
    channel: str = Field(description='channel to send on, or "none" for no message')
    local_hour: int | None = Field(description="local hour of the send (None for no message)")
    send_at: datetime | None = Field(description="UTC instant to send at (None for no message)")
    propensity: float = Field(description="probability that the policy picks this option for this request")
    model_version: str
    reason: Reason


class DecisionResponse(BaseModel):
    decisions: list[Decision]


class DecisionRows:
    """A ``DecisionResponse`` as one plain dict per decision (the fields of ``Decision``, in its order).

    A batch's answer is serialised straight from the rows by pydantic's core, to the same bytes the
    models would give, without building and serialising a model per decision; the models are built
    (and validated) only when asked for, by the dashboard's dry run.
    """

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def json(self) -> bytes:
        """The response body: what ``DecisionResponse(decisions=self.decisions).model_dump_json()`` gives."""
        return to_json({"decisions": self.rows})

    @property
    def decisions(self) -> list[Decision]:
        return DecisionResponse.model_validate({"decisions": self.rows}).decisions


EventType = Literal["delivered", "opened", "clicked", "converted", "unsubscribed", "failed", "consent"]
EventStatus = Literal["applied", "duplicate", "unknown_decision", "late", "before_decision"]


class FeedbackEvent(StrictModel):
    """What happened to a decision's message; ``event_id`` makes re-sending it harmless."""

    event_id: Text
    decision_id: UUID
    type: EventType
    timestamp: UtcDatetime
    value: float | None = Field(None, strict=True, ge=0, allow_inf_nan=False,
                                description="a conversion's order value in USD: what a revenue model learns")
    channel: Name | None = Field(None, description="channel of an unsubscribe or consent (default: the decision's)")

    @model_validator(mode="after")
    def _consent_names_channel(self) -> FeedbackEvent:
        if self.type == "consent" and self.channel is None:
            raise invalid("a consent event needs `channel`")
        return self


class FeedbackRequest(StrictModel):
    events: list[FeedbackEvent] = Field(min_length=1, max_length=MAX_EVENTS)


class EventResult(BaseModel):
    event_id: str
    status: EventStatus


class FeedbackResponse(BaseModel):
    results: list[EventResult]


class ErrorMessage(BaseModel):
    """Body of every non-422 error response."""

    detail: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "not_ready"]
    model_version: str | None
    detail: str | None = None


class Erasure(BaseModel):
    customer_id: str
    decisions_deleted: int
    events_deleted: int
    channel_states_deleted: int
