"""A served revenue model learns each conversion's value: ``value / REVENUE_UNIT`` of a success, the rest a failure."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sendwise.models import REVENUE, REVENUE_UNIT
from sendwise.server.attribution import learned_outcomes
from tests.support.api import decide, event, feedback, seed_customer
from tests.support.app import app_client, posterior


def test_a_conversion_teaches_its_order_value_and_one_without_a_value_teaches_revenue_nothing(tmp_path: Path) -> None:
    with app_client(tmp_path / "state", objective="revenue") as client:
        live = client.app.state.service.model
        catalog = live.catalog
        assert catalog.outcomes[-1] == REVENUE and live.version.endswith("-revenue-seed0")
        revenue, click = catalog.outcomes.index(REVENUE), catalog.outcomes.index("click")
        decisions = [d for d in decide(client, *(seed_customer(f"c-{i}", channels=["email"]) for i in range(8)))
                     if d["channel"] == "email"]
        assert len(decisions) >= 2
        first, second = decisions[:2]
        cell = catalog.cell("EU", "ecommerce", "cart_reminder")
        alpha0, beta0 = posterior(client)
        at = datetime.now(UTC)
        assert feedback(client, event(first, "converted", "e-1", at=at.isoformat(), value=250.0)) == ["applied"]
        alpha1, beta1 = posterior(client)
        arm = catalog.arm("email", first["local_hour"])
        assert alpha1[cell, revenue, arm] - alpha0[cell, revenue, arm] == 250.0 / REVENUE_UNIT
        assert beta1[cell, revenue, arm] - beta0[cell, revenue, arm] == 1 - 250.0 / REVENUE_UNIT
        assert alpha1[cell, click, arm] - alpha0[cell, click, arm] == 1.0
        assert feedback(client, event(first, "converted", "e-2", at=at.isoformat(), value=900.0)) == ["applied"]
        np.testing.assert_array_equal(posterior(client)[0], alpha1)  # one order per decision
        assert feedback(client, event(second, "converted", "e-3", at=at.isoformat())) == ["applied"]
        alpha2, beta2 = posterior(client)
        arm = catalog.arm("email", second["local_hour"])
        assert (alpha2 - alpha1)[cell, revenue, arm] == 0.0 and (beta2 - beta1)[cell, revenue, arm] == 0.0
        assert (alpha2 - alpha1)[cell, click, arm] == 1.0
        with client.app.state.service.store.snapshot() as view:
            stored = view.decisions([first["decision_id"], second["decision_id"]])
        assert learned_outcomes(stored[first["decision_id"]].successes) == {"click": 1.0, "open": 1.0, REVENUE: 0.25}
        assert learned_outcomes(stored[second["decision_id"]].successes)[REVENUE] == 0.0  # closes without a failure
        response = client.post("/v1/feedback", json={"events": [event(first, "converted", "e-4", value=-5.0)]})
        assert response.status_code == 422 and "greater than or equal to 0" in response.text
