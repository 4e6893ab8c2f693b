"""Shared machinery of the end-to-end reliability tests: real servers, in-process apps, a reference fold.

Real servers are uvicorn processes on loopback. A small fork server imports the package once and
forks one child per start, so a restart skips the seconds of imports; each child
is its own process group (``kill -9`` of the group is a real crash), opens the state from disk, and
serves the app exactly as ``uvicorn --factory sendwise.server:create_app`` would.

The reference fold is the learning rule written out plainly: every clicked/converted event adds one
``click`` success and every unsubscribe one ``unsubscribe`` success to its decision's (cell, arm), at
most once per decision and outcome; nothing else changes the posterior while no window closes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from sendwise.models.domain.world import World, load_world
from sendwise.models.policies.factory import make_world_policy
from sendwise.server import Settings, create_app

# Test modules import these helpers as ``e2e_helpers``: every test folder's conftest is named ``conftest``,
# so that name may point at another folder's module when several folders are collected in one run.
sys.modules["e2e_helpers"] = sys.modules[__name__]

API_KEY = "e2e-admin-key-0123456789abcdef"
AUTH = {"X-API-Key": API_KEY}
START_TIMEOUT_S = 60.0
EVENT_OUTCOME = {"clicked": "click", "converted": "click", "unsubscribed": "unsubscribe"}

_FORK_SERVER = r"""
import json, os, signal, sys
import uvicorn
from sendwise.server import create_app

signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps killed servers
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.environ.update(request["env"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        uvicorn.run(create_app(), host="127.0.0.1", port=request["port"], log_level="warning")
        os._exit(0)
    print(pid, flush=True)
"""


def settings_values(state_dir: Path, **overrides: Any) -> dict[str, str]:
    """Server settings of a test (field name → value), for env variables and ``Settings`` alike.

    The served prior is flat (``prior_trials=0``): every count then stays a whole number, so folds in
    any order are equal bit for bit and the tests can compare them with ``==``.
    """
    values = {"state_dir": str(state_dir), "api_keys": API_KEY, "default_policy": "ts", "world": "seed",
              "prior_trials": "0"}
    return values | {name: str(value) for name, value in overrides.items()}


@contextmanager
def app_client(state_dir: Path, **overrides: Any) -> Iterator[TestClient]:
    """An in-process app on ``state_dir`` with its lifespan running (the real start-up path)."""
    with TestClient(create_app(Settings(**settings_values(state_dir, **overrides))), headers=AUTH) as client:
        yield client


def start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (None if there is none): tells a process from a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, ProcessLookupError):
        return None


@dataclass
class LiveServer:
    """One uvicorn process serving the app on 127.0.0.1."""

    pid: int
    port: int
    log: Path
    started: str | None = None

    def __post_init__(self) -> None:
        self.started = start_time(self.pid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"server {self.pid} died while starting:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v1/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"server {self.pid} not ready after {START_TIMEOUT_S} s:\n{self.log.read_text()[-3000:]}")

    def alive(self) -> bool:
        return self.started is not None and start_time(self.pid) == self.started

    def kill(self, sig: signal.Signals = signal.SIGKILL, timeout_s: float = 10.0) -> None:
        """Send ``sig`` to the server's whole process group and wait until the server is gone."""
        deadline = time.monotonic() + timeout_s
        while self.alive():
            with suppress(ProcessLookupError):  # it may end between the check and the signal
                os.killpg(self.pid, sig)
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            sig, deadline = signal.SIGKILL, time.monotonic() + timeout_s

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), as a process manager would do it."""
        self.kill(signal.SIGTERM)


class ServerFactory:
    """Starts servers by forking a pre-imported Python process (see the module docstring)."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._process = subprocess.Popen([sys.executable, "-c", _FORK_SERVER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        self._started: list[LiveServer] = []

    def start(self, state_dir: Path, port: int | None = None, **overrides: Any) -> LiveServer:
        """A ready server on ``state_dir`` (a fresh loopback port unless ``port`` is given)."""
        assert self._process.stdin is not None and self._process.stdout is not None
        env = {f"SENDWISE_{name.upper()}": value for name, value in settings_values(state_dir, **overrides).items()}
        port = port or free_port()
        log = self._log_dir / f"server-{port}.log"
        self._process.stdin.write(json.dumps({"env": env, "port": port, "log": str(log)}) + "\n")
        self._process.stdin.flush()
        reply = self._process.stdout.readline()
        if not reply:
            raise RuntimeError("the fork server exited; its error is in the test output above")
        server = LiveServer(int(reply), port, log)
        self._started.append(server)
        server.wait_ready()
        return server

    def close(self) -> None:
        for server in self._started:
            server.kill()
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=10)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path_factory.mktemp("server-logs"))
    yield factory
    factory.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@cache
