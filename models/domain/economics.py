"""What a policy maximises: the value of each outcome minus the cost of each message."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .catalog import REVENUE, REVENUE_UNIT, Catalog

BUDGET_PERIODS = ("per_month",)


@dataclass(frozen=True, eq=False)
class Economics:
    """The objective of a policy on a catalog: ``value · outcome rates − cost`` per arm.

    value : float64 (n_outcomes,), the worth of one occurrence of each outcome (negative for harm).
    cost : float64 (n_regions, n_arms), the price of one message on each arm in each region.
    """

    value: np.ndarray
    cost: np.ndarray

    def describe(self, catalog: Catalog) -> str:
        """Which outcomes this objective rewards and by how much, e.g. ``click 1, unsubscribe -2, minus cost``."""
        worth = [f"{o} {v / REVENUE_UNIT:g} per USD" if o == REVENUE else f"{o} {v:g}"
                 for o, v in zip(catalog.outcomes, self.value.tolist(), strict=True) if v]
        return f"{', '.join(worth) or 'nothing'}, minus cost per message"

    @classmethod
    def logged_reward(cls, catalog: Catalog) -> Economics:
        """The reward of a log: the catalog's first outcome worth 1, the others 0, messages free.

        What a policy evaluated off-line on logs maximises, since a log's ``reward`` counts one outcome.
        """
        return cls(np.eye(len(catalog.outcomes))[0], np.zeros((len(catalog.regions), catalog.n_arms)))


def parse_budgets(spec: str | Mapping[str, Any] | None, catalog: Catalog) -> dict[str, float]:
    """``{"sms": {"per_month": 1000}}`` (or its JSON text) -> ``{"sms": 1000.0}``, checked against ``catalog``.

    Examples
    --------
    >>> parse_budgets('{"sms": {"per_month": 1000}}', Catalog(channels=("email", "sms")))
    {'sms': 1000.0}
    """
    if spec is None:
        return {}
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ValueError(f'budgets must be JSON like {{"sms": {{"per_month": 1000}}}}; got {spec!r} '
                             f'({exc})') from None
    if not isinstance(spec, Mapping):
        raise ValueError(f'budgets must map channels to periods, like {{"sms": {{"per_month": 1000}}}}; got {spec!r}')
    budgets: dict[str, float] = {}
    for channel, periods in spec.items():
        if channel not in catalog.channels:
            raise ValueError(f"budget for unknown channel {channel!r}; known: {', '.join(catalog.channels)}")
        if not isinstance(periods, Mapping) or set(periods) != set(BUDGET_PERIODS):
            raise ValueError(f"budget of {channel!r} must be {{\"per_month\": USD}} (periods known: "
                             f"{', '.join(BUDGET_PERIODS)}); got {periods!r}")
        amount = periods["per_month"]
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount) or amount <= 0:
            raise ValueError(f"budget of {channel!r} per_month must be a number of USD > 0; got {amount!r}")
        budgets[channel] = float(amount)
    return budgets
