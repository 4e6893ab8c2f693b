"""``sendwise evaluate``: what would a policy have earned on logged decisions? (IPS, SNIPS, DM, DR, replay, …)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sendwise.models import POLICIES, is_registry_uri, tracking_uri
from sendwise.models.ope.datasets import load_hillstrom, load_obd
from sendwise.models.ope.estimators import ESTIMATORS
from sendwise.models.ope.evaluation import (
    DEFAULT_ESTIMATORS,
    DEFAULT_REFITS,
    EvaluationTable,
    evaluate_logs,
    evaluate_specs,
)
from sendwise.models.ope.logged import LoggedFeedback, read_logs
from sendwise.models.ope.spec import parse_estimators
from sendwise.models.ope.targets import DEFAULT_TEST_SIZE, TRAINED_MODELS, parse_targets

from .where import add_tracking_uri, announce

DATASETS = {"hillstrom": load_hillstrom, "obd": load_obd}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="estimate a policy's value off-line from logged decisions",
        description="Estimate what a policy would have earned on logged decisions (see docs/logged-data.md), "
                    "with a bootstrap interval, effective sample size and largest importance weight per estimator. "
                    "Each evaluation is tracked as an MLflow run unless --no-track.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--logs", type=Path, metavar="FILE", help="logged decisions, .parquet or .csv")
    source.add_argument("--dataset", choices=sorted(DATASETS),
                        help="a dataset shipped in the repository's data/ (or $SENDWISE_DATA_DIR): the Hillstrom "
                             "e-mail trial (visits) or the Open Bandit Dataset sample (clicks)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target", action="append", metavar="SPEC",
                        help="a target, repeatable, all in one table: 'always:<action name>', 'uniform', 'logged' "
                             "(the logging policy), 'trained' or 'trained:<model>' "
                             f"({', '.join(TRAINED_MODELS)}): a policy fitted on a training split of the logs "
                             "and, with every other target, evaluated on the held-out rounds")
    target.add_argument("--policy", metavar="REF",
                        help="a registered policy (models:/<name>@<alias>), a saved policy .npz, or a policy name "
                             "built with default parameters on the logs' "
                             f"catalog ({', '.join(sorted(POLICIES))})")
    target.add_argument("--target-probs", type=Path, metavar="FILE.npy",
                        help="the target's action probabilities instead of a policy, float (n_rounds, n_actions)")
    parser.add_argument("--estimators", default=",".join(DEFAULT_ESTIMATORS), metavar="SPECS",
                        help=f"comma-separated estimator specs, name or name(param=value,...), e.g. "
                             f"'ips(clip=10),snips,dr'; names: {', '.join(ESTIMATORS)} (default %(default)s)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="evaluate on N rounds drawn at random (seeded) from the logs, for a quick look")
    parser.add_argument("--test-size", type=float, default=DEFAULT_TEST_SIZE, metavar="SHARE",
                        help="share of rounds held out from a trained target's training (default %(default)s)")
    parser.add_argument("--n-draws", type=int, default=1000,
                        help="Monte-Carlo draws per request for a policy's probabilities (default %(default)s)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default %(default)s)")
    parser.add_argument("--refits", type=int, default=DEFAULT_REFITS,
                        help="resamples that refit the reward model, for the intervals of dm, dr and the other "
                             "model-based estimators (default %(default)s)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the table as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random step (default %(default)s)")
    add_tracking_uri(parser)
    parser.add_argument("--no-track", action="store_true", help="do not log the evaluation to MLflow")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    estimators = parse_estimators(args.estimators)  # bad input fails before any data loads
    targets = parse_targets(args.target) if args.target else None
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1; got {args.limit}")
    reads_registry = args.policy is not None and is_registry_uri(args.policy)
    announce(tracking=tracking_uri(args.tracking_uri) if reads_registry or not args.no_track else None)
    name = args.dataset or args.logs.stem
    settings = {"estimators": ",".join(e.spec for e in estimators), "seed": args.seed, "bootstrap": args.bootstrap,
                "refits": args.refits, **({"dataset": args.dataset} if args.dataset else {"logs": str(args.logs)})}
    if targets is not None:
        log = _limited(DATASETS[args.dataset]() if args.dataset else read_logs(args.logs), args.limit, args.seed)
        table = evaluate_specs(log, targets, logs=name, estimators=estimators, test_size=args.test_size,
                               n_bootstrap=args.bootstrap, n_refits=args.refits, seed=args.seed)
        settings |= {"targets": ",".join(t.label for t in targets), "rounds": log.n_rounds}
        if table.split is not None:
            settings |= {"split_train": table.split.n_train, "split_test": table.split.n_test}
        text, data = table.format_table(), table.to_dict()
    else:
        if args.dataset or args.limit is not None:
            raise ValueError("--policy and --target-probs evaluate a --logs file as a whole; with --dataset or "
                             "--limit give --target specs")
        result = _evaluate_policy(args, estimators)
        table = EvaluationTable((result,))
        settings |= {"targets": result.target, "rounds": result.n_rounds}
        text, data = result.format_table(), result.to_dict()
    print(text)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}")
    if not args.no_track:
        _track(table, name, settings, text, data, args.tracking_uri)
    return 0


def _evaluate_policy(args: argparse.Namespace, estimators: list[Any]) -> Any:
    """The evaluation of ``--policy`` or ``--target-probs`` on ``--logs``."""
    policy = args.policy
    if is_registry_uri(policy):  # MLflow loads only for a registered policy
        from sendwise.models.mlops.registry import load_registered_policy

        policy = load_registered_policy(policy, tracking_uri=args.tracking_uri, random_state=args.seed)[0]
    return evaluate_logs(args.logs, policy=policy, target_probs=args.target_probs, estimators=estimators,
                         n_draws=args.n_draws, n_bootstrap=args.bootstrap, n_refits=args.refits, seed=args.seed,
                         label=args.policy)


def _limited(log: LoggedFeedback, limit: int | None, seed: int) -> LoggedFeedback:
    """``limit`` rounds of ``log`` drawn without replacement (seeded), in their logged order; all without one."""
    if limit is None or limit >= log.n_rounds:
        return log
    return log.take(np.sort(np.random.default_rng(seed).choice(log.n_rounds, limit, replace=False)))


def _track(table: EvaluationTable, name: str, params: dict[str, Any], text: str, data: dict[str, Any],
           tracking_uri: str | None) -> None:
    """One MLflow run for this evaluation: the settings, every estimate and bound, the table as artifacts."""
    from sendwise.models.mlops.tracking import log_evaluation, resolve_tracking_uri  # MLflow loads only here

    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(tmp) / "evaluation.txt", Path(tmp) / "evaluation.json"]
        files[0].write_text(text + "\n")
        files[1].write_text(json.dumps(data, indent=2) + "\n")
        run_id = log_evaluation(table.bounds(), dataset=name, params=params, artifacts=files,
                                tracking_uri=tracking_uri)
    print(f"tracked: MLflow run {run_id} in {resolve_tracking_uri(tracking_uri)} (skip with --no-track)")
