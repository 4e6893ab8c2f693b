"""Model loading: the seed-world prior by default, swaps when the alias moves, last good model on failure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sendwise.models import Policy, ThompsonPolicy
from sendwise.server import Settings
from tests.support.api import customer, decide
from tests.support.app import Clock, serve
from tests.support.catalogs import CATALOG


@dataclass
class FakeRegistry:
    """Stands in for the registry behind ``models:/name@alias``: a version, a policy, or an outage."""

    version: str
    policy: Policy
    down: bool = False
    follows_alias: bool = True

    def current_version(self) -> str:
        if self.down:
            raise ConnectionError("registry unreachable")
        return self.version

    def load(self) -> tuple[Policy, str]:
        return self.policy, self.current_version()


def _policy(email_alpha: float) -> ThompsonPolicy:
    policy = ThompsonPolicy(CATALOG, np.array([1.0, -2.0]), np.full((2, CATALOG.n_arms), 0.001))
    policy.alpha_[:, 0, CATALOG.arm("email", 0):CATALOG.arm("email", 23) + 1] = email_alpha
    return policy


def test_an_alias_move_swaps_the_model_and_an_outage_keeps_the_last_good_one(client: TestClient) -> None:
    service = client.app.state.service
    registry = FakeRegistry("sendwise-policy/1", _policy(1.0))
    service.loader = registry
    service.refresh_model()
    assert decide(client, customer())[0]["model_version"] == "sendwise-policy/1"

    registry.version, registry.policy = "sendwise-policy/2", _policy(500.0)  # email looks excellent now
    service.refresh_model()
    decisions = decide(client, *(customer(f"c-{i}") for i in range(200)))
    assert {d["model_version"] for d in decisions} == {"sendwise-policy/2"}
    assert sum(d["channel"] == "email" for d in decisions) > 150

    registry.down = True
    service.refresh_model()
    ready = client.get("/v1/ready").json()
    assert ready["status"] == "degraded" and ready["model_version"] == "sendwise-policy/2"
    assert "registry unreachable" in ready["detail"]
    assert decide(client, customer())[0]["model_version"] == "sendwise-policy/2"

    registry.down = False
    service.refresh_model()
    assert client.get("/v1/ready").json()["status"] == "ready"


def test_the_default_model_is_the_seed_world_prior(make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(model_uri=None, world="seed"), clock) as client:
        (decision,) = decide(client, customer(region="EU", industry="gaming", campaign_type="onboarding",
                                              timezone="Europe/Berlin"))
        assert decision["model_version"] == "prior-hier_ts-seed-world2-seed0"  # the world's rates, 2 trials each
        response = client.post("/v1/decisions", json={"customers": [customer(region="MARS")]})
        assert response.json()["detail"][0]["msg"] == "unknown region 'MARS'; known: NA, EU, CN, LATAM, ASIA, IN, ME"


def test_no_world_and_no_model_uri_is_not_ready(make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(model_uri=None, world=None), clock) as client:
        ready = client.get("/v1/ready")
    assert ready.status_code == 503
    assert "SENDWISE_MODEL_URI is unset and SENDWISE_WORLD is none" in ready.json()["detail"]


@pytest.mark.parametrize("field, value, message", [
    ("state_url", "postgres://db", "must start with 'sqlite:///'"),
    ("model_uri", " ", "must not be empty"),
])
def test_bad_settings_are_refused(field: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**{field: value})
