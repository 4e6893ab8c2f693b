"""The reference fold of the end-to-end tests: what the served posterior must be after a stream of events.

The learning rule written out plainly: every clicked/converted event adds one ``click`` success and
every unsubscribe one ``unsubscribe`` success to its decision's (cell, arm), at most once per decision
and outcome; nothing else changes the posterior while no window closes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from sendwise.models.policies.factory import make_world_policy

from .api import decide
from .app import app_client, posterior
from .catalogs import seed_world

EVENT_OUTCOMES = {"opened": ("open",), "clicked": ("click", "open"), "converted": ("click", "open"),
                  "unsubscribed": ("unsubscribe",)}  # a click is an open too


@dataclass(frozen=True)
class Placed:
    """Where a decision's outcomes land in the posterior: its cell and arm (None for no message)."""

    cell: int
    arm: int | None


def decide_and_place(client: httpx.Client, customers: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                                   dict[str, Placed]]:
    """Post one decision batch; the decisions and each one's (cell, arm) by decision id."""
    decisions = decide(client, *customers)
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
    learned = {(e["decision_id"], o) for e in events for o in EVENT_OUTCOMES.get(e["type"], ())}
    counts = np.zeros((catalog.n_cells, len(catalog.outcomes), catalog.n_arms))
    for decision_id, outcome in learned:
        where = placed[decision_id]
        if where.arm is not None:
            counts[where.cell, catalog.outcomes.index(outcome), where.arm] += 1.0
    return counts


def served_posterior(state_dir: Path, **overrides: Any) -> tuple[np.ndarray, np.ndarray]:
    """The posterior a server starting on ``state_dir`` serves (rebuilt from the store, in process)."""
    with app_client(state_dir, **overrides) as client:
        return posterior(client)


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
