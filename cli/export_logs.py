"""``sendwise export-logs``: the server's decision log with outcomes, as a CSV or Parquet bandit log."""

from __future__ import annotations

import argparse
from pathlib import Path

from .where import add_state_url, server_state


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-logs", help="write the server's closed decisions with outcomes and propensities (CSV or Parquet)",
        description="Write every decision whose attribution window has closed, with its outcomes, its logged "
                    "propensity and the options it was chosen from, as a log `sendwise evaluate --logs` reads "
                    "(see docs/logged-data.md). Decisions still inside their window are left out, so a new "
                    "server exports nothing until its first windows close.")
    parser.add_argument("--out", type=Path, required=True, help="output file; .csv or .parquet")
    add_state_url(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sendwise.models.ope.logged import write_logs
    from sendwise.server.export import decision_log

    with server_state(args.state_url, out=args.out) as (_, store):
        log = decision_log(store)
    write_logs(log, args.out)
    print(f"wrote {log.n_rounds} decisions to {args.out}")
    return 0
