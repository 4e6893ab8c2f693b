"""Server settings, read from ``SENDWISE_*`` environment variables (pydantic-settings).

Every setting has a default that works on a laptop: state in ``./.sendwise``, the seed world's prior
as the model, an API key generated and printed once at first start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SQLITE_PREFIX = "sqlite:///"
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Settings(BaseSettings):
    """Configuration of one server process; see each field's description."""

    model_config = SettingsConfigDict(env_prefix="SENDWISE_", env_parse_none_str="none", extra="ignore")

    state_dir: Path = Field(Path(".sendwise"), description="folder for the state DB, the pepper and key digests")
    state_url: str | None = Field(None, description="sqlite:///path/to/state.db (default: <state_dir>/state.db)")
    model_uri: str | None = Field(
        None, description="models:/name@alias (MLflow registry) or a policy .npz; unset: the world's prior"
    )
    world: str | None = Field("seed", description="world for the prior and the serving rules; none: no world")
    default_policy: str | None = Field(None, description="policy built on the world's prior (default hier_ts, else ts)")
    seed: int = Field(0, description="seed of the prior policy")
    api_keys: SecretStr | None = Field(
        None, description="comma-separated keys, each optionally KEY:scope+scope (decide, feedback, admin)"
    )
    pepper: SecretStr | None = Field(None, description="secret for customer-id pseudonyms (default: generated file)")
    model_refresh_seconds: PositiveSeconds = Field(60.0, description="how often the registry alias is re-checked")
    close_windows_seconds: PositiveSeconds = Field(60.0, description="how often closed attribution windows are counted")
    attribution_grace_seconds: float = Field(
        300.0, ge=0, allow_inf_nan=False, description="wait after a window closes before counting it a failure"
    )
    default_attribution_hours: PositiveSeconds = Field(72.0, description="attribution window of channels without one")
    attribution_hours: dict[str, PositiveSeconds] = Field(
        default_factory=dict, description='per-channel windows overriding the world\'s, JSON: {"email": 168}'
    )
    channel_caps: dict[str, Annotated[int, Field(ge=1)]] | None = Field(
        None, description='messages per channel per cap window, JSON {"sms": 2}; unset: the world\'s'
    )
    total_cap: int | None = Field(None, ge=1, description="messages per cap window over all channels; unset: world's")
    cap_window_hours: PositiveSeconds | None = Field(None, description="rolling cap window; unset: the world's")
    propensity_draws: int = Field(200, ge=1, le=100_000, description="Monte-Carlo draws behind a logged propensity")
    propensity_cache_size: int = Field(4096, ge=1, description="propensity rows kept per model")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="larger request bodies are refused with 413")
    expose_docs: bool = Field(True, description="serve /docs and /openapi.json")

    @field_validator("model_uri", "state_url")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty; leave it unset for the default")
        return value

    @field_validator("state_url")
    @classmethod
    def _sqlite_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(SQLITE_PREFIX):
            raise ValueError(f"must start with {SQLITE_PREFIX!r} (only SQLite is supported so far); got {value!r}")
        return value

    @property
    def state_path(self) -> Path:
        """Path of the SQLite state DB (``sqlite:////abs/path`` is absolute, ``sqlite:///rel`` relative)."""
        if self.state_url is None:
            return self.state_dir / "state.db"
        return Path(self.state_url.removeprefix(SQLITE_PREFIX))
