"""The ``sendwise`` console script: parses arguments, calls the layers below, prints.

Each sub-command lives in its own module with ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed namespace and returning an exit code.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from . import compare, demo, evaluate, export_logs, promote, serve, simulate, tune

COMMANDS = (demo, simulate, evaluate, compare, promote, serve, export_logs, tune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sendwise",
        description="Next best channel and send time: simulate, evaluate, compare, promote, serve.",
    )
    parser.add_argument("--version", action="version", version=f"sendwise {version('sendwise')}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"sendwise {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
