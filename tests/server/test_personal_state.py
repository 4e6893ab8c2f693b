"""The served loop keeps each customer's own state by pseudonym: learned from feedback, rebuilt by a
restart's replay, and gone when the customer is erased, on every store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.testing as npt
from fastapi.testclient import TestClient

from sendwise.models import HierarchicalThompsonPolicy
from sendwise.server import Settings
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock, serve
from tests.support.catalogs import CATALOG
from tests.support.stores import on_every_store


def factors_of(client: TestClient, customer_id: str) -> np.ndarray | None:
    """The served model's personal factors of one customer, after every committed input."""
    service = client.app.state.service
    service.model.catch_up(service.store, fresh=True)
    return service.model.personal_factors(service.pseudonymize(customer_id))


@on_every_store
def test_personal_state_follows_feedback_survives_a_restart_and_is_erased(
        make_settings: Callable[..., Settings], clock: Clock, tmp_path: Path) -> None:
    shape = (CATALOG.n_cells, len(CATALOG.outcomes), CATALOG.n_arms)
    rates = np.broadcast_to(np.array([0.1, 0.001])[:, None], shape)  # clicks pay: every decision sends
    policy = HierarchicalThompsonPolicy(CATALOG, np.array([1.0, -2.0]), np.full((2, CATALOG.n_arms), 0.001),
                                        prior=(100 * rates, 100 * (1 - rates)))
    settings = make_settings(model_uri=str(policy.save(tmp_path / "hier_ts.npz")))
    click, email = CATALOG.outcomes.index("click"), CATALOG.channels.index("email")
    with serve(settings, clock) as client:
        decisions = decide(client, customer("c-fan", channels=["email"]), customer("c-new", channels=["email"]))
        assert all(d["channel"] == "email" for d in decisions)
        clock.advance(hours=2)
        assert feedback(client, event(decisions[0], "clicked", "k-1", clock.now)) == ["applied"]
        fan = factors_of(client, "c-fan")
        assert fan[click, email] > 1.0  # one click in a fraction of one expected: more of an email person
        new = factors_of(client, "c-new")  # an email went out and nothing came back yet: a little less likely
        assert new[click, email] < 1.0 and np.all(np.delete(new, email, axis=1) == 1.0)
    with serve(settings, clock) as client:  # a restart replays the input log to the same evidence
        npt.assert_allclose(factors_of(client, "c-fan"), fan, rtol=1e-9)
        erased = client.delete("/v1/customers/c-fan")
        assert erased.status_code == 200
        assert factors_of(client, "c-fan") is None  # this worker forgot them at once
    with serve(settings, clock) as client:  # and a replay does not bring them back
        assert factors_of(client, "c-fan") is None


def test_the_dashboard_shows_how_a_customers_own_history_moved_the_choice(
        make_settings: Callable[..., Settings], clock: Clock, tmp_path: Path) -> None:
    shape = (CATALOG.n_cells, len(CATALOG.outcomes), CATALOG.n_arms)
    rates = np.broadcast_to(np.array([0.1, 0.001])[:, None], shape)
    policy = HierarchicalThompsonPolicy(CATALOG, np.array([1.0, -2.0]), np.full((2, CATALOG.n_arms), 0.001),
                                        prior=(100 * rates, 100 * (1 - rates)))
    with serve(make_settings(model_uri=str(policy.save(tmp_path / "hier_ts.npz"))), clock) as client:
        (decision,) = decide(client, customer("c-fan", channels=["email"]))
        clock.advance(hours=2)
        feedback(client, event(decision, "clicked", "k-1", clock.now))
        asked = {"region": "NA", "industry": "ecommerce", "campaign_type": "broadcast", "timezone": "America/New_York",
                 "channels": ["email", "push"]}
        page = client.get("/dashboard", params={**asked, "customer_id": "c-fan"})
        assert page.status_code == 200 and 'id="own-history"' in page.text
        own = page.text[page.text.index('id="own-history"'):]
        assert own[:own.index("</table>")].count("<tr data-channel") == len(CATALOG.channels), own[:1500]
        new = client.get("/dashboard", params={**asked, "customer_id": "c-unknown"})
        assert "No history of their own yet" in new.text
