"""The channel catalog: names users know ↔ the dense ids the engine works with.

Arms are ``(channel, local hour)`` pairs, ``arm = channel_idx * 24 + hour``, plus one no-message arm
with the last id. Cells, the learning unit, are region × industry × campaign type,
``cell = (region_idx * n_industries + industry_idx) * n_campaign_types + campaign_idx``; they sit in
the hierarchy global → region → region×industry → cell.

An arm mask (which arms a request allowed) travels in logs as a *mask code*: the lowercase hex of
``np.packbits(mask)`` (big bit order: arm ``a`` is bit ``7 - a % 8`` of byte ``a // 8``), padded with
zero bits to whole bytes, so every code of a catalog has ``2 * ceil(n_arms / 8)`` digits (44 for the
default 169 arms). See :func:`encode_mask` and :func:`decode_mask`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

N_HOURS = 24
NO_MESSAGE = "none"
DEFAULT_CHANNELS = ("email", "push", "in_app", "app_inbox", "sms", "whatsapp", "web_push")
DEFAULT_OUTCOMES = ("click", "unsubscribe")
OPEN = "open"  # an outcome of worlds that report opens: worth nothing itself, a frequent sign of interest
# The revenue objective's outcome: each message is one trial whose success is the order it led to, in units
# of ``REVENUE_UNIT`` USD (at most one unit: a larger order counts as one), so a Beta posterior learns the
# expected order value per message (the bounded-reward form of Thompson sampling, Agrawal & Goyal 2012).
REVENUE = "revenue"
REVENUE_UNIT = 1000.0  # USD


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

    def context_ids(self, regions: Sequence[str], industries: Sequence[str],
                    campaign_types: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Region ids and cell ids, int64 (n_rows,), of rows given by name; each distinct name looked up once.

        An unknown name raises ``ValueError`` naming the row and the known names.
        """
        ids = []
        for kind, names, known in (("region", regions, self.regions), ("industry", industries, self.industries),
                                   ("campaign type", campaign_types, self.campaign_types)):
            lookup = {name: i for i, name in enumerate(known)}
            column = np.fromiter((lookup.get(n, -1) if isinstance(n, str) else -1 for n in names), np.int64)
            bad = np.flatnonzero(column < 0)
            if bad.size:
                raise ValueError(f"row {bad[0]}: unknown {kind} {list(names)[bad[0]]!r}; known: {', '.join(known)}")
            ids.append(column)
        return ids[0], self.cell_ids(*ids)

    def cell_names(self, cell_idx: np.ndarray) -> dict[str, list[str]]:
        """Region, industry and campaign type of each cell id (the inverse of ``cell_ids``)."""
        cell_idx = np.asarray(cell_idx, dtype=np.int64)
        outside = cell_idx[(cell_idx < 0) | (cell_idx >= self.n_cells)]
        if outside.size:
            raise ValueError(f"cell ids must lie in [0, {self.n_cells}); got {outside[0]}")
        region, industry, campaign = np.unravel_index(
            cell_idx, (len(self.regions), len(self.industries), len(self.campaign_types)))
        return {"region": [self.regions[i] for i in region.tolist()],
                "industry": [self.industries[i] for i in industry.tolist()],
                "campaign_type": [self.campaign_types[i] for i in campaign.tolist()]}

    def cell_ids(self, region_idx: np.ndarray, industry_idx: np.ndarray, campaign_idx: np.ndarray) -> np.ndarray:
        """Vectorised cell ids, int64."""
        n_ind, n_camp = len(self.industries), len(self.campaign_types)
        return (np.asarray(region_idx, np.int64) * n_ind + industry_idx) * n_camp + campaign_idx

    def cell_parts(self, cell_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Region, industry and campaign-type ids of cells, int64 each: the inverse of ``cell_ids``.

        Examples
        --------
        >>> catalog = Catalog(regions=("NA", "EU"), industries=("ecommerce", "gaming"))
        >>> [part.tolist() for part in catalog.cell_parts(catalog.cell_ids([1], [0], [0]))]
        [[1], [0], [0]]
        """
        region_industry, campaign_idx = np.divmod(np.asarray(cell_idx, np.int64), len(self.campaign_types))
        region_idx, industry_idx = np.divmod(region_industry, len(self.industries))
        return region_idx, industry_idx, campaign_idx

    def level_groups(self) -> list[np.ndarray]:
        """Each cell's group at the region and region×industry levels (for ``engine.pool_posteriors``)."""
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

    def encode_mask(self, mask: np.ndarray) -> list[str] | str:
        """Mask code(s) of a bool mask over this catalog's arms; see :func:`encode_mask`."""
        return encode_mask(mask, self.n_arms)

    def decode_mask(self, codes: str | Sequence[str] | np.ndarray) -> np.ndarray:
        """Bool mask (n_rows, n_arms) of mask code(s) of this catalog; see :func:`decode_mask`."""
        return decode_mask(codes, self.n_arms)

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


class MaskCodeError(ValueError):
    """A mask code broke a rule: ``row`` is its position among the codes, ``rule`` the rule, ``value`` the code."""

    def __init__(self, row: int, rule: str, value: Any) -> None:
        self.row, self.rule, self.value = row, rule, value
        super().__init__(f"`codes[{row}]` {rule}; got {value!r}")


def mask_code_length(n_arms: int) -> int:
    """Number of hex digits of every mask code over ``n_arms`` arms: two per byte of ``np.packbits``."""
    return 2 * -(-int(n_arms) // 8)


def encode_mask(mask: np.ndarray, n_arms: int) -> list[str] | str:
    """Mask codes of a bool arm mask: the lowercase hex of ``np.packbits`` of each row.

    Parameters
    ----------
    mask : ndarray of shape (n_rows, n_arms) or (n_arms,), bool
        Allowed arms of each request (or of one request).
    n_arms : int
        Size of the arm set; fixes the length of every code (``mask_code_length(n_arms)`` digits).

    Returns
    -------
    list of str, one code per row, for a 2-d ``mask``; one str for a 1-d ``mask``.

    Examples
    --------
    >>> encode_mask(np.array([True, False, False, False, False, False, False, False, True]), 9)
    '8080'
    >>> encode_mask(np.zeros((2, 3), dtype=bool), 3)
    ['00', '00']
    """
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"`mask` must be a bool array; got dtype {arr.dtype}")
    if arr.ndim not in (1, 2) or arr.shape[-1] != n_arms:
        raise ValueError(f"`mask` must have shape (n_rows, {n_arms}) or ({n_arms},); got {arr.shape}")
    rows = np.atleast_2d(arr)
    digits = np.packbits(rows, axis=1).tobytes().hex()
    length = mask_code_length(n_arms)
    codes = [digits[i:i + length] for i in range(0, len(digits), length)]
    return codes[0] if arr.ndim == 1 else codes


_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")


def decode_mask(codes: str | Sequence[str] | np.ndarray, n_arms: int) -> np.ndarray:
    """Bool arm masks of mask codes written by :func:`encode_mask` (upper-case digits are accepted too).

    Parameters
    ----------
    codes : str or sequence of str, of shape (n_rows,)
        One code (read as one row) or one code per row.
    n_arms : int
        Size of the arm set the codes were written for.

    Returns
    -------
    ndarray of shape (n_rows, n_arms), bool

    Raises
    ------
    MaskCodeError
        (a ``ValueError``) for the first code that is not a string, has the wrong number of digits,
        holds a character that is not a hex digit, or sets a padding bit beyond ``n_arms``.

    Examples
    --------
    >>> decode_mask("8080", 9).nonzero()[1].tolist()
    [0, 8]
    >>> decode_mask(["00", "e0"], 3).tolist()
    [[False, False, False], [True, True, True]]
    """
    values = np.asarray([codes] if isinstance(codes, str) else list(codes), dtype=object).reshape(-1)
    length = mask_code_length(n_arms)
    n_bytes = length // 2
    is_str = np.array([isinstance(c, str) for c in values], dtype=np.bool_)
    _raise_first(values, is_str, "must be a string of hex digits")
    sizes = np.array([len(c) for c in values], dtype=np.int64)
    _raise_first(values, sizes == length, f"must have {length} hex digits (a mask of {n_arms} arms)")
    joined = "".join(values.tolist())
    if not _HEX_DIGITS.fullmatch(joined):
        hex_ok = np.array([_HEX_DIGITS.fullmatch(c) is not None for c in values], dtype=np.bool_)
        _raise_first(values, hex_ok, "must contain only the hex digits 0-9 and a-f")
    packed = np.frombuffer(bytes.fromhex(joined), dtype=np.uint8).reshape(values.size, n_bytes)
    bits = np.unpackbits(packed, axis=1).astype(np.bool_)
    n_padding = 8 * n_bytes - n_arms
    _raise_first(values, ~bits[:, n_arms:].any(axis=1),
                 f"must not set the last {n_padding} bits (padding beyond the {n_arms} arms)")
    return np.ascontiguousarray(bits[:, :n_arms])


def _raise_first(values: np.ndarray, ok: np.ndarray, rule: str) -> None:
    bad = np.flatnonzero(~ok)
    if bad.size:
        raise MaskCodeError(int(bad[0]), rule, values[bad[0]])
