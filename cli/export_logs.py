"""``sendwise export-logs``: the server's decision log with outcomes, as a CSV or Parquet bandit log."""

from __future__ import annotations

import argparse
from pathlib import Path

from .where import announce


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-logs", help="write the server's closed decisions with outcomes and propensities (CSV or Parquet)",
        description="Write every decision whose attribution window has closed, with its outcomes, its logged "
                    "propensity and the options it was chosen from, as a log `sendwise evaluate --logs` reads "
                    "(see docs/logged-data.md). Decisions still inside their window are left out, so a new "
                    "server exports nothing until its first windows close.")
    parser.add_argument("--out", type=Path, required=True, help="output file; .csv or .parquet")
    parser.add_argument("--state-url", default=None,
                        help="sqlite:///path or redis://host:port/db of the state (default: SENDWISE_STATE_URL, "
                             "else <state_dir>/state.db, the state folder defaulting to the sendwise home)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sendwise.models.ope.logged import write_logs
    from sendwise.server.app import open_store
    from sendwise.server.export import decision_log
    from sendwise.server.settings import Settings

    settings = Settings() if args.state_url is None else Settings(state_url=args.state_url)
    announce(state=settings.redis_url or settings.state_path, out=args.out)
    if settings.redis_url is None and not settings.state_path.is_file():
        raise FileNotFoundError(f"state DB {str(settings.state_path)!r} does not exist; has the server run here?")
    store = open_store(settings)
    try:
        log = decision_log(store)
    finally:
        store.close()
    write_logs(log, args.out)
    print(f"wrote {log.n_rounds} decisions to {args.out}")
    return 0
