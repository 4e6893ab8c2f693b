"""Decisions log what the policy chose from (allowed arms, support, epsilon): the SQLite migration of older
state DBs, and masks of older catalogs carried into the export's catalog."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sendwise.models import Catalog
from sendwise.server.export import decision_log
from sendwise.server.store import DecisionRecord, SQLiteStore
from tests.support.catalogs import CATALOG

# The decisions table as state DBs were created before the three columns existed.
OLD_DECISIONS = """
CREATE TABLE decisions (
    decision_id TEXT PRIMARY KEY, customer TEXT NOT NULL, created_at REAL NOT NULL,
    region TEXT NOT NULL, industry TEXT NOT NULL, campaign_type TEXT NOT NULL, lifecycle_stage TEXT,
    timezone TEXT NOT NULL, channel TEXT NOT NULL, local_hour INTEGER, send_at REAL,
    arm INTEGER NOT NULL, cell INTEGER NOT NULL, propensity REAL NOT NULL, explored INTEGER NOT NULL,
    cost REAL NOT NULL, seed INTEGER NOT NULL, row INTEGER NOT NULL, model_version TEXT NOT NULL,
    reason TEXT NOT NULL, window_closes_at REAL, delivery TEXT NOT NULL, successes TEXT NOT NULL,
    closed INTEGER NOT NULL
);
"""


def record(decision_id: str, catalog: Catalog = CATALOG, **fields: Any) -> DecisionRecord:
    """A closed decision for email at 9 in NA / ecommerce / broadcast."""
    values: dict[str, Any] = dict(
        decision_id=decision_id, customer="p-1", created_at=100.0, region="NA", industry="ecommerce",
        campaign_type="broadcast", lifecycle_stage=None, timezone="UTC", channel="email", local_hour=9,
        send_at=None, arm=catalog.arm("email", 9), cell=0, propensity=0.5, explored=False, cost=0.001, seed=7,
        row=0, model_version="v1", reason="{}", window_closes_at=None, closed=True)
    return DecisionRecord(**values | fields)


def test_an_older_state_db_gains_the_columns_and_keeps_its_decisions(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_DECISIONS)
        conn.execute(f"INSERT INTO decisions VALUES ({', '.join('?' * 24)})",
                     ("d-old", "p-1", 100.0, "NA", "ecommerce", "broadcast", None, "UTC", "email", 9, None,
                      CATALOG.arm("email", 9), 0, 0.5, 0, 0.001, 7, 0, "v1", "{}", None, "unknown", "", 1))
    conn.close()
    store = SQLiteStore(path)
    mask = np.zeros(CATALOG.n_arms, dtype=np.bool_)
    mask[[CATALOG.arm("email", 9), CATALOG.null_arm]] = True
    new = record("d-new", allowed=CATALOG.encode_mask(mask), support=2, epsilon=0.01)
    with store.transaction() as tx:
        (old,) = tx.decisions(["d-old"]).values()
        assert (old.allowed, old.support, old.epsilon, old.teaches) == ("", 0, 0.0, True)  # not recorded
        assert old == replace(new, decision_id="d-old", allowed="", support=0, epsilon=0.0)
        tx.add_decisions([new])
    store.close()
    store = SQLiteStore(path)  # opening a migrated DB again changes nothing
    with store.transaction() as tx:
        assert tx.decisions(["d-new"]) == {"d-new": new}
    store.close()
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(decisions)")]
    conn.close()
    assert columns[-4:] == ["allowed", "support", "epsilon", "teaches"]


def test_masks_of_an_older_catalog_are_carried_over_by_channel_and_hour(tmp_path: Path) -> None:
    old = Catalog(channels=("sms", "email"), regions=CATALOG.regions, industries=CATALOG.industries,
                  campaign_types=CATALOG.campaign_types)
    old_mask = np.zeros(old.n_arms, dtype=np.bool_)
    old_mask[[old.arm("sms", 20), old.arm("email", 9), old.null_arm]] = True
    new_mask = np.zeros(CATALOG.n_arms, dtype=np.bool_)
    new_mask[[CATALOG.arm("email", 9), CATALOG.null_arm]] = True
    new_mask_sms = new_mask.copy()
    new_mask_sms[CATALOG.arm("sms", 20)] = True
    store = SQLiteStore(tmp_path / "state.db")
    with store.transaction() as tx:
        tx.register_model("v0", old.to_dict(), {"click": 1.0})
        tx.register_model("v1", CATALOG.to_dict(), {"click": 1.0})
        tx.add_decisions([
            record("d-0", old, model_version="v0", allowed=old.encode_mask(old_mask), support=3, epsilon=0.1),
            record("d-1", created_at=200.0, allowed=CATALOG.encode_mask(new_mask), support=2, epsilon=0.01)])
    log = decision_log(store)
    store.close()
    assert log.catalog == CATALOG
    np.testing.assert_array_equal(log.allowed, np.vstack([new_mask_sms, new_mask]))
    np.testing.assert_array_equal(log.support_size, [3, 2])
    np.testing.assert_array_equal(log.epsilon, [0.1, 0.01])
