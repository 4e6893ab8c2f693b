"""A saved policy as an MLflow pyfunc model: customers in, one decision per customer out.

The model's only state is the policy's ``.npz`` (artifact ``policy``), read in ``load_context``; the
logged model code is a stub that imports :class:`PolicyModel` from the installed package, so nothing
jitted or pickled ever travels with the model.

Input (one row per customer): ``region``, ``industry``, ``campaign_type`` (names from the policy's
catalog), optional ``timezone`` (IANA name, default UTC) and optional ``channels`` (the reachable,
consented channels, a comma-separated string or a list; a missing cell allows every channel, an empty
one none, which leaves only the no-message arm). Output: ``channel`` (``"none"``
for no message), ``local_hour``, ``send_at`` (UTC ISO string: the next occurrence of that local hour
after ``now``, from :func:`sendwise.models.domain.timing.next_send_at`, the server's rules for daylight-saving
gaps and repeats), ``propensity`` (probability the policy picks that arm for that customer) and ``arm``.

Params (per ``predict`` call): ``seed`` restarts the policy's random stream so the same seed gives the
same decisions; ``now`` (UTC ISO string, default the current time) anchors ``send_at``. The propensity
is exact: each arm is sampled from the very probability vector whose entry is reported.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import mlflow
import numpy as np
import pandas as pd
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

from ..domain import Catalog, DecisionBatch, build_batch, next_send_at
from ..policies import Policy, load_policy

POLICY_ARTIFACT = "policy"
OUTPUT_COLUMNS = ("channel", "local_hour", "send_at", "propensity", "arm")

# Logged as the model's code: MLflow runs it at load time, and it only names the installed class.
MODEL_CODE = """from mlflow.models import set_model
from sendwise.models.mlops.mlflow_model import PolicyModel

set_model(PolicyModel())
"""

SIGNATURE = ModelSignature(
    inputs=Schema([
        ColSpec("string", "region"),
        ColSpec("string", "industry"),
        ColSpec("string", "campaign_type"),
        ColSpec("string", "timezone", required=False),
        ColSpec(AnyType(), "channels", required=False),
    ]),
    outputs=Schema([
        ColSpec("string", "channel"),
        ColSpec("long", "local_hour", required=False),
        ColSpec("string", "send_at", required=False),
        ColSpec("double", "propensity"),
        ColSpec("long", "arm"),
    ]),
    params=ParamSchema([
        ParamSpec("seed", "long", None),
        ParamSpec("now", "string", ""),
    ]),
)


class PolicyModel(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper of a saved sendwise policy; state comes from the ``policy`` artifact only.

    ``model_config`` may hold ``seed``: the policy's random stream at load time (``params["seed"]``
    restarts it per call).
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Read the policy's ``.npz``; errors name the file and what is wrong with it."""
        seed = (context.model_config or {}).get("seed")
        self.policy = load_policy(context.artifacts[POLICY_ARTIFACT], random_state=seed)

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """One decision per input row, columns ``OUTPUT_COLUMNS``, same index as the input."""
        params = params or {}
        now = datetime.fromisoformat(params["now"]) if params.get("now") else None
        return decide_customers(self.policy, model_input, seed=params.get("seed"), now=now)


def customer_batch(catalog: Catalog, customers: pd.DataFrame) -> DecisionBatch:
    """The ``DecisionBatch`` for a customers frame (see the module docstring for its columns)."""
    missing = [c for c in ("region", "industry", "campaign_type") if c not in customers.columns]
    if missing:
        raise ValueError(f"customers lack columns {missing}; got {list(customers.columns)}")
    for column in ("region", "industry", "campaign_type"):
        empty = customers[column].isna().to_numpy()
        if empty.any():
            raise ValueError(f"column {column!r} has a missing value in row {int(np.argmax(empty))}")
    channels = _channel_mask(catalog, customers["channels"]) if "channels" in customers.columns else None
    return build_batch(catalog, customers["region"].tolist(), customers["industry"].tolist(),
                       customers["campaign_type"].tolist(), channel_allowed=channels)


