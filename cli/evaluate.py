"""``sendwise evaluate``: what would a policy have earned on logged decisions? (IPS, SNIPS, DM, DR, replay, …)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sendwise.models import POLICIES, is_registry_uri
from sendwise.models.ope.estimators import ESTIMATORS
from sendwise.models.ope.evaluation import DEFAULT_ESTIMATORS, evaluate_logs
from sendwise.models.ope.spec import parse_estimators


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="estimate a policy's value off-line from logged decisions",
        description="Estimate what a policy would have earned on logged decisions (see docs/logged-data.md), "
                    "with a bootstrap interval, effective sample size and largest importance weight per estimator.",
    )
    parser.add_argument("--logs", required=True, type=Path, metavar="FILE",
                        help="logged decisions, .parquet or .csv")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--policy", metavar="REF",
                        help="a registered policy (models:/<name>@<alias>), a saved policy .npz, or a policy name "
                             "built with default parameters on the logs' "
                             f"catalog ({', '.join(sorted(POLICIES))})")
    target.add_argument("--target-probs", type=Path, metavar="FILE.npy",
                        help="the target's action probabilities instead of a policy, float (n_rounds, n_actions)")
    parser.add_argument("--estimators", default=",".join(DEFAULT_ESTIMATORS), metavar="SPECS",
                        help=f"comma-separated estimator specs, name or name(param=value,...), e.g. "
                             f"'ips(clip=10),snips,dr'; names: {', '.join(ESTIMATORS)} (default %(default)s)")
    parser.add_argument("--n-draws", type=int, default=1000,
                        help="Monte-Carlo draws per request for a policy's probabilities (default %(default)s)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default %(default)s)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the table as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random step (default %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    policy = args.policy
    if is_registry_uri(policy):  # MLflow loads only for a registered policy
        from sendwise.models.mlops.registry import load_registered_policy

        policy = load_registered_policy(policy, random_state=args.seed)[0]
    result = evaluate_logs(
        args.logs, policy=policy, target_probs=args.target_probs,
        estimators=parse_estimators(args.estimators),
        n_draws=args.n_draws, n_bootstrap=args.bootstrap, seed=args.seed, label=args.policy,
    )
    print(result.format_table())
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
