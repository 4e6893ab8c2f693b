"""Server settings, read from ``SENDWISE_*`` environment variables (pydantic-settings).

Every setting has a default that works on a laptop: state in the sendwise home (``$SENDWISE_HOME``, else
``./.sendwise``), the seed world's prior as the model, an API key generated and printed once at first start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sendwise.models import sendwise_home

SQLITE_PREFIX = "sqlite:///"
REDIS_PREFIXES = ("redis://", "rediss://")
RedisDurability = Literal["always", "everysec", "none"]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Settings(BaseSettings):
    """Configuration of one server process; see each field's description."""

    model_config = SettingsConfigDict(env_prefix="SENDWISE_", env_parse_none_str="none", extra="ignore")

    state_dir: Path = Field(default_factory=lambda: sendwise_home().state_dir,
                            description="folder of the state DB, pepper and key digests (default: the sendwise home)")
    state_url: str | None = Field(
        default=None, description="sqlite:///path/to/state.db (default <state_dir>/state.db) or redis[s]://host:port/db")
    snapshot_seconds: PositiveSeconds = Field(
        default=1.0, description="Redis state: how stale the counts a worker decides with may be, at most")
    redis_durability: RedisDurability = Field(
        default="everysec", description="Redis state: refuse to start if its AOF fsync policy is weaker than this")
    model_uri: str | None = Field(
        default=None, description="models:/name@alias (MLflow registry) or a policy .npz; unset: the world's prior")
    world: str | None = Field(default="seed", description="world of the prior and the serving rules; none: no world")
    objective: Literal["clicks", "revenue"] = Field(
        default="clicks", description="what the world's prior optimises: clicks, or the value of `converted` events")
    default_policy: str | None = Field(default=None, description="policy on the world's prior (hier_ts, else ts)")
    seed: int = Field(default=0, description="seed of the prior policy")
    decision_seed: int | None = Field(
        default=None, description="seed the decisions' random streams in order, for reproducible runs (unset: fresh)")
    prior_trials: float = Field(
        default=2.0, ge=0, allow_inf_nan=False,
        description="cold start: pseudo-sends per cell and option at the world's sourced rates (0: flat Beta(1, 1))")
    api_keys: SecretStr | None = Field(
        default=None, description="comma-separated keys, each optionally KEY:scope+scope (decide, feedback, admin)")
    pepper: SecretStr | None = Field(default=None, description="secret of the customer pseudonyms (default: a file)")
    model_refresh_seconds: PositiveSeconds = Field(default=60.0, description="how often the model source is re-checked")
    close_windows_seconds: PositiveSeconds = Field(default=60.0, description="how often windows are closed")
    attribution_grace_seconds: float = Field(
        default=300.0, ge=0, allow_inf_nan=False, description="wait after a window closes before counting a failure")
    default_attribution_hours: PositiveSeconds = Field(default=72.0, description="window of channels without one")
    attribution_hours: dict[str, PositiveSeconds] = Field(
        default_factory=dict, description='per-channel windows overriding the world\'s, JSON: {"email": 168}')
    channel_caps: dict[str, Annotated[int, Field(ge=1)]] | None = Field(
        default=None, description='messages per channel per cap window, JSON {"sms": 2}; unset: the world\'s')
    total_cap: int | None = Field(default=None, ge=1, description="messages per cap window; unset: the world's")
    cap_window_hours: PositiveSeconds | None = Field(default=None, description="rolling cap window; unset: world's")
    budgets: dict[str, dict[str, float]] | None = Field(
        default=None, description='paced spend per channel, JSON {"sms": {"per_month": 1000}}; unset: the world\'s')
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="larger request bodies are refused with 413")
    max_concurrent_requests: int = Field(
        default=64, ge=1, description="requests in flight per worker; more get 503 + Retry-After (probes never)")
    request_timeout_seconds: PositiveSeconds = Field(
        default=30.0, description="each request's deadline: its waits end there, and past it it writes nothing (503)")
    body_timeout_seconds: PositiveSeconds = Field(
        default=10.0, description="a request body that takes longer than this to arrive gets 408")
    expose_docs: bool = Field(default=True, description="serve /docs and /openapi.json")
    holdout_share: float = Field(
        default=0.0, ge=0, le=1, allow_inf_nan=False,
        description="share of customers held out of every non-transactional message, for the lift report (0: none)")
    holdout_salt: str = Field(default="sendwise", min_length=1, max_length=64,
                              description="salt of the experiment hash (holdout, baseline): a new salt, new groups")
    baseline_share: float = Field(
        default=0.0, ge=0, le=1, allow_inf_nan=False,
        description="share of customers served the baseline instead of the model, for the lift report (0: none)")
    baseline: Literal["caller", "static", "random_hour"] = Field(
        default="caller", description="the baseline: the request's default_channel/default_hour (else the world's "
                                      "playbook), the world's playbook, or its channel at a random allowed hour")
    shadow: bool = Field(default=False, description="baseline customers' messages teach the model, and each of "
                                                    "their decisions says what the model would have chosen")
    rate_limit_requests_per_minute: int | None = Field(
        default=None, ge=1, description="API requests per key per minute, counted across workers; unset: no limit")
    rate_limit_decisions_per_minute: int | None = Field(
        default=None, ge=1, description="customers decided per key per minute, counted across workers; unset: none")
    rate_limit_sign_in_failures: int | None = Field(
        default=10, ge=1, description="failed dashboard sign-ins per client address and window, then 429; none: off")
    rate_limit_sign_in_window_seconds: PositiveSeconds = Field(
        default=900.0, description="window of the failed sign-in limit")

    @model_validator(mode="after")
    def _experiment_fits(self) -> Settings:
        if self.holdout_share + self.baseline_share > 1:
            raise ValueError(f"holdout_share + baseline_share must be <= 1 (the model gets the rest); got "
                             f"{self.holdout_share:g} + {self.baseline_share:g}")
        if self.shadow and self.baseline_share == 0:
            raise ValueError("shadow mode serves the baseline and logs the model's choice: set baseline_share > 0")
        return self

    @field_validator("model_uri", "state_url")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty; leave it unset for the default")
        return value

    @field_validator("state_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith((SQLITE_PREFIX, *REDIS_PREFIXES)):
            raise ValueError(f"must start with {SQLITE_PREFIX!r}, 'redis://' or 'rediss://'; got {value!r}")
        return value

    @property
    def redis_url(self) -> str | None:
        """The state URL when the state is in Redis, else None."""
        return self.state_url if self.state_url is not None and self.state_url.startswith(REDIS_PREFIXES) else None

    @property
    def state_path(self) -> Path:
        """Path of the SQLite state DB (``sqlite:////abs/path`` is absolute, ``sqlite:///rel`` relative)."""
        if self.redis_url is not None:
            raise ValueError("the state is in Redis (SENDWISE_STATE_URL); there is no SQLite state DB")
        if self.state_url is None:
            return self.state_dir / "state.db"
        return Path(self.state_url.removeprefix(SQLITE_PREFIX))