def decide_customers(policy: Policy, customers: pd.DataFrame, *, seed: int | None = None,
                     now: datetime | None = None) -> pd.DataFrame:
    """Decide for every customer and say when to send; ``seed`` restarts the policy's random stream.

    The arms are ``policy.decide`` on :func:`customer_batch`, so a policy loaded with the same seed
    decides the same in memory, and each propensity is the exact probability its arm was drawn with.
    A naive ``now`` is taken as UTC.
    """
    if seed is not None:
        policy.reseed(seed)
    catalog = policy.catalog
    batch = customer_batch(catalog, customers)
    choices = policy.decide(batch)
    arms, propensity = choices.arm, choices.propensity
    hours = catalog.arm_hours()[arms]
    local_hour = pd.array(hours, dtype="Int64")
    local_hour[hours < 0] = pd.NA
    now = datetime.now(UTC) if now is None else now if now.tzinfo else now.replace(tzinfo=UTC)
    zones = customers["timezone"] if "timezone" in customers.columns else [None] * batch.n_rows
    send_times: dict[tuple[str, int], str] = {}
    send_at = []
    for zone, hour in zip(zones, hours.tolist(), strict=True):
        key = ("UTC" if _missing(zone) or not zone else zone, hour)
        if hour >= 0 and key not in send_times:
            send_times[key] = next_send_at(hour, _zone(key[0]), now).isoformat()
        send_at.append(send_times.get(key))
    return pd.DataFrame({
        "channel": [catalog.channel_of(a) for a in arms.tolist()],
        "local_hour": local_hour,
        "send_at": send_at,
        "propensity": propensity,
        "arm": arms,
    }, index=customers.index)


@cache
def _zone(timezone: str) -> ZoneInfo:
    """The zone of an IANA name; ValueError naming it when there is no such zone."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {timezone!r}; use an IANA name such as 'Europe/Paris'") from None


def input_example(catalog: Catalog) -> pd.DataFrame:
    """Two customers of the catalog's first cell: one reachable on every channel, one on the first only."""
    first = {"region": catalog.regions[0], "industry": catalog.industries[0],
             "campaign_type": catalog.campaign_types[0]}
    return pd.DataFrame([
        {**first, "timezone": "UTC", "channels": ",".join(catalog.channels)},
        {**first, "timezone": "Europe/Paris", "channels": catalog.channels[0]},
    ])


def servable(policy_file: str | Path) -> bool:
    """Whether a saved policy decides from customers' context alone (the oracles need the simulator's truth)."""
    return not load_policy(policy_file).needs_truth


def save_policy_model(policy_file: str | Path, path: str | Path, *, seed: int | None = None,
                      mlflow_model: mlflow.models.Model | None = None) -> Path:
    """Write the pyfunc model of a saved policy to the local folder ``path`` (which must not exist)."""
    policy = load_policy(policy_file)
    with tempfile.TemporaryDirectory() as tmp, _quiet_model_saving():
        code = Path(tmp) / "sendwise_policy_model.py"
        code.write_text(MODEL_CODE)
        state = Path(tmp) / f"{POLICY_ARTIFACT}.npz"  # the same artifact name in every model
        shutil.copyfile(policy_file, state)
        mlflow.pyfunc.save_model(
            path=os.fspath(path), python_model=code, artifacts={POLICY_ARTIFACT: os.fspath(state)},
            signature=SIGNATURE, input_example=input_example(policy.catalog), mlflow_model=mlflow_model,
            model_config={"seed": seed} if seed is not None else None,
            pip_requirements=[f"sendwise=={version('sendwise')}"],
        )
    return Path(path)


@contextmanager
def _quiet_model_saving() -> Iterator[None]:
    """Hide the INFO line and the progress bar MLflow prints per saved model (one per simulated run)."""
    logger, bar = logging.getLogger("mlflow.pyfunc"), MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    level, shown = logger.level, os.environ.get(bar)
    logger.setLevel(logging.WARNING)
    os.environ[bar] = "false"
    try:
        yield
    finally:
        logger.setLevel(level)
        if shown is None:
            del os.environ[bar]
        else:
            os.environ[bar] = shown


def _channel_mask(catalog: Catalog, channels: pd.Series) -> np.ndarray:
    """Allowed channels per row, bool (n_rows, n_channels): all for a missing cell, none for an empty one."""
    keys = [None if _missing(c) else c if isinstance(c, str) else ",".join(c) for c in channels]
    codes, distinct = pd.factorize(pd.Series(keys, dtype=object))
    allowed = np.zeros((len(distinct) + 1, len(catalog.channels)), dtype=np.bool_)
    allowed[-1] = True  # code -1: not given
    for i, key in enumerate(distinct):
        allowed[i, [catalog.channel_index(c.strip()) for c in key.split(",") if c.strip()]] = True
    return allowed[codes]


def _missing(value: Any) -> bool:
    """Whether a cell was left empty (None or NaN); a list or an empty string is a given value."""
    return value is None or (np.isscalar(value) and bool(pd.isna(value)))
