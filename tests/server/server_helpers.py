"""Shared pieces of the server tests: constants, a movable clock, an app client, request builders."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from sendwise.models import Catalog
from sendwise.server import Settings, create_app
from sendwise.server.deps import get_now

API_KEY = "test-admin-key-0123456789"
DECIDE_KEY = "test-decide-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CATALOG = Catalog(regions=("NA", "EU"), industries=("ecommerce", "gaming"),
                  campaign_types=("broadcast", "cart_reminder"))
START = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The time the app sees; tests move it forward."""

    now: datetime

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@contextmanager
def serve(settings: Settings, clock: Clock, **client_args: Any) -> Iterator[TestClient]:
    """A client of a fresh app on ``settings`` whose clock is ``clock``, lifespan included."""
    app = create_app(settings)
    app.dependency_overrides[get_now] = lambda: clock.now
    with TestClient(app, headers=AUTH, **client_args) as client:
        yield client


def customer(customer_id: str = "c-1", **fields: Any) -> dict[str, Any]:
    """A valid customer entry of a decision request."""
    return {"customer_id": customer_id, "timezone": "America/New_York", "region": "NA", "industry": "ecommerce",
            "campaign_type": "broadcast", "channels": ["email", "push", "sms"], **fields}


def decide(client: TestClient, *customers: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/v1/decisions", json={"customers": list(customers)})
    assert response.status_code == 200, response.text
    return response.json()["decisions"]


def event(decision: dict[str, Any], event_type: str, event_id: str, at: datetime | str | None = None,
          **fields: Any) -> dict[str, Any]:
    """A feedback event for ``decision``, timestamped at its send time unless ``at`` is given."""
    timestamp = at.isoformat() if isinstance(at, datetime) else at or decision["send_at"]
    return {"event_id": event_id, "decision_id": decision["decision_id"], "type": event_type,
            "timestamp": timestamp, **fields}


def feedback(client: TestClient, *events: dict[str, Any]) -> list[str]:
    response = client.post("/v1/feedback", json={"events": list(events)})
    assert response.status_code == 200, response.text
    return [r["status"] for r in response.json()["results"]]


def posterior(client: TestClient) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the served model's alpha and beta."""
    policy = client.app.state.service.model.policy
    return policy.alpha_.copy(), policy.beta_.copy()
