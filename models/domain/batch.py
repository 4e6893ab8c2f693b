"""Typed containers that carry a batch of decision requests and a batch of outcomes between layers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .catalog import Catalog


@dataclass(frozen=True)
class DecisionBatch:
    """What a policy needs to decide for ``n_rows`` customers; arrays share their first dimension.

    cell_idx : int64 (n_rows,), context cell of each row (see ``Catalog.cell_ids``).
    cost_row_idx : int64 (n_rows,), row of the policy's cost table (the region index).
    mask : bool (n_rows, n_arms), allowed arms (reachability, consent, quiet hours, caps).
    customer_idx : int64 (n_rows,) or None, index into per-customer state of personalised policies.
    true_rates : float64 (n_rows, n_outcomes, n_arms) or None, each customer's own true outcome rates
        right now; only the simulator sets it and only the customer oracle reads it.
    segment_rates : float64 (n_rows, n_outcomes, n_arms) or None, the true expected rates of the row's
        segment (cell); only the simulator sets it and only the segment oracle reads it.
    recent_sends : int64 (n_rows, n_channels) or None, messages the customer got on each channel in the
        trailing week, known at decision time; the ``Learner`` sets it from the sends it heard of.
    """

    cell_idx: np.ndarray
    cost_row_idx: np.ndarray
    mask: np.ndarray
    customer_idx: np.ndarray | None = None
    true_rates: np.ndarray | None = None
    segment_rates: np.ndarray | None = None
    recent_sends: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_same_rows(self, ("mask", "cell_idx", "cost_row_idx", "customer_idx", "true_rates", "segment_rates",
                               "recent_sends"))

    @property
    def n_rows(self) -> int:
        return int(self.mask.shape[0])


@dataclass(frozen=True)
class Outcomes:
    """Resolved outcomes to learn from, one row per (decision, outcome) pair.

    A positive outcome arrives as ``successes=1, failures=0``; a decision whose attribution window
    closed without it as ``successes=0, failures=1``. Weights may be fractional. ``recent_sends``
    (int64 (n_rows, n_channels) or None) is what ``DecisionBatch.recent_sends`` was when the message
    went out, -1 in rows whose message the ``Learner`` did not hear of.
    """

    cell_idx: np.ndarray
    arm: np.ndarray
    outcome_idx: np.ndarray
    successes: np.ndarray
    failures: np.ndarray
    customer_idx: np.ndarray | None = None
    recent_sends: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_same_rows(self, ("arm", "cell_idx", "outcome_idx", "successes", "failures", "customer_idx",
                               "recent_sends"))

    @property
    def n_rows(self) -> int:
        return int(self.arm.shape[0])


def check_same_rows(record: object, names: tuple[str, ...]) -> None:
    """Every array field in ``names`` (None allowed) has as many rows as the first one."""
    n_rows = getattr(record, names[0]).shape[0]
    for name in names[1:]:
        arr = getattr(record, name)
        if arr is not None and arr.shape[0] != n_rows:
            raise ValueError(f"`{name}` must have {n_rows} rows like `{names[0]}`; got {arr.shape[0]}")


def build_batch(catalog: Catalog, regions: Sequence[str], industries: Sequence[str], campaign_types: Sequence[str],
                *, mask: np.ndarray | None = None, channel_allowed: np.ndarray | None = None,
                hour_allowed: np.ndarray | None = None, customer_idx: np.ndarray | None = None) -> DecisionBatch:
    """The one way from customer context by name to a ``DecisionBatch`` (HTTP route, pyfunc, log reader).

    The cell comes from region × industry × campaign type, the cost row from the region; the mask is
    ``mask`` when given (e.g. a log's allowed arms), else ``Catalog.arm_mask(channel_allowed,
    hour_allowed)`` with every channel allowed when ``channel_allowed`` is None. Unknown names raise
    ``ValueError`` naming the row and the known names.
    """
    region_idx, cell_idx = catalog.context_ids(regions, industries, campaign_types)
    if mask is None:
        if channel_allowed is None:
            channel_allowed = np.ones((region_idx.size, len(catalog.channels)), dtype=np.bool_)
        mask = catalog.arm_mask(channel_allowed, hour_allowed)
    return DecisionBatch(cell_idx=cell_idx, cost_row_idx=region_idx, mask=mask, customer_idx=customer_idx)
