"""The channel catalog: names users know ↔ the dense ids the engine works with.

Arms are ``(channel, local hour)`` pairs, ``arm = channel_idx * 24 + hour``, plus one no-message arm
with the last id. Cells, the learning unit, are region × industry × campaign type,
``cell = (region_idx * n_industries + industry_idx) * n_campaign_types + campaign_idx``; they sit in
the hierarchy global → region → region×industry → cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_HOURS = 24
NO_MESSAGE = "none"
DEFAULT_CHANNELS = ("email", "push", "in_app", "app_inbox", "sms", "whatsapp", "web_push")
DEFAULT_OUTCOMES = ("click", "unsubscribe")


@dataclass(frozen=True)
class Catalog:
    """Names of channels, regions, industries, campaign types and outcomes, in id order."""

    channels: tuple[str, ...] = DEFAULT_CHANNELS
    regions: tuple[str, ...] = ("NA",)
    industries: tuple[str, ...] = ("ecommerce",)
    campaign_types: tuple[str, ...] = ("broadcast",)
    outcomes: tuple[str, ...] = DEFAULT_OUTCOMES

    def __post_init__(self) -> None:
        for field in ("channels", "regions", "industries", "campaign_types", "outcomes"):
            names = tuple(getattr(self, field))
            object.__setattr__(self, field, names)
            if not names:
                raise ValueError(f"`{field}` must name at least one entry")
            if len(set(names)) != len(names):
                raise ValueError(f"`{field}` must not repeat a name; got {list(names)}")
        if NO_MESSAGE in self.channels:
            raise ValueError(f"`channels` must not contain {NO_MESSAGE!r}: the no-message arm is built in")

    @property
    def n_arms(self) -> int:
        """Channels × 24 hours, plus the no-message arm."""
        return len(self.channels) * N_HOURS + 1

    @property
    def null_arm(self) -> int:
        """Id of the no-message arm (the last one)."""
        return self.n_arms - 1

    @property
    def n_cells(self) -> int:
        return len(self.regions) * len(self.industries) * len(self.campaign_types)

    def channel_index(self, channel: str) -> int:
        return _index("channel", channel, self.channels)

    def region_index(self, region: str) -> int:
        return _index("region", region, self.regions)

    def industry_index(self, industry: str) -> int:
        return _index("industry", industry, self.industries)

    def campaign_index(self, campaign_type: str) -> int:
        return _index("campaign type", campaign_type, self.campaign_types)

    def outcome_index(self, outcome: str) -> int:
        return _index("outcome", outcome, self.outcomes)

    def arm(self, channel: str, hour: int) -> int:
        """Arm id of ``channel`` at local ``hour``; ``channel == "none"`` gives the no-message arm."""
        if channel == NO_MESSAGE:
            return self.null_arm
        if not 0 <= int(hour) < N_HOURS:
            raise ValueError(f"`hour` must lie in [0, 23]; got {hour!r}")
        return self.channel_index(channel) * N_HOURS + int(hour)

    def channel_of(self, arm: int) -> str:
        """Channel name of an arm id (``"none"`` for the no-message arm)."""
        self._check_arm(arm)
        return NO_MESSAGE if arm == self.null_arm else self.channels[arm // N_HOURS]

    def hour_of(self, arm: int) -> int | None:
        """Local hour of an arm id (None for the no-message arm)."""
        self._check_arm(arm)
        return None if arm == self.null_arm else int(arm % N_HOURS)

    def arm_channels(self) -> np.ndarray:
        """Channel index of every arm, int64 (n_arms,); -1 for the no-message arm."""
        out = np.repeat(np.arange(len(self.channels), dtype=np.int64), N_HOURS)
        return np.append(out, -1)

    def arm_hours(self) -> np.ndarray:
        """Local hour of every arm, int64 (n_arms,); -1 for the no-message arm."""
        return np.append(np.tile(np.arange(N_HOURS, dtype=np.int64), len(self.channels)), -1)

    def cell(self, region: str, industry: str, campaign_type: str) -> int:
        """Cell id of a (region, industry, campaign type) context."""
        return self.cell_ids(
            np.array([self.region_index(region)]),
            np.array([self.industry_index(industry)]),
            np.array([self.campaign_index(campaign_type)]),
        )[0].item()

    def cell_ids(self, region_idx: np.ndarray, industry_idx: np.ndarray, campaign_idx: np.ndarray) -> np.ndarray:
        """Vectorised cell ids, int64."""
        n_ind, n_camp = len(self.industries), len(self.campaign_types)
        return (np.asarray(region_idx, np.int64) * n_ind + industry_idx) * n_camp + campaign_idx

    def level_groups(self) -> list[np.ndarray]:
        """Each cell's group at the region and region×industry levels (for ``engine.pool_priors``)."""
        cells = np.arange(self.n_cells, dtype=np.int64)
        region_industry = cells // len(self.campaign_types)
        return [region_industry // len(self.industries), region_industry]

    def arm_mask(self, channel_allowed: np.ndarray, hour_allowed: np.ndarray | None = None,
                 allow_no_message: bool = True) -> np.ndarray:
        """Expand per-channel (and optionally per-channel-hour) permissions to a bool mask over arms.

        ``channel_allowed``: bool (n_rows, n_channels); ``hour_allowed``: bool (n_rows, n_channels, 24)
        or (n_channels, 24), e.g. quiet hours. Returns bool (n_rows, n_arms).
        """
        channel_allowed = np.asarray(channel_allowed, dtype=np.bool_)
        n_rows, n_channels = channel_allowed.shape[0], len(self.channels)
        if channel_allowed.shape != (n_rows, n_channels):
            raise ValueError(f"`channel_allowed` must have shape (n_rows, {n_channels}); got {channel_allowed.shape}")
        per_hour = np.repeat(channel_allowed[:, :, None], N_HOURS, axis=2)
        if hour_allowed is not None:
            per_hour &= np.asarray(hour_allowed, dtype=np.bool_)
        mask = np.empty((n_rows, self.n_arms), dtype=np.bool_)
        mask[:, :-1] = per_hour.reshape(n_rows, -1)
        mask[:, -1] = allow_no_message
        return mask

    def to_dict(self) -> dict[str, list[str]]:
        return {f: list(getattr(self, f)) for f in ("channels", "regions", "industries", "campaign_types", "outcomes")}

    @classmethod
    def from_dict(cls, data: dict[str, Sequence[str]]) -> Catalog:
        return cls(**{k: tuple(v) for k, v in data.items()})

    def _check_arm(self, arm: int) -> None:
        if not 0 <= int(arm) < self.n_arms:
            raise ValueError(f"arm id must lie in [0, {self.n_arms}); got {arm!r}")


def _index(kind: str, name: str, known: tuple[str, ...]) -> int:
    try:
        return known.index(name)
    except ValueError:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}") from None
