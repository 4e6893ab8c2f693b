"""``sendwise promote``: register a run's policy and point an alias (``champion``) at it, optionally gated."""

from __future__ import annotations

import argparse
from pathlib import Path

from sendwise.models import tracking_uri
from sendwise.models.ope.gate import DEFAULT_GATE_ESTIMATOR
from sendwise.models.ope.spec import parse_estimator

from .where import add_tracking_uri, announce


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "promote", help="register a run's policy and move the champion alias to it",
        description="Register the policy of a simulation run (one policy × seed; `sendwise compare` lists the "
                    "best run per policy) as a version of the registered model, or take an existing version, "
                    "and move the alias to it. With --gate, the alias moves only if the candidate's off-policy "
                    "lower 95% bound on --logs beats the current champion's estimate; otherwise it stays and "
                    "the exit code is 1.",
    )
    candidate = parser.add_mutually_exclusive_group(required=True)
    candidate.add_argument("--run", metavar="RUN_ID", help="MLflow run whose policy to register and promote")
    candidate.add_argument("--version", metavar="N", help="an existing version of the registered model")
    candidate.add_argument("--best", metavar="POLICY",
                           help="the best run of POLICY in the latest tracked simulation (the run `sendwise compare` "
                                "lists for it)")
    parser.add_argument("--experiment", metavar="NAME",
                        help="with --best: the MLflow experiment to look in (default: every sendwise-* experiment)")
    parser.add_argument("--name", default="sendwise-policy", help="registered model name (default %(default)s)")
    parser.add_argument("--alias", default="champion", help="alias to move (default %(default)s)")
    parser.add_argument("--gate", action="store_true", help="promote only if the off-policy gate on --logs passes")
    parser.add_argument("--logs", type=Path, metavar="FILE", help="logged decisions for the gate, .parquet or .csv")
    parser.add_argument("--estimator", default=DEFAULT_GATE_ESTIMATOR, metavar="SPEC",
                        help="off-policy estimator of the gate, a name or name(param=value,...) such as "
                             "'ips(clip=10)' (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the gate's random steps (default %(default)s)")
    add_tracking_uri(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.gate != (args.logs is not None):
        raise ValueError("--gate and --logs go together: the gate evaluates the policies on those logs")
    estimator = parse_estimator(args.estimator)  # a bad spec fails before MLflow loads
    announce(tracking=tracking_uri(args.tracking_uri), logs=args.logs)
    from sendwise.models.mlops.registry import promote  # MLflow loads only when used

    run_id = args.run if args.best is None else best_run(args.best, args.experiment, args.tracking_uri)
    outcome = promote(run_id=run_id, version=args.version, name=args.name, alias=args.alias, logs=args.logs,
                      estimator=estimator, seed=args.seed, tracking_uri=args.tracking_uri)
    for role, bounds in (("candidate", outcome.candidate), ("champion", outcome.champion)):
        if bounds is not None:
            print(f"{role:9} {outcome.estimator} {bounds[0]:.6g} [{bounds[1]:.6g}, {bounds[2]:.6g}]")
    if not outcome.promoted:
        print(f"not promoted: {outcome.reason}; @{outcome.alias} stays on version {outcome.previous}")
        return 1
    print(f"promoted: {outcome.name} version {outcome.version} is @{outcome.alias} "
          f"(was {outcome.previous or 'unset'}); {outcome.reason}")
    return 0


def best_run(policy: str, experiment: str | None, tracking_uri: str | None) -> str:
    """The run ``sendwise compare`` names as ``policy``'s best in the most recent simulation that has one."""
    from sendwise.models.mlops.compare import compare_latest
    from sendwise.models.mlops.tracking import SIMULATION

    comparisons = [c for c in compare_latest(experiment=experiment, tracking_uri=tracking_uri)
                   if c.kind == SIMULATION and policy in c.best_runs]
    if not comparisons:
        raise ValueError(f"no tracked, promotable run of {policy!r}: run `sendwise simulate --policies {policy}` "
                         f"first (without --no-track)")
    latest = max(comparisons, key=lambda c: c.started)
    print(f"best run of {policy}: {latest.best_runs[policy]} ({latest.experiment}, run {latest.run_id})")
    return latest.best_runs[policy]
