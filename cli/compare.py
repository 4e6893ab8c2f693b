"""``sendwise compare``: the latest tracked simulation (or evaluation) per experiment, as a table and a plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from sendwise.models import sendwise_home, tracking_uri

from .where import add_tracking_uri, announce


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare the policies of the latest tracked runs, with 95%% intervals",
        description="Print, for the latest simulation or evaluation in each sendwise MLflow experiment (or the "
                    "one named), every policy's key metrics with their 95% intervals across seeds and its best "
                    "run (the one to promote), and draw them as bar charts.",
    )
    parser.add_argument("--experiment", metavar="NAME",
                        help="an MLflow experiment, e.g. sendwise-world-seed (default: every sendwise-* experiment)")
    add_tracking_uri(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="PNG",
                        help="where to write the comparison plot (default <home>/compare.png)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = args.out or sendwise_home().compare_plot
    announce(tracking=tracking_uri(args.tracking_uri), plot=out)
    from sendwise.models.mlops.compare import compare_latest, plot_comparison  # MLflow loads only when used

    comparisons = compare_latest(experiment=args.experiment, tracking_uri=args.tracking_uri)
    if not comparisons:
        print("no tracked runs yet: run `sendwise simulate` first")
        return 1
    for comparison in comparisons:
        print(comparison.format_table(), end="\n\n")
    print(f"wrote {plot_comparison(comparisons, out)}")
    return 0
