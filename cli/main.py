"""The ``sendwise`` console script: parses arguments, calls the layers below, prints.

Each sub-command lives in its own module with ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed namespace and returning an exit code. Every sub-command also
takes ``--verbose``: without it (or ``SENDWISE_LOG_LEVEL=debug``) the libraries below stay quiet.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from sendwise.models import configure_verbosity

from . import compare, demo, evaluate, export_logs, lift, plan, promote, serve, simulate, tune

COMMANDS = (demo, simulate, plan, evaluate, lift, compare, promote, serve, export_logs, tune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sendwise",
        description="Next best channel and send time: simulate, evaluate, prove the lift, compare, promote, serve.",
        epilog="Files go under the sendwise home <home>: $SENDWISE_HOME, else ./.sendwise of the working "
               "directory (the MLflow store <home>/mlflow.db unless $MLFLOW_TRACKING_URI is set, the server's "
               "state, simulation runs). Every command prints the paths it uses on its first line (stderr).",
    )
    parser.add_argument("--version", action="version", version=f"sendwise {version('sendwise')}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    for sub in subparsers.choices.values():
        sub.add_argument("--verbose", action="store_true",
                         help="show MLflow's INFO lines and download bars (as SENDWISE_LOG_LEVEL=debug does)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_verbosity(args.verbose)
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"sendwise {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
