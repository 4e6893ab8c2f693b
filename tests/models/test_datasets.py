"""The shipped real datasets load as logs, and off-policy estimates on them agree with what the RCT shows."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sendwise.models import LoggedFeedback, ips, snips
from sendwise.models.ope.datasets import DATA_DIR_ENV, HILLSTROM_ACTIONS, data_dir, load_hillstrom, load_obd
from sendwise.models.ope.estimators import IPS


@pytest.fixture(scope="module")
def hillstrom() -> LoggedFeedback:
    return load_hillstrom()


def test_obd_sample_is_a_uniform_random_log_over_80_items() -> None:
    log = load_obd()
    assert (log.n_rounds, log.n_actions) == (10_000, 80)
    assert np.all(log.propensity == 1 / 80)
    assert set(np.unique(log.reward)) == {0.0, 1.0}
    assert list(log.context.columns) == ["position", "user_feature_0", "user_feature_1", "user_feature_2",
                                         "user_feature_3"]
    assert np.all(np.diff(log.timestamp) >= np.timedelta64(0))
    assert log.catalog is None and log.action_names is None


def test_hillstrom_is_a_three_arm_rct_with_known_propensities(hillstrom: LoggedFeedback) -> None:
    assert (hillstrom.n_rounds, hillstrom.action_names) == (64_000, HILLSTROM_ACTIONS)
    assert np.bincount(hillstrom.action).tolist() == [21_307, 21_387, 21_306]
    assert np.all(hillstrom.propensity == 1 / 3)
    assert "purchase_channel" in hillstrom.context.columns and "channel" not in hillstrom.context.columns
    assert list(hillstrom.outcomes.columns) == ["visit", "conversion", "spend"]
    assert load_hillstrom(reward="spend").reward.max() > 1


def test_ips_of_always_mens_email_matches_the_mens_group_visit_rate(hillstrom: LoggedFeedback) -> None:
    """Real-data check: in an RCT, IPS for 'always send the men's e-mail' estimates that group's visit rate."""
    target = np.zeros((hillstrom.n_rounds, 3))
    target[:, 0] = 1.0
    mens_rate = hillstrom.reward[hillstrom.action == 0].mean()
    args = (hillstrom.reward, hillstrom.action, hillstrom.propensity, target)
    low, high = IPS().estimate_interval(*args, n_bootstrap=300, random_state=0)
    assert low <= mens_rate <= high, f"Mens visit rate {mens_rate:.4f} outside the IPS interval [{low:.4f}, {high:.4f}]"
    assert abs(ips(*args) - mens_rate) < 0.005
    assert snips(*args) == pytest.approx(mens_rate)  # self-normalising makes it exactly the group mean


def test_loaders_say_where_they_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "obd" / "random" / "all" / "all.csv"
    msg = (f"OBD sample not found at {str(csv)!r}; pass `path` (the obd folder or its CSV) or set "
           f"{DATA_DIR_ENV} to a folder holding obd/ (the data ship with the source repository's data/ folder, "
           "not with an installed package)")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert data_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(msg)}$"):
        load_obd()
    with pytest.raises(FileNotFoundError, match=re.escape(f"Hillstrom data not found at {str(tmp_path / 'x.csv')!r}")):
        load_hillstrom(tmp_path / "x.csv")
    with pytest.raises(ValueError, match=re.escape("`reward` must be one of visit, conversion, spend; got 'clicks'")):
        load_hillstrom(reward="clicks")


def test_loaders_take_an_explicit_folder_or_file(monkeypatch: pytest.MonkeyPatch) -> None:
    repo_data = Path(__file__).resolve().parents[2] / "data"
    monkeypatch.setenv(DATA_DIR_ENV, "/nonexistent")
    assert load_obd(repo_data / "obd").n_rounds == 10_000
    assert load_obd(repo_data / "obd" / "random" / "all" / "all.csv").n_actions == 80
