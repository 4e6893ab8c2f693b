"""``sendwise tune``: tune a policy's hyper-parameters by simulation with Ray Tune; print the trials and the best."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

from sendwise.models import sendwise_home, tracking_uri

from .where import add_tracking_uri, announce


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune", help="tune a policy's hyper-parameters by simulation (Ray Tune; needs the ray extra)",
        description="Draw random configurations of a policy's hyper-parameters, simulate each on the same seeds "
                    "as a Ray Tune trial, and keep the best by the mean of a total across seeds. Every trial is "
                    "an MLflow child run; the best configuration is written to best.json, simulated again, "
                    "tracked and registered (no alias moves: promote it with `sendwise promote`).")
    parser.add_argument("--world", default="seed", help="world name or path to a world .toml file (default: seed)")
    parser.add_argument("--policy", default="hier_ts", help="policy to tune (default hier_ts)")
    parser.add_argument("--search", required=True, metavar="SPACE",
                        help="search space: name=lo..hi[,log] (floats) or name=a|b|c (choices), joined by ';', "
                             "e.g. 'prior_strength=1..200,log;epsilon=0.001..0.05,log'")
    parser.add_argument("--trials", type=int, default=20, help="configurations to try (default 20)")
    parser.add_argument("--metric", default="net_value_last14",
                        help="total to optimise, mean across seeds (default net_value_last14; regret, cost and "
                             "unsubscribes are minimised, the others maximised)")
    parser.add_argument("--customers", type=int, default=2_000, help="customers in the world (default 2000)")
    parser.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds per trial, 0..N-1 (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw of configurations (default 0)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to use, e.g. auto or ray://head:10001 (default: start a local Ray)")
    parser.add_argument("--jobs", type=int, default=None, help="CPUs of a local Ray (default all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for Ray Tune's files, best.json and the best policy's states "
                             "(default <home>/tune/<timestamp>)")
    add_tracking_uri(parser)
    parser.add_argument("--name", default="sendwise-policy", help="registered model name (default %(default)s)")
    parser.add_argument("--no-register", action="store_true", help="do not register the best policy")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}")
    from sendwise.models.mlops.tuning import BEST_FILE, tune_policy  # MLflow and Ray load only when used

    out_dir = args.out or sendwise_home().tune / datetime.now().strftime("%Y%m%d-%H%M%S")
    announce(out=out_dir, tracking=tracking_uri(args.tracking_uri))
    start = time.perf_counter()
    result = tune_policy(args.world, args.policy, args.search, n_trials=args.trials, metric=args.metric,
                         n_customers=args.customers, n_days=args.days, seeds=range(args.seeds), out_dir=out_dir,
                         address=args.address, num_cpus=args.jobs, random_state=args.seed,
                         tracking_uri=args.tracking_uri, register=not args.no_register, model_name=args.name)
    elapsed = time.perf_counter() - start
    print(f"\ntuned {result.policy!r} on world {result.world!r}: {len(result.trials)} trials, "
          f"{args.customers:,} customers x {args.days} days, seeds 0..{args.seeds - 1}, "
          f"{result.metric} ({result.mode}imised), {elapsed:.1f} s\n")
    print(result.format_table())
    print(f"\nbest: trial {result.best.number}, {result.metric} = {result.best.metrics[result.metric]:,.6g}")
    print("  " + ", ".join(f"{name}={value:.6g}" if isinstance(value, float) else f"{name}={value}"
                           for name, value in result.params.items()))
    print(f"best configuration: {result.out_dir / BEST_FILE}")
    print(f"MLflow: tuning run {result.run_id} (one child run per trial)")
    if result.registered is not None:
        name, version = result.registered
        print(f"registered {name} version {version}; promote it with: sendwise promote --version {version}")
    return 0
