"""End to end: a real ``sendwise serve`` process on a free loopback port, decide and feedback over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from sendwise.models import Catalog, ThompsonPolicy

API_KEY = "e2e-key-0123456789abcdef"
READY_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """Start ``sendwise serve`` on loopback against a fresh state folder; stop it by its pid."""
    catalog = Catalog(regions=("NA", "EU"))
    policy = ThompsonPolicy(catalog, np.array([1.0, -2.0]), np.full((2, catalog.n_arms), 0.001))
    model = policy.save(tmp_path / "policy.npz")
    port = _free_port()
    env = {**os.environ, "SENDWISE_STATE_DIR": str(tmp_path / "state"), "SENDWISE_MODEL_URI": str(model),
           "SENDWISE_WORLD": "none", "SENDWISE_API_KEYS": API_KEY,
           "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba"))}
    process = subprocess.Popen([sys.executable, "-m", "sendwise.cli.main", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("wb"),
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/v1/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"server not ready after {READY_TIMEOUT_S} s:\n{(tmp_path / 'server.log').read_text()}")
        yield base
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def test_decide_and_feedback_over_http(server: str) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    customer = {"customer_id": "e2e-1", "timezone": "Europe/Berlin", "region": "EU", "industry": "ecommerce",
                "campaign_type": "broadcast", "channels": ["email", "push"]}
    with httpx.Client(base_url=server, headers=headers, timeout=60.0) as client:
        assert client.post("/v1/decisions", json={"customers": [customer]}, headers={"Authorization": ""}) \
            .status_code == 401
        response = client.post("/v1/decisions", json={"customers": [customer]})
        assert response.status_code == 200, response.text
        (decision,) = response.json()["decisions"]
        assert decision["channel"] in ("email", "push", "none")
        now = datetime.now().astimezone()
        events = {"events": [{"event_id": "e2e-ev-1", "decision_id": decision["decision_id"], "type": "delivered",
                              "timestamp": (now - timedelta(seconds=1)).isoformat()}]}
        first = client.post("/v1/feedback", json=events)
        again = client.post("/v1/feedback", json=events)
        assert first.status_code == 200 and again.status_code == 200
        assert first.json()["results"][0]["status"] in ("applied", "late")
        assert again.json()["results"][0]["status"] == "duplicate"
        assert 'route="/v1/feedback",status="200"} 2.0' in client.get("/metrics").text
