"""Every ``sendwise`` command explains itself in ``--help``, and its text prints as written."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import uvicorn

from sendwise.cli.main import build_parser, main


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_each_command_has_a_description_and_no_escaped_percent(name: str) -> None:
    parser = subcommands()[name]
    assert parser.description, f"`sendwise {name} --help` has no description"
    text = parser.format_help()
    assert "%%" not in text, f"`sendwise {name} --help` prints a doubled percent sign:\n{text}"


def test_the_command_list_prints_single_percent_signs() -> None:
    text = " ".join(build_parser().format_help().split())  # argparse wraps lines
    assert "with 95% intervals" in text and "%%" not in text


@pytest.mark.parametrize("name", ["simulate", "evaluate", "compare", "promote", "serve", "tune", "demo", "lift"])
def test_every_command_that_touches_mlflow_takes_a_tracking_uri(name: str) -> None:
    options = {option for action in subcommands()[name]._actions for option in action.option_strings}
    assert "--tracking-uri" in options, f"`sendwise {name}` reads or writes MLflow but takes no --tracking-uri"


def test_serve_hands_its_tracking_uri_to_the_workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    started: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    monkeypatch.setenv("SENDWISE_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["serve", "--tracking-uri", uri, "--port", "0"]) == 0
    assert started["app"] == "sendwise.server.app:create_app"
    assert os.environ["MLFLOW_TRACKING_URI"] == uri, "uvicorn's workers inherit the environment, not arguments"
