"""The decision log joined with its outcomes, as logged bandit feedback for off-policy evaluation.

Only closed decisions are exported (their outcomes are final), and only those not known to be
undelivered, the same rows the served model learned from. The reward of a row is
``Σ value[o] · outcome[o] − cost`` with the values of the model version that made the decision.

Each row also carries what the policy chose from: the allowed arms (column ``allowed_arms``, in the
latest model's arm ids), the number of arms with positive probability (``support_size``) and the
exploration floor (``epsilon``). Decisions logged before these were recorded leave them empty,
which reads back as "every arm allowed", what evaluation assumed for every row before. And each row
names its customer (the pseudonym) and group (``holdout`` when the served holdout kept the message
back, else ``model``), what ``sendwise lift`` reads.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from sendwise.models import N_HOURS, Catalog
from sendwise.models.domain.catalog import MaskCodeError
from sendwise.models.experiments import BASELINE, HOLDOUT, MODEL
from sendwise.models.ope.logged import LoggedFeedback

from .attribution import learned_outcomes
from .store import DecisionRecord, ModelInfo, Store

CONTEXT_COLUMNS = ("region", "industry", "campaign_type")


def decision_log(store: Store) -> LoggedFeedback:
    """Closed, not-undelivered decisions with outcome columns and rewards, in the latest model's catalog."""
    decisions, models = store.closed_decisions()
    rows = [d for d in decisions if d.delivery != "failed"]
    if not rows:
        raise ValueError("the state DB holds no closed decision yet; nothing to export")
    catalog = Catalog.from_dict(models[rows[-1].model_version].catalog)
    learned = [learned_outcomes(d.successes) for d in rows]
    happened = {o: np.array([got.get(o, 0.0) for got in learned], dtype=np.float64) for o in catalog.outcomes}
    value = np.array([[models[d.model_version].value.get(o, 0.0) for o in catalog.outcomes] for d in rows])
    cost = np.array([d.cost for d in rows])
    reward = (value * np.column_stack(list(happened.values()))).sum(axis=1) - cost
    try:
        action = np.array([catalog.arm(d.channel, d.local_hour or 0) for d in rows], dtype=np.int64)
    except ValueError as exc:
        raise ValueError(f"a decision does not fit the catalog of model {rows[-1].model_version!r}: {exc}") from None
    recorded = np.array([d.support > 0 for d in rows])  # support 0: logged before masks were recorded
    known = bool(recorded.any())
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
        allowed=_allowed(rows, recorded, models, catalog) if known else None,
        support_size=np.where(recorded, [d.support for d in rows], np.nan) if known else None,
        epsilon=np.where(recorded, [d.epsilon for d in rows], np.nan) if known else None,
        experiment=_experiment(rows),
    )


GROUP_OF_MODE = {"holdout": HOLDOUT, "baseline": BASELINE}  # a reason's mode -> its experiment group; else MODEL


def _experiment(rows: list[DecisionRecord]) -> pd.DataFrame:
    """Each decision's customer and experiment group and, where shadow mode logged it, whether the model
    would have chosen the option sent, that choice's propensity and the model's probability of the option
    sent (NaN elsewhere)."""
    reasons = [json.loads(d.reason) for d in rows]
    table = pd.DataFrame({"customer": [d.customer for d in rows],
                          "group": [GROUP_OF_MODE.get(r.get("mode"), MODEL) for r in reasons]})
    shadow = [r.get("model_choice") for r in reasons]
    if any(s is not None for s in shadow):
        table["model_agrees"] = [np.nan if s is None else float(s["agrees"]) for s in shadow]
        table["model_propensity"] = [np.nan if s is None else s["propensity"] for s in shadow]
        table["model_sent_probability"] = [np.nan if s is None else s["sent_probability"] for s in shadow]
    return table


def _allowed(rows: list[DecisionRecord], recorded: np.ndarray, models: dict[str, ModelInfo],
             catalog: Catalog) -> np.ndarray:
    """Allowed arms of each row in ``catalog``'s arm ids, bool (n_rows, n_arms); all arms where not recorded.

    A mask is decoded with the catalog of the model version that logged it and carried over to
    ``catalog`` by channel and hour (arms of channels ``catalog`` lacks are dropped).
    """
    allowed = np.ones((len(rows), catalog.n_arms), dtype=np.bool_)
    versions = np.array([d.model_version for d in rows], dtype=object)
    for version in dict.fromkeys(versions[recorded].tolist()):
        at = np.flatnonzero(recorded & (versions == version))
        own = Catalog.from_dict(models[version].catalog)
        try:
            mask = own.decode_mask([rows[i].allowed for i in at])
        except MaskCodeError as exc:
            raise ValueError(f"decision {rows[at[exc.row]].decision_id!r}: its allowed arms {exc.rule}; "
                             f"got {exc.value!r}") from None
        allowed[at] = mask if own == catalog else _in_catalog(mask, own, catalog)
    return allowed


def _in_catalog(mask: np.ndarray, source: Catalog, target: Catalog) -> np.ndarray:
    """A mask over ``source``'s arms as a mask over ``target``'s, matched by channel and hour."""
    out = np.zeros((mask.shape[0], target.n_arms), dtype=np.bool_)
    for c, channel in enumerate(source.channels):
        if channel in target.channels:
            t = target.channel_index(channel)
            out[:, t * N_HOURS:(t + 1) * N_HOURS] = mask[:, c * N_HOURS:(c + 1) * N_HOURS]
    out[:, target.null_arm] = mask[:, source.null_arm]
    return out
