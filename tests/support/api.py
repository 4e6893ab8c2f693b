"""Request builders of the HTTP API, one set for every test: customers, feedback events, and posting them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

# The segment a customer is in unless a test says otherwise: in the server tests' catalog and the seed world.
NA_BROADCAST = {"timezone": "America/New_York", "region": "NA", "industry": "ecommerce",
                "campaign_type": "broadcast"}
# The end-to-end tests' customers: cart reminders in Berlin (seed world).
EU_CART = {"timezone": "Europe/Berlin", "region": "EU", "industry": "ecommerce", "campaign_type": "cart_reminder"}
CHANNELS = ["email", "push", "sms"]


def customer(customer_id: str = "c-1", **fields: Any) -> dict[str, Any]:
    """A valid customer entry of a decision request (an NA broadcast on three channels unless ``fields`` say)."""
    return {"customer_id": customer_id, **NA_BROADCAST, "channels": list(CHANNELS), **fields}


def seed_customer(customer_id: str, **fields: Any) -> dict[str, Any]:
    """A customer of the end-to-end tests: an EU cart reminder in the seed world, unless ``fields`` say."""
    return customer(customer_id, **EU_CART | fields)


def event(decision: dict[str, Any] | str, event_type: str, event_id: str, at: datetime | str | None = None,
          **fields: Any) -> dict[str, Any]:
    """A feedback event for ``decision`` (a decision, or its id), timestamped ``at`` or at its send time."""
    if isinstance(decision, str):
        decision = {"decision_id": decision, "send_at": None}
    timestamp = at.isoformat() if isinstance(at, datetime) else at or decision["send_at"]
    return {"event_id": event_id, "decision_id": decision["decision_id"], "type": event_type,
            "timestamp": timestamp, **fields}


def decide(client: httpx.Client, *customers: dict[str, Any]) -> list[dict[str, Any]]:
    """Post one decision request; its decisions (the request must succeed)."""
    response = client.post("/v1/decisions", json={"customers": list(customers)})
    assert response.status_code == 200, response.text
    return response.json()["decisions"]


def feedback(client: httpx.Client, *events: dict[str, Any]) -> list[str]:
    """Post one feedback request; each event's status (the request must succeed)."""
    response = client.post("/v1/feedback", json={"events": list(events)})
    assert response.status_code == 200, response.text
    return [r["status"] for r in response.json()["results"]]
