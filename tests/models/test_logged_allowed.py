"""What the logging policy chose from, in the log format: ``allowed_arms``, ``support_size``, ``epsilon``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import numpy.testing as npt
import pandas as pd
import pytest

from sendwise.models import Catalog, LoggedFeedback, read_logs, write_logs

CATALOG = Catalog(regions=("NA", "EU"), campaign_types=("onboarding", "win_back"))


def masked_log(n_rounds: int = 40, seed: int = 0) -> LoggedFeedback:
    """A catalog log whose rows allowed random arms (the logged one and the no-message arm among them)."""
    rng = np.random.default_rng(seed)
    allowed = rng.random((n_rounds, CATALOG.n_arms)) < 0.2
    allowed[:, CATALOG.null_arm] = True
    action = np.array([rng.choice(np.flatnonzero(row)) for row in allowed])
    support = allowed.sum(axis=1).astype(float)
    support[::7] = np.nan  # not recorded
    epsilon = np.full(n_rounds, 0.01)
    epsilon[::5] = np.nan
    return LoggedFeedback(
        action=action, propensity=1.0 / allowed.sum(axis=1), reward=rng.random(n_rounds),
        context=pd.DataFrame({"region": rng.choice(CATALOG.regions, n_rounds), "campaign_type": "win_back"}),
        catalog=CATALOG, allowed=allowed, support_size=support, epsilon=epsilon)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_allowed_masks_round_trip_bit_for_bit(tmp_path: Path, suffix: str, seed: int) -> None:
    log = masked_log(seed=seed)
    back = read_logs(write_logs(log, tmp_path / f"logs{suffix}"), CATALOG if suffix == ".csv" else None)
    assert back.allowed.dtype == np.bool_
    npt.assert_array_equal(back.allowed, log.allowed)
    npt.assert_array_equal(back.support_size, log.support_size)  # NaN where not recorded, on both sides
    npt.assert_array_equal(back.epsilon, log.epsilon)
    npt.assert_array_equal(back.action, log.action)
    assert list(back.context.columns) == ["region", "campaign_type"]  # the new columns are not context


def test_the_file_holds_one_code_per_row_and_integer_support_sizes(tmp_path: Path) -> None:
    log = masked_log(n_rounds=8)
    table = pd.read_csv(write_logs(log, tmp_path / "logs.csv"), dtype={"allowed_arms": str})
    assert table["allowed_arms"].tolist() == CATALOG.encode_mask(log.allowed)
    assert table["allowed_arms"].str.len().eq(44).all()
    assert pd.isna(table.loc[0, "support_size"]) and table.loc[1, "support_size"] == log.allowed[1].sum()
    assert "support_size,epsilon" in (tmp_path / "logs.csv").read_text().splitlines()[0]


def test_logs_without_the_columns_have_no_masks(tmp_path: Path) -> None:
    log = LoggedFeedback(action=[0, 2], propensity=[0.5, 0.5], reward=[1.0, 0.0], n_actions=3)
    back = read_logs(write_logs(log, tmp_path / "logs.csv"))
    assert (back.allowed, back.support_size, back.epsilon) == (None, None, None)


def test_an_empty_code_allows_every_action(tmp_path: Path) -> None:
    only_null = CATALOG.encode_mask(np.arange(CATALOG.n_arms) == CATALOG.null_arm)
    pd.DataFrame({"decision_id": ["a", "b"], "channel": ["none", "sms"], "hour": [None, 3],
                  "propensity": [0.5, 0.5], "reward": [0.0, 1.0], "allowed_arms": [only_null, ""]}).to_csv(
        tmp_path / "logs.csv", index=False)
    log = read_logs(tmp_path / "logs.csv", CATALOG)
    assert log.allowed[0].sum() == 1 and log.allowed[1].all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_plain_action_logs_carry_masks_too(tmp_path: Path, suffix: str) -> None:
    allowed = np.zeros((3, 10), dtype=np.bool_)
    allowed[[0, 0, 1, 2, 2], [0, 4, 2, 5, 8]] = True
    log = LoggedFeedback(action=[4, 2, 8], propensity=[0.5, 1.0, 0.5], reward=[1.0, 0.0, 1.0], n_actions=10,
                         allowed=allowed)
    back = read_logs(write_logs(log, tmp_path / f"logs{suffix}"))
    # CSV has no metadata: the action set is the smallest the actions, the masks and the codes' length fit
    assert back.n_actions == (10 if suffix == ".parquet" else 9)
    npt.assert_array_equal(back.allowed, allowed[:, :back.n_actions])


OUTSIDE = "allowed_arms', row 1: must contain the logged action 33 (push at 9), which has propensity > 0; got "
INVALID_FILES = [
    pytest.param({"allowed_arms": ["0" * 44, "ab"]}, "column 'allowed_arms', row 1: must have 44 hex digits "
                 "(a mask of 169 arms); got 'ab'", id="short-code"),
    pytest.param({"allowed_arms": ["0" * 44, "g" * 44]}, "column 'allowed_arms', row 1: must contain only the hex "
                 f"digits 0-9 and a-f; got '{'g' * 44}'", id="not-hex"),
    pytest.param({"allowed_arms": ["", "ff" * 22]}, "column 'allowed_arms', row 1: must not set the last 7 bits "
                 f"(padding beyond the 169 arms); got '{'ff' * 22}'", id="padding"),
    pytest.param({"allowed_arms": ["", "0" * 42 + "80"]}, f"column '{OUTSIDE}'{'0' * 42}80'", id="action-outside"),
    pytest.param({"support_size": [1, 0]}, "column 'support_size', row 1: must be an integer in [1, 169] or empty; "
                 "got 0", id="zero-support"),
    pytest.param({"support_size": [1.5, 2]}, "column 'support_size', row 0: must be an integer in [1, 169] or "
                 "empty; got 1.5", id="fractional-support"),
    pytest.param({"epsilon": [0.1, 1.5]}, "column 'epsilon', row 1: must lie in [0, 1] or be empty; got 1.5",
                 id="epsilon"),
]


@pytest.mark.parametrize("columns, msg", INVALID_FILES)
def test_file_errors_name_file_column_and_row(tmp_path: Path, columns: dict[str, list[object]], msg: str) -> None:
    frame = pd.DataFrame({"decision_id": ["a", "b"], "channel": ["none", "push"], "hour": [None, 9],
                          "propensity": [0.5, 0.5], "reward": [0.0, 1.0], **columns})
    frame.to_csv(tmp_path / "logs.csv", index=False)
    with pytest.raises(ValueError, match=f"^{re.escape('logs.csv: ' + msg)}$"):
        read_logs(tmp_path / "logs.csv", CATALOG)


INVALID_IN_CODE = [
    pytest.param(np.ones((2, 3), dtype=np.int64), TypeError, "`allowed` must be a bool array; got dtype int64",
                 id="int"),
    pytest.param(np.ones((2, 4), dtype=np.bool_), ValueError,
                 "`allowed` must have shape (n_rounds, n_actions) = (2, 3); got (2, 4)", id="shape"),
    pytest.param(np.array([[True, False, False], [True, True, False]]), ValueError,
                 "column 'allowed_arms', row 1: must contain the logged action 2, which has propensity > 0; "
                 "got 'c0'", id="outside"),
]


@pytest.mark.parametrize("allowed, err, msg", INVALID_IN_CODE)
def test_the_container_checks_masks_built_in_code(allowed: np.ndarray, err: type[Exception], msg: str) -> None:
    with pytest.raises(err, match=f"^{re.escape(msg)}$"):
        LoggedFeedback(action=[0, 2], propensity=[0.5, 0.5], reward=[1.0, 0.0], n_actions=3, allowed=allowed)
