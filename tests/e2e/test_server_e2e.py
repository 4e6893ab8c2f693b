"""End to end: a real ``sendwise serve`` process on a free loopback port, decide and feedback over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from sendwise.models import Catalog, ThompsonPolicy
from sendwise.server import serve_in_background
from tests.support.api import customer, event

API_KEY = "e2e-key-0123456789abcdef"
READY_TIMEOUT_S = 90.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """Start ``sendwise serve`` on loopback against a fresh state folder; stop it by its pid."""
    catalog = Catalog(regions=("NA", "EU"))
    policy = ThompsonPolicy(catalog, np.array([1.0, -2.0]), np.full((2, catalog.n_arms), 0.001))
    model = policy.save(tmp_path / "policy.npz")
    settings = {"state_dir": tmp_path / "state", "model_uri": model, "world": "none", "api_keys": API_KEY}
    env = {"NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba"))}
    with serve_in_background(settings, env=env, log=tmp_path / "server.log", timeout_s=READY_TIMEOUT_S) as server:
        yield server.url


def test_decide_and_feedback_over_http(server: str) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    asked = customer("e2e-1", timezone="Europe/Berlin", region="EU", channels=["email", "push"])
    with httpx.Client(base_url=server, headers=headers, timeout=60.0) as client:
        assert client.post("/v1/decisions", json={"customers": [asked]}, headers={"Authorization": ""}) \
            .status_code == 401
        response = client.post("/v1/decisions", json={"customers": [asked]})
        assert response.status_code == 200, response.text
        (decision,) = response.json()["decisions"]
        assert decision["channel"] in ("email", "push", "none")
        now = datetime.now().astimezone()
        events = {"events": [event(decision, "delivered", "e2e-ev-1", now - timedelta(seconds=1))]}
        first = client.post("/v1/feedback", json=events)
        again = client.post("/v1/feedback", json=events)
        assert first.status_code == 200 and again.status_code == 200
        assert first.json()["results"][0]["status"] in ("applied", "late")
        assert again.json()["results"][0]["status"] == "duplicate"
        assert 'route="/v1/feedback",status="200"} 2.0' in client.get("/metrics").text
