"""The policy as an MLflow pyfunc model: its contract, on a model saved to a local folder."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from sendwise.models import Catalog, StaticPolicy, ThompsonPolicy, load_policy, next_send_at
from sendwise.models.mlops.mlflow_model import (
    OUTPUT_COLUMNS,
    SIGNATURE,
    customer_batch,
    decide_customers,
    save_policy_model,
)

CATALOG = Catalog(regions=("NA", "EU"), industries=("ecommerce", "gaming"))
NOW = "2025-03-01T12:00:00+00:00"


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Thompson policy with uneven posteriors and cheap channels, so it sends on many arms."""
    rng = np.random.default_rng(0)
    policy = ThompsonPolicy(CATALOG, np.array([1.0, -2.0]), rng.uniform(0, 0.01, (2, CATALOG.n_arms)))
    policy.alpha_ += rng.integers(0, 30, policy.alpha_.shape)
    policy.beta_ += rng.integers(0, 300, policy.beta_.shape)
    return policy.save(tmp_path_factory.mktemp("policy") / "ts.npz")


@pytest.fixture(scope="module")
def model_dir(policy_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_policy_model(policy_file, tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="module")
def model(model_dir: Path) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(str(model_dir))


def customers(n_rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    channel_sets = ["email,push", ["sms", "whatsapp"], None, "in_app", ""]
    return pd.DataFrame({
        "region": rng.choice(CATALOG.regions, n_rows),
        "industry": rng.choice(CATALOG.industries, n_rows),
        "campaign_type": "broadcast",
        "timezone": rng.choice(["America/New_York", "Europe/Paris", "Asia/Kolkata", ""], n_rows),
        "channels": [channel_sets[i % len(channel_sets)] for i in range(n_rows)],
    }, index=pd.RangeIndex(100, 100 + n_rows))


def test_predict_gives_one_decision_per_customer_in_the_documented_columns(model: mlflow.pyfunc.PyFuncModel) -> None:
    df = customers()
    out = model.predict(df, params={"seed": 3, "now": NOW})
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert out.index.equals(df.index)
    assert [CATALOG.channel_of(a) for a in out["arm"]] == out["channel"].tolist()
    sends = out["channel"] != "none"
    assert (out.loc[sends, "local_hour"] == CATALOG.arm_hours()[out.loc[sends, "arm"]]).all()
    assert out.loc[~sends, "local_hour"].isna().all() and out.loc[~sends, "send_at"].isna().all()
    assert ((out["propensity"] > 0) & (out["propensity"] <= 1)).all(), out["propensity"].describe()
    assert sends.sum() >= 10, f"the fixture policy should send to most customers; sent to {sends.sum()}"


def test_same_seed_gives_the_decisions_of_the_in_memory_policy(model: mlflow.pyfunc.PyFuncModel,
                                                               policy_file: Path) -> None:
    df = customers()
    first = model.predict(df, params={"seed": 7, "now": NOW})
    again = model.predict(df, params={"seed": 7, "now": NOW})
    in_memory = load_policy(policy_file, random_state=7).decide(customer_batch(CATALOG, df)).arm
    np.testing.assert_array_equal(first["arm"].to_numpy(), in_memory)
    pd.testing.assert_frame_equal(first, again)


def test_channels_limit_the_arms_whether_a_string_or_a_list(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    base = {"region": "EU", "industry": "gaming", "campaign_type": "broadcast"}
    as_text = pd.DataFrame([{**base, "channels": "sms, email"}] * 200)
    as_list = pd.DataFrame([{**base, "channels": ["sms", "email"]}] * 200)
    out_text = decide_customers(policy, as_text, seed=1)
    out_list = decide_customers(policy, as_list, seed=1)
    assert set(out_text["channel"]) <= {"sms", "email", "none"}
    pd.testing.assert_frame_equal(out_text.drop(columns="send_at"), out_list.drop(columns="send_at"))
    unreachable = decide_customers(policy, pd.DataFrame([{**base, "channels": ""}, {**base, "channels": []}]))
    assert unreachable["channel"].tolist() == ["none", "none"]


@pytest.mark.parametrize("timezone, hour, now, expected", [
    pytest.param("UTC", 13, "2025-03-01T12:00:00+00:00", "2025-03-01T13:00:00+00:00", id="later-today"),
    pytest.param("UTC", 12, "2025-03-01T12:00:00+00:00", "2025-03-02T12:00:00+00:00", id="now-is-not-after-now"),
    pytest.param("Europe/Paris", 9, "2025-01-01T08:30:00+00:00", "2025-01-02T08:00:00+00:00", id="paris-winter"),
    pytest.param("America/New_York", 9, "2025-03-08T15:00:00+00:00", "2025-03-09T13:00:00+00:00", id="dst-starts"),
    pytest.param("Asia/Kolkata", 0, "2025-06-30T20:00:00+00:00", "2025-07-01T18:30:00+00:00", id="half-hour-offset"),
    pytest.param("America/New_York", 2, "2025-03-09T05:00:00+00:00", "2025-03-09T07:00:00+00:00",
                 id="spring-forward-gap"),
    pytest.param("America/New_York", 1, "2025-11-02T04:00:00+00:00", "2025-11-02T05:00:00+00:00",
                 id="fall-back-first-occurrence"),
    pytest.param("America/New_York", 1, "2025-11-02T05:30:00+00:00", "2025-11-03T06:00:00+00:00",
                 id="fall-back-repeat-is-skipped"),
    pytest.param("Pacific/Chatham", 3, "2025-09-27T12:00:00+00:00", "2025-09-27T14:00:00+00:00",
                 id="gap-of-a-quarter-hour-zone"),
])
def test_send_at_is_the_next_local_hour(timezone: str, hour: int, now: str, expected: str) -> None:
    """``send_at`` of the hour a policy chose, as a UTC ISO string, across daylight-saving gaps and repeats."""
    playbook = {industry: ["email", hour] for industry in CATALOG.industries}
    policy = StaticPolicy(CATALOG, np.array([1.0, -2.0]), np.zeros((2, CATALOG.n_arms)), playbook=playbook)
    row = {"region": "NA", "industry": "gaming", "campaign_type": "broadcast", "timezone": timezone}
    out = decide_customers(policy, pd.DataFrame([row]), now=datetime.fromisoformat(now))
    assert (out.loc[0, "local_hour"], out.loc[0, "send_at"]) == (hour, expected)


def test_send_at_of_every_row_is_its_next_local_hour(model: mlflow.pyfunc.PyFuncModel) -> None:
    df = customers()
    out = model.predict(df, params={"seed": 3, "now": NOW})
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    for zone, hour, send_at in zip(df["timezone"], out["local_hour"], out["send_at"], strict=True):
        if not pd.isna(hour):
            assert send_at == next_send_at(int(hour), zone or "UTC", now).isoformat()
            assert now < datetime.fromisoformat(send_at) <= now.replace(day=2)


BAD_CUSTOMERS = [
    pytest.param({"region": "MARS"}, "unknown region 'MARS'; known: NA, EU", id="region"),
    pytest.param({"channels": "email,fax"}, "unknown channel 'fax'; known: email, push", id="channel"),
    pytest.param({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'; use an IANA name", id="timezone"),
    pytest.param({"industry": None}, "column 'industry' has a missing value in row 0", id="missing-value"),
]


@pytest.mark.parametrize("change, message", BAD_CUSTOMERS)
def test_bad_customers_are_rejected_with_the_offending_value(policy_file: Path, change: dict, message: str) -> None:
    row = {"region": "NA", "industry": "ecommerce", "campaign_type": "broadcast", "timezone": "UTC", **change}
    with pytest.raises(ValueError, match=re.escape(message)):
        decide_customers(load_policy(policy_file), pd.DataFrame([row]))


def test_missing_columns_are_named(policy_file: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("customers lack columns ['campaign_type']")):
        decide_customers(load_policy(policy_file), pd.DataFrame([{"region": "NA", "industry": "gaming"}]))


def test_model_carries_signature_and_example_and_no_pickle(model: mlflow.pyfunc.PyFuncModel, model_dir: Path) -> None:
    assert model.metadata.signature == SIGNATURE
    example = model.metadata.load_input_example(str(model_dir))
    assert list(model.predict(example, params={"seed": 0}).columns) == list(OUTPUT_COLUMNS)
    assert not [p.name for p in model_dir.rglob("*.pkl")], "the model must not pickle the policy"
    assert (model_dir / "artifacts" / "policy.npz").is_file()
