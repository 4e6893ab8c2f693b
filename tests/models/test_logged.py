"""The log format: container checks, CSV and Parquet round trips, and row-level errors from files."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.testing as npt
import pandas as pd
import pytest

from sendwise.models import Catalog, LoggedFeedback, read_logs, write_logs

CATALOG = Catalog(regions=("NA", "EU"), industries=("ecommerce", "gaming"))
CHANNELS = "email, push, in_app, app_inbox, sms, whatsapp, web_push, none"
Change = Callable[[pd.DataFrame], pd.DataFrame]
REQUIRED = "a log needs decision_id, action (or channel and hour), propensity and reward"


def catalog_log(n_rounds: int = 6) -> LoggedFeedback:
    """A small log in the catalog's terms, every optional part filled in (the no-message arm included)."""
    rng = np.random.default_rng(3)
    click = (rng.random(n_rounds) < 0.5).astype(float)
    return LoggedFeedback(
        action=np.append(rng.integers(0, CATALOG.null_arm, n_rounds - 1), CATALOG.null_arm),
        propensity=rng.uniform(0.01, 1.0, n_rounds),
        reward=click,
        decision_id=np.array([f"d{i}" for i in range(n_rounds)], dtype=object),
        timestamp=pd.date_range("2026-03-01 08:00", periods=n_rounds, freq="17min").to_numpy(),
        context=pd.DataFrame({
            "region": ["NA", "EU"] * (n_rounds // 2),
            "industry": "gaming",
            "campaign_type": "broadcast",
            "tier": rng.choice(["gold", "basic"], n_rounds),
        }),
        outcomes=pd.DataFrame({"click": click, "unsubscribe": np.zeros(n_rounds)}),
        cost=np.full(n_rounds, 0.002),
        catalog=CATALOG,
    )


def assert_same_log(got: LoggedFeedback, want: LoggedFeedback) -> None:
    for name in ("action", "propensity", "reward", "decision_id", "timestamp", "cost"):
        npt.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert (got.n_actions, got.action_names, got.catalog) == (want.n_actions, want.action_names, want.catalog)
    pd.testing.assert_frame_equal(got.context, want.context, check_dtype=False)
    if want.outcomes is None:
        assert got.outcomes is None
    else:
        pd.testing.assert_frame_equal(got.outcomes, want.outcomes, check_dtype=False)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_catalog_log_round_trips(tmp_path: Path, suffix: str) -> None:
    log = catalog_log()
    assert_same_log(read_logs(write_logs(log, tmp_path / f"logs{suffix}"), CATALOG), log)


def test_csv_writes_channel_and_hour_and_keeps_region_na(tmp_path: Path) -> None:
    """'NA' is North America, not a missing value; the no-message arm has channel 'none' and no hour."""
    path = write_logs(catalog_log(), tmp_path / "logs.csv")
    header, *rows = path.read_text().splitlines()
    assert header == ("decision_id,timestamp,region,industry,campaign_type,tier,channel,hour,"
                      "propensity,reward,click,unsubscribe,cost")
    assert rows[0].split(",")[2] == "NA"
    assert rows[-1].split(",")[6:8] == ["none", ""]


def test_parquet_keeps_names_outcomes_and_action_count(tmp_path: Path) -> None:
    log = LoggedFeedback(
        action=[0, 2, 1], propensity=[1 / 3] * 3, reward=[1.0, 0.0, 2.5], n_actions=4,
        action_names=("a", "b", "c", "d"), context=pd.DataFrame({"zip": ["x", "y", "x"]}),
        outcomes=pd.DataFrame({"visit": [1.0, 0.0, 1.0], "spend": [0.0, 0.0, 2.5]}),
    )
    assert_same_log(read_logs(write_logs(log, tmp_path / "logs.parquet")), log)


def test_csv_refuses_outcomes_it_could_not_read_back(tmp_path: Path) -> None:
    log = LoggedFeedback(action=[0], propensity=[1.0], reward=[1.0], outcomes=pd.DataFrame({"visit": [1.0]}))
    msg = ("logs.csv: CSV cannot mark ['visit'] as outcomes (it recognises only the catalog's: click, "
           "unsubscribe), so they would read back as context; write .parquet")
    with pytest.raises(ValueError, match=re.escape(msg)):
        write_logs(log, tmp_path / "logs.csv")


def test_csv_without_catalog_infers_one_from_channels_and_context(tmp_path: Path) -> None:
    path = tmp_path / "logs.csv"
    path.write_text("decision_id,region,channel,hour,propensity,reward\n"
                    "1,EU,sms,9,0.5,1\n2,NA,fax,20,0.5,0\n3,EU,none,,1.0,0\n")
    log = read_logs(path)
    assert log.catalog == Catalog(channels=(*Catalog().channels, "fax"), regions=("EU", "NA"))
    assert log.action.tolist() == [log.catalog.arm("sms", 9), log.catalog.arm("fax", 20), log.catalog.null_arm]


def valid_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "decision_id": ["d0", "d1", "d2", "d3"],
        "timestamp": ["2026-03-01T08:00:00Z"] * 4,
        "region": ["NA", "EU", "EU", "NA"],
        "channel": ["email", "sms", "none", "push"],
        "hour": [9, 20, None, 7],
        "propensity": [0.25, 0.5, 1.0, 0.125],
        "reward": [1.0, 0.0, 0.0, 1.0],
    })


def _set(column: str, row: int, value: object) -> Change:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return change


def _drop(*columns: str) -> Change:
    return lambda frame: frame.drop(columns=list(columns))


