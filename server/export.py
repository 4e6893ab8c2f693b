"""The decision log joined with its outcomes, as logged bandit feedback for off-policy evaluation.

Only closed decisions are exported (their outcomes are final), and only those not known to be
undelivered, the same rows the served model learned from. The reward of a row is
``Σ value[o] · outcome[o] − cost`` with the values of the model version that made the decision.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sendwise.models import Catalog
from sendwise.models.logged import LoggedFeedback

from .store import Store

CONTEXT_COLUMNS = ("region", "industry", "campaign_type")


def decision_log(store: Store) -> LoggedFeedback:
    """Closed, not-undelivered decisions with outcome columns and rewards, in the latest model's catalog."""
    decisions, models = store.closed_decisions()
    rows = [d for d in decisions if d.delivery != "failed"]
    if not rows:
        raise ValueError("the state DB holds no closed decision yet; nothing to export")
    catalog = Catalog.from_dict(models[rows[-1].model_version].catalog)
    happened = {o: np.array([o in d.successes.split(",") for d in rows], dtype=np.float64) for o in catalog.outcomes}
    value = np.array([[models[d.model_version].value.get(o, 0.0) for o in catalog.outcomes] for d in rows])
    cost = np.array([d.cost for d in rows])
    reward = (value * np.column_stack(list(happened.values()))).sum(axis=1) - cost
    try:
        action = np.array([catalog.arm(d.channel, d.local_hour or 0) for d in rows], dtype=np.int64)
    except ValueError as exc:
        raise ValueError(f"a decision does not fit the catalog of model {rows[-1].model_version!r}: {exc}") from None
    return LoggedFeedback(
        action=action,
        propensity=np.array([d.propensity for d in rows]),
        reward=reward,
        decision_id=np.array([d.decision_id for d in rows], dtype=object),
        timestamp=pd.to_datetime([d.created_at for d in rows], unit="s").to_numpy(),
        context=pd.DataFrame({c: [getattr(d, c) for d in rows] for c in CONTEXT_COLUMNS}),
        outcomes=pd.DataFrame(happened),
        cost=cost,
        catalog=catalog,
    )
