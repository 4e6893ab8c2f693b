"""``sendwise plan``: when does each costly channel pay its fixed monthly cost? A table, JSON and a plot."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from sendwise.models import load_world
from sendwise.models.intervals import seeds_caption
from sendwise.models.sim.plan import DEFAULT_POLICY, PlanResult, parse_maus, plan_channels, plot_plan
from sendwise.models.tables import render_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan", help="break-even MAU of each channel with a fixed monthly cost (SMS, WhatsApp)",
        description="For each channel with a fixed monthly cost, simulate the default policy with and without "
                    "it; print net value per month at each MAU, the fixed cost, the difference net of it and the "
                    "break-even MAU (mean and 95% interval across seeds); write JSON and a PNG plot.")
    parser.add_argument("--world", default="seed", help="world name or path to a world .toml file (default: seed)")
    parser.add_argument("--mau", default="5000,50000,500000",
                        help="comma-separated monthly active users to plan for (default 5000,50000,500000)")
    parser.add_argument("--channels", default=None,
                        help="comma-separated channels to plan for (default: every channel with a fixed monthly "
                             "cost in the world)")
    parser.add_argument("--policy", default=DEFAULT_POLICY, help=f"policy to simulate (default {DEFAULT_POLICY})")
    parser.add_argument("--customers", type=int, default=20_000,
                        help="customers simulated; their per-customer values are scaled to each MAU (default 20000)")
    parser.add_argument("--days", type=int, default=30, help="simulated days, converted to a 30-day month (default 30)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds, 0..N-1 (default 5)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="write the plan as JSON to this file")
    parser.add_argument("--out", type=Path, default=None, help="write the plot to this PNG file")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    maus = parse_maus(args.mau)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1; got {args.jobs}")
    channels = None if args.channels is None else [c.strip() for c in args.channels.split(",") if c.strip()]
    plan = plan_channels(load_world(args.world), maus, channels=channels, policy=args.policy,
                         n_customers=args.customers, n_days=args.days, seeds=range(args.seeds), n_jobs=args.jobs,
                         progress=not args.no_progress)
    print(format_plan(plan))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(plan.to_dict(), indent=1))
        print(f"\nJSON: {args.json}")
    if args.out is not None:
        print(f"plot: {plot_plan(plan, args.out)}")
    return 0


def format_plan(plan: PlanResult) -> str:
    """The break-even table, then net value per month by MAU; USD per month, ``mean [95% interval]``."""
    summary = render_table(
        ["channel", "fixed cost / month", "gain / customer / month", "break-even MAU"],
        [[c.channel, c.fixed_monthly_cost, c.gain_per_customer, c.break_even_mau] for c in plan.channels])
    by_mau = render_table(
        ["channel", "MAU", "net value with", "net value without", "fixed cost", "difference net of fixed"],
        [[c.channel, f"{m:,}", c.with_channel[m], c.without_channel[m], c.fixed_monthly_cost, c.net_of_fixed[m]]
         for c in plan.channels for m in plan.maus])
    unbounded = any(not math.isfinite(v) for c in plan.channels for v in c.break_even_mau)
    notes = [f"world {plan.world.name!r}: {plan.scaling}", seeds_caption(len(plan.seeds))]
    if unbounded:
        notes.append("inf: the channel's gain (or the end of its interval) is not positive, so no size pays its cost")
    return "\n".join([*notes, "", summary, "", "net value per month (USD) by MAU", by_mau])