def seed_world() -> World:
    return load_world("seed")


def customer(customer_id: str, **fields: Any) -> dict[str, Any]:
    """A valid customer of a decision request in the seed world."""
    return {"customer_id": customer_id, "timezone": "Europe/Berlin", "region": "EU", "industry": "ecommerce",
            "campaign_type": "cart_reminder", "channels": ["email", "push", "sms"], **fields}


@dataclass(frozen=True)
class Placed:
    """Where a decision's outcomes land in the posterior: its cell and arm (None for no message)."""

    cell: int
    arm: int | None


def decide(client: httpx.Client | TestClient, customers: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                                      dict[str, Placed]]:
    """Post one decision batch; the decisions and each one's (cell, arm) by decision id."""
    response = client.post("/v1/decisions", json={"customers": customers})
    assert response.status_code == 200, response.text
    decisions = response.json()["decisions"]
    catalog = seed_world().catalog
    placed = {}
    for asked, decision in zip(customers, decisions, strict=True):
        cell = catalog.cell(asked["region"], asked["industry"], asked["campaign_type"])
        arm = None if decision["channel"] == "none" else catalog.arm(decision["channel"], decision["local_hour"])
        placed[decision["decision_id"]] = Placed(cell, arm)
    return decisions, placed


def base_posterior() -> tuple[np.ndarray, np.ndarray]:
    """Alpha and beta of the served prior (``ts`` on the seed world: Beta(1, 1) everywhere)."""
    policy = make_world_policy("ts", seed_world(), seed=0)
    return policy.alpha_.copy(), policy.beta_.copy()


def reference_successes(placed: dict[str, Placed], events: Iterable[dict[str, Any]]) -> np.ndarray:
    """Successes (n_cells, n_outcomes, n_arms) that applying ``events`` in any order and multiplicity adds."""
    catalog = seed_world().catalog
    learned = {(e["decision_id"], EVENT_OUTCOME[e["type"]]) for e in events if e["type"] in EVENT_OUTCOME}
    counts = np.zeros((catalog.n_cells, len(catalog.outcomes), catalog.n_arms))
    for decision_id, outcome in learned:
        where = placed[decision_id]
        if where.arm is not None:
            counts[where.cell, catalog.outcomes.index(outcome), where.arm] += 1.0
    return counts


def served_posterior(state_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The posterior a server starting on ``state_dir`` serves (rebuilt from the store, in process)."""
    with app_client(state_dir) as client:
        policy = client.app.state.service.model.policy
        return policy.alpha_.copy(), policy.beta_.copy()


def query(state_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on the state DB (safe while a server is running: WAL readers never block)."""
    conn = sqlite3.connect(state_dir / "state.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def logged_successes(state_dir: Path) -> np.ndarray:
    """Successes per (cell, outcome, arm) of the arrived outcomes in the store's loop log.

    Shaped like ``reference_successes``.
    """
    catalog = seed_world().catalog
    counts = np.zeros((catalog.n_cells, len(catalog.outcomes), catalog.n_arms))
    for cell, outcome, arm, successes in query(
            state_dir, "SELECT cell, outcome, arm, SUM(successes) FROM loop_log WHERE kind = 1 "
                       "GROUP BY cell, outcome, arm"):
        counts[cell, outcome, arm] = successes
    return counts


def feedback_event(event_id: str, decision_id: str, event_type: str, timestamp: str) -> dict[str, Any]:
    return {"event_id": event_id, "decision_id": decision_id, "type": event_type, "timestamp": timestamp}
