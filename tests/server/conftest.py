"""Fixtures for the server tests: a tiny saved policy, settings on a temporary state folder, a clock, stores.

Apps run their real lifespan (``with TestClient(app)``); only the clock is overridden, so tests decide
when attribution windows close and when "now" is. A test marked ``@on_every_store`` runs once on SQLite
and once on the session's Redis (``tests.support.stores``); the others keep their state in SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sendwise.models import ThompsonPolicy
from sendwise.server import Settings
from tests.support.app import API_KEY, DECIDE_KEY, START, Clock, serve
from tests.support.catalogs import CATALOG


@pytest.fixture(scope="session")
def policy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Thompson policy on a 2×2×2-cell catalog: clicks worth 1, unsubscribes -2, cheap messages."""
    policy = ThompsonPolicy(CATALOG, np.array([1.0, -2.0]), np.full((2, CATALOG.n_arms), 0.001))
    return policy.save(tmp_path_factory.mktemp("model") / "policy.npz")


@pytest.fixture
def make_settings(tmp_path: Path, policy_path: Path, store_settings: dict[str, Any]) -> Callable[..., Settings]:
    """Settings on this test's state folder and store, serving ``policy_path``, with no world unless asked."""

    def make(**overrides: Any) -> Settings:
        values = {"world": None, "model_uri": str(policy_path), "state_dir": tmp_path / ".sendwise",
                  "api_keys": f"{API_KEY},{DECIDE_KEY}:decide", **store_settings, **overrides}
        return Settings(**values)

    return make


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def client(make_settings: Callable[..., Settings], clock: Clock) -> Iterator[TestClient]:
    with serve(make_settings(), clock) as c:
        yield c
