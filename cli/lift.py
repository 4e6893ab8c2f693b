"""``sendwise lift``: what the model added over the holdout and the baseline, from a decision log."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

from sendwise.models import read_logs, tracking_uri
from sendwise.models.experiments import group_shares, lift_report
from sendwise.models.experiments.lift import LiftReport
from sendwise.models.tables import render_table

from .where import add_tracking_uri, announce


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lift", help="report the lift of the model over the holdout and the baseline from a decision log",
        description="Per group (holdout, model, baseline): customers, messages, cost, outcomes and value per "
                    "customer; the differences model - holdout and model - baseline with 95% intervals, plain "
                    "and CUPED-adjusted on each customer's pre-period engagement; the minimum detectable effect; "
                    "a sample-ratio-mismatch check of the split. The log needs customer and group columns "
                    "(`sendwise simulate --holdout-share ... --log-decisions FILE` writes them). Tracked as an "
                    "MLflow run unless --no-track.")
    parser.add_argument("--logs", type=Path, required=True, metavar="FILE", help="decision log, .parquet or .csv")
    parser.add_argument("--holdout-share", type=float, default=0.0, metavar="SHARE",
                        help="configured share of the holdout (default %(default)s)")
    parser.add_argument("--baseline-share", type=float, default=0.0, metavar="SHARE",
                        help="configured share of the baseline (default %(default)s); the model has the rest")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    add_tracking_uri(parser)
    parser.add_argument("--no-track", action="store_true", help="do not log the report to MLflow")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    shares = group_shares(args.holdout_share, args.baseline_share)  # bad shares fail before the log loads
    announce(logs=args.logs, tracking=None if args.no_track else tracking_uri(args.tracking_uri))
    log = read_logs(args.logs)
    if log.n_rounds == 0:
        raise ValueError(f"{args.logs} holds no decision: an experiment's log keeps only the days whose every "
                         "attribution window has closed (e-mail's is a week), so simulate more days than that")
    report = lift_report(log, shares)
    text = format_report(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    if not args.no_track:
        from sendwise.models.mlops.tracking import log_lift, resolve_tracking_uri  # MLflow loads only here

        params = {"logs": str(args.logs), "holdout_share": shares["holdout"], "baseline_share": shares["baseline"]}
        run_id = log_lift(report, dataset=args.logs.stem, params=params, text=text, tracking_uri=args.tracking_uri)
        print(f"tracked: MLflow run {run_id} in {resolve_tracking_uri(args.tracking_uri)} (skip with --no-track)")
    return 0


def format_report(report: LiftReport, metrics: Sequence[str] | None = None) -> str:
    """The groups, the differences (95% intervals; of ``metrics`` only, when given) and the split check."""
    outcomes = list(report.groups[0].outcomes) if report.groups else []
    groups = render_table(
        ["group", "customers", "messages", "cost", *outcomes, "value / customer"],
        [[g.group, float(g.customers), float(g.messages), g.cost, *(g.outcomes[o] for o in outcomes),
          g.per_customer["value"]] for g in report.groups])
    tables = []
    for metric in dict.fromkeys(d.metric for d in report.differences):
        if metrics is not None and metric not in metrics:
            continue
        header = [f"{metric} / customer", "estimate [95% interval]", "p", "MDE"]
        if report.cuped:
            header += ["CUPED [95% interval]", "CUPED MDE", "variance cut"]
        rows = []
        for d in (d for d in report.differences if d.metric == metric):
            row = [f"{d.treatment} - {d.control}", (d.estimate, d.low, d.high), f"{d.p_value:.2g}", d.mde]
            if report.cuped:
                row += [(d.cuped_estimate, d.cuped_low, d.cuped_high), d.cuped_mde, f"{d.variance_reduction:.1%}"]
            rows.append(row)
        tables.append(render_table(header, rows))
    srm = report.sample_ratio
    observed = ", ".join(f"{g} {n:,} ({srm.expected_share[g]:.0%} configured)" for g, n in srm.observed.items())
    verdict = (f"MISMATCH (p = {srm.p_value:.2g} < {srm.alpha:g}): the split is not the configured one; do not "
               "trust the differences until the cause is found" if srm.flagged
               else f"ok (chi-square p = {srm.p_value:.3g})")
    lines = [groups, "", "\n\n".join(tables) if tables else "no pair of groups to compare", "",
             f"sample ratio: {observed}: {verdict}"]
    if not report.cuped:
        lines.append("CUPED: the log has no pre_engagement for every customer")
    if report.shadow is not None:
        s = report.shadow
        lines.append(f"shadow mode: the model would have chosen the arm that was sent in {s.agreement:.1%} "
                     f"[{s.low:.1%}, {s.high:.1%}] of {s.decisions:,} decisions")
        if math.isfinite(s.model_value):
            own = (f"; the model group earned {s.model_group_value:.4f} per decision, measured"
                   if math.isfinite(s.model_group_value) else "")
            lines.append(f"shadow mode, off-policy (SNIPS, on the options the model shares with the baseline): "
                         f"{s.model_value:.4f} [{s.model_value_low:.4f}, {s.model_value_high:.4f}] per decision, "
                         f"against {s.logged_value:.4f} as served (weights' effective sample {s.overlap:.1%} of "
                         f"the rows){own}")
    return "\n".join(lines)
