"""One home for every default path (``SENDWISE_HOME``), and quiet libraries unless asked (``SENDWISE_LOG_LEVEL``)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sendwise.cli.main import main
from sendwise.cli.where import announce
from sendwise.models import configure_verbosity, sendwise_home, tracking_uri
from sendwise.server.settings import Settings


@pytest.fixture
def clean_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No verbosity variable set, and each one and MLflow's logger level restored after the test."""
    for name in ("SENDWISE_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"):
        monkeypatch.setenv(name, "")  # recorded, so that what the code sets is undone
        monkeypatch.delenv(name)
    logger = logging.getLogger("mlflow")
    monkeypatch.setattr(logger, "level", logger.level)


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_mlflow_env: None) -> tuple[Path, Path]:
    """An empty working directory and a home elsewhere; no variable that would override either."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("SENDWISE_HOME", str(home))
    for name in ("MLFLOW_TRACKING_URI", "SENDWISE_STATE_DIR", "SENDWISE_STATE_URL"):
        monkeypatch.delenv(name, raising=False)
    return cwd, home


def test_the_home_is_dot_sendwise_of_the_working_directory_unless_the_variable_moves_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SENDWISE_HOME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert (sendwise_home().root, sendwise_home().source) == (tmp_path / ".sendwise", "default")
    monkeypatch.setenv("SENDWISE_HOME", "elsewhere")
    home = sendwise_home()
    assert (home.root, home.source) == (tmp_path / "elsewhere", "SENDWISE_HOME")
    assert (home.runs, home.tune, home.compare_plot) == (home.root / "runs", home.root / "tune",
                                                         home.root / "compare.png")
    assert tracking_uri() == f"sqlite:///{tmp_path}/elsewhere/mlflow.db"
    assert home.describe() == f"home: {tmp_path}/elsewhere (SENDWISE_HOME)"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking_uri() == "http://tracking.example:5000"
    assert tracking_uri("sqlite:///given.db") == "sqlite:///given.db"


def test_the_server_keeps_its_state_in_the_home_unless_told_otherwise(places: tuple[Path, Path],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _, home = places
    assert Settings().state_path == home / "state.db"
    monkeypatch.setenv("SENDWISE_STATE_DIR", "/srv/sendwise")
    assert Settings().state_path == Path("/srv/sendwise/state.db")


def test_commands_with_a_home_write_nothing_in_the_working_directory(
        places: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cwd, home = places
    assert main(["simulate", "--policies", "ts", "--customers", "200", "--days", "2", "--seeds", "1",
                 "--no-progress"]) == 0
    (run,) = (home / "runs").iterdir()
    assert capsys.readouterr().err.splitlines()[0] == (
        f"home: {home} (SENDWISE_HOME); out: {run}; tracking: sqlite:///{home}/mlflow.db")
    assert main(["compare"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == (
        f"home: {home} (SENDWISE_HOME); tracking: sqlite:///{home}/mlflow.db; plot: {home}/compare.png")
    assert main(["export-logs", "--out", str(home / "logs.csv")]) == 2
    assert f"state DB '{home}/state.db' does not exist" in capsys.readouterr().err
    assert (run / "result.json").is_file() and (home / "compare.png").is_file()
    assert {p.name for p in home.iterdir()} >= {"mlflow.db", "mlartifacts", "runs", "compare.png"}
    experiment = MlflowClient(f"sqlite:///{home}/mlflow.db").get_experiment_by_name("sendwise-world-seed")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert list(cwd.iterdir()) == []


def test_the_line_about_places_hides_passwords(places: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, home = places
    announce(tracking="postgresql://ml:s3cret@db.example:5432/mlflow", state="redis://:pw@cache:6379/0", out=None)
    assert capsys.readouterr().err == (f"home: {home} (SENDWISE_HOME); tracking: postgresql://ml:***@db.example:5432"
                                       "/mlflow; state: redis://:***@cache:6379/0\n")


def test_mlflow_is_quiet_by_default(clean_mlflow_env: None) -> None:
    assert configure_verbosity() == "warning"
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert logging.getLogger("mlflow").getEffectiveLevel() == logging.WARNING


def test_a_level_the_user_gave_mlflow_is_kept(clean_mlflow_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "info")
    configure_verbosity()
    assert logging.getLogger("mlflow").getEffectiveLevel() == logging.INFO


def test_verbose_leaves_mlflow_as_it_is_and_tells_child_processes(clean_mlflow_env: None) -> None:
    logging.getLogger("mlflow").setLevel(logging.INFO)
    assert configure_verbosity(verbose=True) == "debug"
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ and "MLFLOW_LOGGING_LEVEL" not in os.environ
    assert os.environ["SENDWISE_LOG_LEVEL"] == "debug"
    assert configure_verbosity() == "debug"  # e.g. the server's model loader, later in the same process
    assert logging.getLogger("mlflow").getEffectiveLevel() == logging.INFO


def test_an_unknown_log_level_is_a_clear_error(places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SENDWISE_LOG_LEVEL", "loud")
    message = "SENDWISE_LOG_LEVEL must be one of debug, info, warning, error; got 'loud'"
    with pytest.raises(ValueError, match=re.escape(message)):
        configure_verbosity()
    assert main(["compare"]) == 2
    assert f"sendwise compare: error: {message}" in capsys.readouterr().err
