"""``sendwise simulate``: run policies against a simulated world, print a table, write JSON and plots."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sendwise.models import (
    OBJECTIVES,
    PLAYBOOK_POLICIES,
    POLICIES,
    REVENUE,
    Assignment,
    Experiment,
    load_world,
    sendwise_home,
    tracking_uri,
)
from sendwise.models.intervals import seeds_caption
from sendwise.models.sim.distributed import simulate_on_ray
from sendwise.models.sim.simulate import SimulationResult, simulate
from sendwise.models.tables import render_table

from .where import add_tracking_uri, announce

PREFERRED_POLICIES = ("ts", "hier_ts", "user_heuristic", "static", "egreedy", "oracle")
MAIN_COLUMNS = (("net value", "net_value"), ("clicks", "clicks"), ("unsubscribes", "unsubscribes"),
                ("cost", "cost"), ("regret vs oracle", "regret"), ("net value, last 14 days", "net_value_last14"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate", help="run policies against a simulated world and compare them",
        description="Run policies against a simulated world; print net value, clicks, cost by channel, "
                    "unsubscribes and regret (mean and 95% interval across seeds); write JSON and PNG plots.")
    parser.add_argument("--world", default="seed", help="world name or path to a world .toml file (default: seed)")
    parser.add_argument("--policies", default=None,
                        help=f"comma-separated policy names (default: the registered ones of "
                             f"{','.join(PREFERRED_POLICIES)})")
    parser.add_argument("--customers", type=int, default=10_000, help="customers in the world (default 10000)")
    parser.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    parser.add_argument("--seeds", type=int, default=5,
                        help="number of seeds, 0..N-1 (default 5; with fewer the intervals are rough)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="parallel processes (default 1); with --engine ray, the CPUs of a local Ray (default all)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="run seeds x policies in local processes or as Ray tasks (needs the ray extra; "
                             "default local)")
    parser.add_argument("--address", default=None,
                        help="with --engine ray: the Ray cluster to use, e.g. auto or ray://head:10001 "
                             "(default: start a local Ray)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for plots, policy states and result.json (default <home>/runs/<timestamp>)")
    parser.add_argument("--json", type=Path, default=None, help="also write the full result as JSON to this file")
    parser.add_argument("--param", action="append", default=[], metavar="POLICY.NAME=VALUE",
                        help="a policy parameter, e.g. ts.epsilon=0.02 (repeatable)")
    parser.add_argument("--log-decisions", type=Path, default=None, metavar="FILE",
                        help="write every settled decision with its exact propensity and allowed arms as logged "
                             "feedback for `sendwise evaluate` (.parquet or .csv; one file per policy and seed "
                             "when there are several)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="clicks",
                        help="what policies optimise: clicks (the world's [value]), or revenue (orders' value from "
                             "the world's [conversion], a click worth nothing itself; default clicks)")
    parser.add_argument("--budgets", default=None, metavar="JSON",
                        help='per-channel budgets per 30-day month, paced by a cost multiplier, e.g. '
                             '\'{"sms": {"per_month": 1000}}\' (default: none)')
    experiment = parser.add_argument_group(
        "experiment", "split the customers by a keyed hash into a holdout (no message), the policy under test and "
                      "a baseline; each logged decision names its customer and group, for `sendwise lift`")
    experiment.add_argument("--holdout-share", type=float, default=0.0, metavar="SHARE",
                            help="share of customers held out (default 0)")
    experiment.add_argument("--baseline-share", type=float, default=0.0, metavar="SHARE",
                            help="share of customers served by --baseline (default 0)")
    experiment.add_argument("--baseline", choices=PLAYBOOK_POLICIES, default="static",
                            help="static: the world's playbook; random_hour: its channel at a random allowed hour "
                                 "(default static)")
    experiment.add_argument("--shadow", action="store_true",
                            help="shadow mode: the baseline group is served the baseline, teaches the policy, and "
                                 "logs whether the policy would have chosen the same")
    experiment.add_argument("--pre-days", type=int, default=0, metavar="DAYS",
                            help="days of the playbook before the experiment, each customer's pre-period "
                                 "engagement for CUPED (default 0)")
    experiment.add_argument("--experiment-salt", default="sendwise", metavar="SALT",
                            help="salt of the assignment hash, one per experiment (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_tracking_uri(parser)
    parser.add_argument("--no-track", action="store_true", help="do not log the simulation to MLflow")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    world = load_world(args.world).with_objective(args.objective)
    policies = _policy_names(args.policies)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}")
    if args.address is not None and args.engine != "ray":
        raise ValueError("--address names a Ray cluster: use it with --engine ray")
    if args.budgets is not None and args.engine == "ray":
        raise ValueError("--budgets runs with --engine local")
    if args.log_decisions is not None and args.engine == "ray":
        raise ValueError("--log-decisions writes files where the simulation runs: use it with --engine local")
    out_dir = args.out or sendwise_home().runs / datetime.now().strftime("%Y%m%d-%H%M%S")
    announce(out=out_dir, tracking=None if args.no_track else tracking_uri(args.tracking_uri))
    start = time.perf_counter()
    options: dict[str, Any] = {"n_customers": args.customers, "n_days": args.days, "seeds": range(args.seeds),
                               "out_dir": out_dir, "progress": not args.no_progress,
                               "policy_params": _policy_params(args.param), "experiment": _experiment(args)}
    if args.engine == "ray":
        result = simulate_on_ray(world, policies, **options, address=args.address, num_cpus=args.jobs)
    else:
        result = simulate(world, policies, **options, n_jobs=args.jobs or 1, log_decisions=args.log_decisions,
                          budgets=args.budgets)
    elapsed = time.perf_counter() - start
    print(f"\nworld {world.name!r} ({world.path}): {args.customers:,} customers x {args.days} days, "
          f"seeds 0..{args.seeds - 1}, {elapsed:.1f} s; optimising {world.economics.describe(world.catalog)}\n")
    print(format_table(result))
    payload = json.dumps(result.to_dict(), indent=1)
    (out_dir / "result.json").write_text(payload)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(payload)
        print(f"\nJSON: {args.json}")
    print(f"plots: {', '.join(str(p) for p in result.plots)}")
    print(f"policy states, world copy and result.json: {out_dir}")
    if not args.no_track:
        from sendwise.models.mlops.tracking import log_simulation  # MLflow loads only when tracking

        run_id = log_simulation(result, tracking_uri=args.tracking_uri)
        print(f"MLflow parent run {run_id}: `sendwise compare` lists the runs, `sendwise promote --run RUN_ID` "
              "registers one")
    return 0


def format_table(result: SimulationResult) -> str:
    """Two tables, each cell ``mean [95% interval]`` across seeds (USD unless a count), one format per column."""
    channels = result.world.catalog.channels
    fixed = ", ".join(f"{c} ${v:,.0f}" for c, v in zip(channels, result.world.fixed_monthly_cost, strict=True) if v)
    by_policy = {p: f"${m['fixed_cost'][0]:,.0f}" for p, m in result.summary.items()}
    prorated = (f"every policy {next(iter(by_policy.values()))}" if len(set(by_policy.values())) == 1
                else ", ".join(f"{p} {v}" for p, v in by_policy.items()))
    return "\n".join([
        seeds_caption(len(result.seeds)),
        _table(result, MAIN_COLUMNS if REVENUE not in result.world.catalog.outcomes
               else (*MAIN_COLUMNS[:3], ("orders", "orders"), ("revenue", "revenue"), *MAIN_COLUMNS[3:])),
        "",
        "cost by channel (USD)",
        _table(result, tuple((c, f"cost_{c}") for c in channels)),
        "",
        f"fixed monthly costs, not in net value: {fixed}",
        f"prorated over the run for the channels each policy used: {prorated}",
    ])


def _table(result: SimulationResult, columns: tuple[tuple[str, str], ...]) -> str:
    rows = [[name, *(metrics[key] for _, key in columns)] for name, metrics in result.summary.items()]
    return render_table(["policy", *(title for title, _ in columns)], rows)


def _experiment(args: argparse.Namespace) -> Experiment | None:
    """The experiment the flags describe, or None when they describe none."""
    if not (args.holdout_share or args.baseline_share or args.shadow or args.pre_days):
        return None
    return Experiment(Assignment(salt=args.experiment_salt, holdout_share=args.holdout_share,
                                 baseline_share=args.baseline_share),
                      baseline=args.baseline, shadow=args.shadow, pre_days=args.pre_days)


def _policy_names(text: str | None) -> list[str]:
    if text is None:
        return [p for p in PREFERRED_POLICIES if p in POLICIES]
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown or not names:
        raise ValueError(f"unknown policy {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"known: {', '.join(sorted(POLICIES))}")
    return names


def _policy_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["ts.epsilon=0.02"]`` -> ``{"ts": {"epsilon": 0.02}}``; values are JSON, else plain strings."""
    params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        policy, dot, name = key.partition(".")
        if not (sep and dot and policy and name):
            raise ValueError(f"--param must look like POLICY.NAME=VALUE (e.g. ts.epsilon=0.02); got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(policy, {})[name] = value
    return params
