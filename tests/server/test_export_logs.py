"""``sendwise export-logs``: closed decisions with outcomes, rewards and propensities, readable as a bandit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sendwise.cli.main import main
from sendwise.models import load_policy
from sendwise.models.ope.logged import read_logs
from sendwise.server import Settings
from sendwise.server.store import SQLiteStore
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock, serve
from tests.support.catalogs import CATALOG


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_writes_closed_decisions_with_rewards(make_settings: Callable[..., Settings], clock: Clock,
                                                     tmp_path: Path, suffix: str) -> None:
    settings = make_settings()
    with serve(settings, clock) as client:
        decisions = decide(client, *(customer(f"c-{i}", channels=["email", "push"]) for i in range(20)))
        sent = [d for d in decisions if d["channel"] != "none"]
        clock.now = max(datetime.fromisoformat(d["send_at"]) for d in sent) + timedelta(hours=1)
        feedback(client, event(sent[0], "clicked", "click-0"))
        client.app.state.service.close_windows(clock.advance(days=4))
    out = tmp_path / f"log{suffix}"
    assert main(["export-logs", "--out", str(out), "--state-url", f"sqlite:///{settings.state_path}"]) == 0
    log = read_logs(out, CATALOG)
    assert log.n_rounds == 20
    by_id = dict(zip(log.decision_id.tolist(), range(20), strict=True))
    clicked = by_id[sent[0]["decision_id"]]
    assert log.outcomes["click"].sum() == 1 and log.outcomes["click"][clicked] == 1
    np.testing.assert_allclose(log.reward[clicked], 1.0 - log.cost[clicked])
    assert CATALOG.channel_of(int(log.action[clicked])) == sent[0]["channel"]
    np.testing.assert_allclose(sorted(log.propensity), sorted(d["propensity"] for d in decisions))


def test_export_without_a_state_db_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-logs", "--out", str(tmp_path / "x.csv"), "--state-url", f"sqlite:///{tmp_path}/no.db"]) == 2
    assert "does not exist; has the server run here?" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_keeps_each_decisions_allowed_arms_bit_for_bit(make_settings: Callable[..., Settings], clock: Clock,
                                                               tmp_path: Path, suffix: str) -> None:
    settings = make_settings()
    with serve(settings, clock) as client:
        decide(client, *(customer(f"c-{i}", channels=[["email", "push"], ["sms"], []][i % 3]) for i in range(12)))
        client.app.state.service.close_windows(clock.advance(days=4))
    store = SQLiteStore(settings.state_path)
    closed, _ = store.closed_decisions()
    store.close()
    out = tmp_path / f"log{suffix}"
    assert main(["export-logs", "--out", str(out), "--state-url", f"sqlite:///{settings.state_path}"]) == 0
    log = read_logs(out, CATALOG)
    at = {d: i for i, d in enumerate(log.decision_id.tolist())}
    order = [at[d.decision_id] for d in closed]
    np.testing.assert_array_equal(log.allowed[order], CATALOG.decode_mask([d.allowed for d in closed]))
    reachable = [{"email", "push", "none"}, {"sms", "none"}, {"none"}]  # by the customer's row in the request
    for d in closed:
        allowed = {CATALOG.channel_of(int(a)) for a in np.flatnonzero(log.allowed[at[d.decision_id]])}
        assert allowed <= reachable[d.row % 3] and CATALOG.channel_of(d.arm) in allowed
    assert log.n_rounds == len(closed) > 0
    assert np.all((log.support_size >= 1) & (log.support_size <= log.allowed.sum(axis=1)))
    np.testing.assert_array_equal(log.epsilon, np.full(log.n_rounds, load_policy(settings.model_uri).epsilon))