def _with_action(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(action=[0, 1, 2, 3])


INVALID_LOGS = [
    pytest.param(_set("propensity", 2, 0.0), "column 'propensity', row 2: must lie in (0, 1]; got 0.0", id="zero-p"),
    pytest.param(_set("propensity", 1, 1.5), "column 'propensity', row 1: must lie in (0, 1]; got 1.5", id="big-p"),
    pytest.param(_set("propensity", 3, "high"), "column 'propensity', row 3: must lie in (0, 1]; got 'high'",
                 id="text-p"),
    pytest.param(_set("reward", 1, None), "column 'reward', row 1: must be finite; got nan", id="empty-reward"),
    pytest.param(_set("reward", 0, "inf"), "column 'reward', row 0: must be finite; got inf", id="inf-reward"),
    pytest.param(_set("channel", 3, "fax"), f"column 'channel', row 3: must be a channel of the catalog ({CHANNELS}); "
                 "got 'fax'", id="unknown-channel"),
    pytest.param(_set("hour", 0, 24), "column 'hour', row 0: must be an integer hour in [0, 24); got 24.0",
                 id="hour-24"),
    pytest.param(_set("hour", 1, 7.5), "column 'hour', row 1: must be an integer hour in [0, 24); got 7.5",
                 id="half-hour"),
    pytest.param(_set("decision_id", 2, "d1"), "column 'decision_id', row 2: must be unique (the id appears in an "
                 "earlier row); got 'd1'", id="duplicate-id"),
    pytest.param(_set("decision_id", 3, None), "column 'decision_id', row 3: must not be empty; got nan",
                 id="empty-id"),
    pytest.param(_set("region", 1, "APAC"), "column 'region', row 1: must be one of the catalog's regions (NA, EU); "
                 "got 'APAC'", id="unknown-region"),
    pytest.param(_set("timestamp", 0, "yesterday"), "column 'timestamp', row 0: must be an ISO 8601 date-time; "
                 "got 'yesterday'", id="bad-timestamp"),
    pytest.param(_drop("propensity"), f"column 'propensity' is missing; {REQUIRED}", id="no-propensity"),
    pytest.param(_drop("decision_id"), f"column 'decision_id' is missing; {REQUIRED}", id="no-id"),
    pytest.param(_drop("hour"), f"column 'hour' is missing; {REQUIRED}", id="no-hour"),
    pytest.param(_drop("channel", "hour"), f"column 'action' is missing; {REQUIRED}", id="no-action"),
    pytest.param(_with_action, "give either column 'action' or columns 'channel' and 'hour', not both",
                 id="action-and-channel"),
    pytest.param(lambda f: _with_action(_drop("channel", "hour")(f)).assign(action=[0, 1, 169, 3]),
                 "column 'action', row 2: must be an arm id of the catalog in [0, 169); got 169", id="arm-range"),
    pytest.param(lambda f: _with_action(_drop("channel", "hour")(f)).assign(action=[0, 1.5, 2, 3]),
                 "column 'action', row 1: must be an arm id of the catalog in [0, 169); got 1.5", id="arm-fraction"),
]


@pytest.mark.parametrize("change, msg", INVALID_LOGS)
def test_read_logs_names_file_column_row_and_rule(tmp_path: Path, change: Change, msg: str) -> None:
    path = tmp_path / "logs.csv"
    change(valid_frame()).to_csv(path, index=False)
    with pytest.raises(ValueError, match=f"^{re.escape(f'logs.csv: {msg}')}$"):
        read_logs(path, CATALOG)


def test_parquet_errors_name_the_file_too(tmp_path: Path) -> None:
    path = tmp_path / "logs.parquet"
    _set("propensity", 2, 0.0)(valid_frame()).astype({"propensity": float}).to_parquet(path)
    msg = "logs.parquet: column 'propensity', row 2: must lie in (0, 1]; got 0.0"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        read_logs(path, CATALOG)


def test_valid_frame_reads(tmp_path: Path) -> None:
    path = tmp_path / "logs.csv"
    valid_frame().to_csv(path, index=False)
    log = read_logs(path, CATALOG)
    assert log.action.tolist() == [CATALOG.arm("email", 9), CATALOG.arm("sms", 20), CATALOG.null_arm,
                                   CATALOG.arm("push", 7)]
    assert list(log.context.columns) == ["region"]


def test_read_logs_rejects_bad_paths(tmp_path: Path) -> None:
    text = tmp_path / "logs.txt"
    with pytest.raises(ValueError, match=re.escape(f"log file {str(text)!r} must end in .parquet or .csv; got '.txt'")):
        read_logs(text)
    absent = tmp_path / "absent.csv"
    with pytest.raises(FileNotFoundError, match=re.escape(f"log file {str(absent)!r} does not exist")):
        read_logs(absent)


INVALID_CONTAINERS = [
    pytest.param({"propensity": [0.5]}, "`propensity` must have shape (2,) like `action`; got (1,)", id="length"),
    pytest.param({"n_actions": 3, "action_names": ("a", "b")},
                 "the size of the action set is given inconsistently: len(action_names)=2, n_actions=3", id="names"),
    pytest.param({"context": pd.DataFrame({"reward": [1, 2]})},
                 "`context` must not use the reserved column names ['reward']; reserved: decision_id, timestamp, "
                 "action, channel, hour, propensity, reward, cost, allowed_arms, support_size, epsilon, customer, "
                 "group, pre_engagement, model_agrees, model_propensity, model_sent_probability", id="reserved"),
    pytest.param({"action": [0, -1]}, "column 'action', row 1: must be an action id in [0, 1); got -1",
                 id="negative-action"),
]


@pytest.mark.parametrize("change, msg", INVALID_CONTAINERS)
def test_container_rejects_bad_values(change: dict, msg: str) -> None:
    kwargs = {"action": [0, 1], "propensity": [0.5, 0.5], "reward": [1.0, 0.0], **change}
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        LoggedFeedback(**kwargs)
