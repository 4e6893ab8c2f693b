"""In-process apps with their real lifespan (``with TestClient(app)``): a movable clock, settings, keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from sendwise.server import Settings, create_app
from sendwise.server.deps import get_now

API_KEY = "test-admin-key-0123456789"
DECIDE_KEY = "test-decide-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
START = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)

# The end-to-end tests' servers, in process and live: the seed world, Thompson sampling, another key.
E2E_API_KEY = "e2e-admin-key-0123456789abcdef"
E2E_AUTH = {"X-API-Key": E2E_API_KEY}


@dataclass
class Clock:
    """The time the app sees; tests move it forward."""

    now: datetime

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@contextmanager
def serve(settings: Settings, clock: Clock | None = None, headers: dict[str, str] = AUTH,
          **client_args: Any) -> Iterator[TestClient]:
    """A client of a fresh app on ``settings``, lifespan included; its clock is ``clock`` if one is given."""
    app = create_app(settings)
    if clock is not None:
        app.dependency_overrides[get_now] = lambda: clock.now
    with TestClient(app, headers=headers, **client_args) as client:
        yield client


def e2e_settings(state_dir: Path, **overrides: Any) -> dict[str, str]:
    """Settings of an end-to-end server (field name → value), for env variables and ``Settings`` alike.

    The served prior is flat (``prior_trials=0``): every count then stays a whole number, so folds in
    any order are equal bit for bit and the tests can compare them with ``==``.
    """
    values = {"state_dir": str(state_dir), "api_keys": E2E_API_KEY, "default_policy": "ts", "world": "seed",
              "prior_trials": "0"}
    return values | {name: str(value) for name, value in overrides.items()}


@contextmanager
def app_client(state_dir: Path, **overrides: Any) -> Iterator[TestClient]:
    """An in-process end-to-end app on ``state_dir`` with its lifespan running (the real start-up path)."""
    with serve(Settings(**e2e_settings(state_dir, **overrides)), headers=E2E_AUTH) as client:
        yield client


def posterior(client: TestClient) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the served model's alpha and beta."""
    policy = client.app.state.service.model.policy
    return policy.alpha_.copy(), policy.beta_.copy()
