"""Every ``sendwise`` command explains itself in ``--help``, and its text prints as written."""

from __future__ import annotations

import argparse

import pytest

from sendwise.cli.main import build_parser


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
