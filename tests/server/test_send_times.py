"""The server and the MLflow pyfunc report the same ``send_at``: ``models.timing.next_send_at`` of the chosen hour.

The rules themselves (normal hour, nonexistent hour → first instant after the gap, ambiguous hour →
its first occurrence) are tested against an oracle in ``tests/models/test_timing.py``; here the two
ways of serving a policy must agree with them, and so with each other, across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import mlflow
import numpy as np
import pandas as pd
import pytest
import time_machine
from fastapi.testclient import TestClient

from sendwise.models import Catalog, StaticPolicy, next_send_at
from sendwise.models.mlops.mlflow_model import POLICY_ARTIFACT, PolicyModel
from sendwise.server import Settings, create_app
from tests.support.api import customer, decide
from tests.support.app import AUTH, Clock, serve

DST_ZONES = ("America/New_York", "Europe/London", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe",
             "Pacific/Chatham")
QUARTER = timedelta(minutes=15)


@cache
def transitions_2025(zone_name: str) -> tuple[datetime, ...]:
    """UTC instants of 2025 at which ``zone_name`` changes its offset (those of DST_ZONES lie on quarter hours)."""
    zone, start = ZoneInfo(zone_name), datetime(2025, 1, 1, tzinfo=UTC)
    steps = [start + k * QUARTER for k in range(365 * 96)]
    offsets = [t.astimezone(zone).utcoffset() for t in steps]
    return tuple(t for t, before, after in zip(steps[1:], offsets, offsets[1:], strict=False) if before != after)


@pytest.mark.parametrize("zone_name", DST_ZONES)
def test_served_send_instants_under_a_frozen_clock(zone_name: str, make_settings: Callable[..., Settings]) -> None:
    """The app's own clock frozen just before and after each 2025 transition: every decision's ``send_at``
    is ``next_send_at`` of its local hour (its bucket), strictly in the future."""
    zone = ZoneInfo(zone_name)
    assert len(transitions_2025(zone_name)) == 2, transitions_2025(zone_name)
    with TestClient(create_app(make_settings()), headers=AUTH) as client:
        for transition in transitions_2025(zone_name):
            for offset in (timedelta(hours=-3), timedelta(seconds=-1), timedelta(0), timedelta(hours=1)):
                with time_machine.travel(transition + offset, tick=False):
                    now = datetime.now(UTC)
                    asked = [customer(f"{zone_name}-{now.timestamp()}-{i}", timezone=zone_name) for i in range(30)]
                    response = client.post("/v1/decisions", json={"customers": asked})
                assert response.status_code == 200, response.text
                for decision in response.json()["decisions"]:
                    if decision["local_hour"] is None:
                        continue
                    send_at = datetime.fromisoformat(decision["send_at"])
                    assert send_at == next_send_at(decision["local_hour"], zone, now), (zone_name, now, decision)
                    assert send_at > now


# One industry per local hour, each sent by email at its hour: the policy's choice is known in advance.
HOUR_CATALOG = Catalog(channels=("email",), industries=tuple(f"at-{h:02d}" for h in range(24)))
PARITY_ZONES = ("America/New_York", "Pacific/Chatham", "Australia/Lord_Howe", "UTC")
# America/New_York 2025: 02:00 EST → 03:00 EDT on 9 March at 07:00 UTC; 02:00 EDT → 01:00 EST on
# 2 November at 06:00 UTC, so 01:00 occurs at 05:00 and again at 06:00 UTC.
PARITY_CLOCKS = [
    pytest.param("2025-03-09T05:00:00+00:00", id="ny-spring-forward-day-before-the-gap"),
    pytest.param("2025-03-09T06:59:59+00:00", id="ny-a-second-before-the-gap"),
    pytest.param("2025-03-09T07:00:00+00:00", id="ny-at-the-gap"),
    pytest.param("2025-11-02T04:00:00+00:00", id="ny-fall-back-day-before-the-repeat"),
    pytest.param("2025-11-02T05:30:00+00:00", id="ny-first-pass-of-the-repeated-hour"),
    pytest.param("2025-11-02T06:30:00+00:00", id="ny-second-pass-of-the-repeated-hour"),
    pytest.param("2025-09-27T12:00:00+00:00", id="chatham-spring-forward-day"),
    pytest.param("2025-04-05T14:00:00+00:00", id="lord-howe-half-hour-fall-back-day"),
    pytest.param("2025-07-01T12:00:00+00:00", id="no-transition-near"),
]
# (clock, zone, local hour) → the instant both must give, for the hours the transitions move.
EXPECTED = {
    ("2025-03-09T05:00:00+00:00", "America/New_York", 2): "2025-03-09T07:00:00+00:00",  # gap: at 03:00 EDT
    ("2025-03-09T05:00:00+00:00", "America/New_York", 3): "2025-03-09T07:00:00+00:00",
    ("2025-03-09T07:00:00+00:00", "America/New_York", 2): "2025-03-10T06:00:00+00:00",  # sent already: tomorrow
    ("2025-11-02T04:00:00+00:00", "America/New_York", 1): "2025-11-02T05:00:00+00:00",  # fold=0: 01:00 EDT
    ("2025-11-02T05:30:00+00:00", "America/New_York", 1): "2025-11-03T06:00:00+00:00",  # the repeat never counts
    ("2025-11-02T06:30:00+00:00", "America/New_York", 1): "2025-11-03T06:00:00+00:00",
    ("2025-11-02T04:00:00+00:00", "America/New_York", 9): "2025-11-02T14:00:00+00:00",  # normal hour, EST
    ("2025-09-27T12:00:00+00:00", "Pacific/Chatham", 3): "2025-09-27T14:00:00+00:00",  # gap: at 03:45 +13:45
}


@pytest.fixture(scope="module")
def hour_policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    playbook = {industry: ["email", h] for h, industry in enumerate(HOUR_CATALOG.industries)}
    policy = StaticPolicy(HOUR_CATALOG, np.array([1.0, -2.0]), np.zeros((1, HOUR_CATALOG.n_arms)), playbook=playbook)
    return policy.save(tmp_path_factory.mktemp("hours") / "static.npz")


@pytest.fixture(scope="module")
def pyfunc(hour_policy_file: Path) -> PolicyModel:
    """The pyfunc as MLflow runs it: ``load_context`` on the policy artifact, then ``predict`` with params."""
    model = PolicyModel()
    model.load_context(mlflow.pyfunc.PythonModelContext(artifacts={POLICY_ARTIFACT: str(hour_policy_file)},
                                                        model_config=None))
    return model


@pytest.mark.parametrize("clock_text", PARITY_CLOCKS)
def test_the_pyfunc_and_the_server_send_at_the_same_instant(
        clock_text: str, hour_policy_file: Path, pyfunc: PolicyModel, make_settings: Callable[..., Settings]) -> None:
    """Same customers, zone, chosen local hour and clock: one ``send_at`` from both, every hour of every zone."""
    now = datetime.fromisoformat(clock_text)
    asked = [customer(f"{zone}-{h:02d}", timezone=zone, industry=industry, channels=["email"])
             for zone in PARITY_ZONES for h, industry in enumerate(HOUR_CATALOG.industries)]
    with serve(make_settings(model_uri=str(hour_policy_file)), Clock(now)) as client:
        served = decide(client, *asked)
    frame = pd.DataFrame([{k: c[k] for k in ("region", "industry", "campaign_type", "timezone")} | {"channels": "email"}
                          for c in asked])
    predicted = pyfunc.predict(None, frame, params={"now": clock_text, "seed": 0})
    assert len(served) == len(predicted) == len(asked)
    for person, decision, (_, row) in zip(asked, served, predicted.iterrows(), strict=True):
        hour = int(person["industry"].removeprefix("at-"))
        assert decision["customer_id"] == person["customer_id"]
        assert (decision["channel"], decision["local_hour"]) == (row["channel"], row["local_hour"]) == ("email", hour)
        server_at, pyfunc_at = datetime.fromisoformat(decision["send_at"]), datetime.fromisoformat(row["send_at"])
        assert server_at == pyfunc_at, (person["timezone"], hour, clock_text, decision["send_at"], row["send_at"])
        assert pyfunc_at == next_send_at(hour, person["timezone"], now) and pyfunc_at > now
        expected = EXPECTED.get((clock_text, person["timezone"], hour))
        if expected is not None:
            assert row["send_at"] == expected, (person["timezone"], hour, clock_text)
