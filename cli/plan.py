"""``sendwise plan``: when does each costly channel pay its fixed monthly cost? A table, JSON and a plot."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from sendwise.models import load_world
from sendwise.models.sim.plan import DEFAULT_POLICY, PlanResult, parse_maus, plan_channels, plot_plan
from sendwise.models.tables import render_table

from .where import add_state_url, server_state


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan", help="break-even MAU of each channel with a fixed monthly cost (SMS, WhatsApp)",
        description="For each channel with a fixed monthly cost, simulate the default policy with and without "
                    "it; print net value per month at each MAU, the fixed cost, the difference net of it and the "
                    "break-even MAU (mean and 95% interval across seeds); write JSON and a PNG plot. With --served, "
                    "the same from the served model's learned posterior over the server's own logged decisions "
                    "(median and 95% credible interval over posterior draws).")
    parser.add_argument("--world", default="seed", help="world name or path to a world .toml file (default: seed)")
    parser.add_argument("--mau", default="5000,50000,500000",
                        help="comma-separated monthly active users to plan for (default 5000,50000,500000)")
    parser.add_argument("--channels", default=None,
                        help="comma-separated channels to plan for (default: every channel with a fixed monthly "
                             "cost in the world)")
    simulated = parser.add_argument_group("simulated plan (the default)")
    simulated.add_argument("--policy", default=None, help=f"policy to simulate (default {DEFAULT_POLICY})")
    simulated.add_argument("--customers", type=int, default=None,
                           help=f"customers simulated; their per-customer values are scaled to each MAU "
                                f"(default {SIMULATED['customers']})")
    simulated.add_argument("--days", type=int, default=None,
                           help=f"simulated days, converted to a 30-day month (default {SIMULATED['days']})")
    simulated.add_argument("--seeds", type=int, default=None,
                           help=f"number of seeds, 0..N-1 (default {SIMULATED['seeds']})")
    simulated.add_argument("--jobs", type=int, default=None, help="parallel processes (default 1)")
    served = parser.add_argument_group("served plan")
    served.add_argument("--served", action="store_true",
                        help="plan from the served model (SENDWISE_MODEL_URI, else the world's prior) caught up with "
                             "the store's loop inputs, over the store's closed decisions; the world's fixed costs "
                             "come from SENDWISE_WORLD (--world is not used)")
    add_state_url(served)
    served.add_argument("--draws", type=int, default=400, help="posterior draws for the interval (default 400)")
    parser.add_argument("--json", type=Path, default=None, help="write the plan as JSON to this file")
    parser.add_argument("--out", type=Path, default=None, help="write the plot to this PNG file")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


SIMULATED = {"policy": DEFAULT_POLICY, "customers": 20_000, "days": 30, "seeds": 5, "jobs": 1}


def run(args: argparse.Namespace) -> int:
    maus = parse_maus(args.mau)
    channels = None if args.channels is None else [c.strip() for c in args.channels.split(",") if c.strip()]
    given = [f"--{name}" for name in SIMULATED if getattr(args, name) is not None]
    if args.served:
        if given:
            raise ValueError(f"{', '.join(given)} set(s) up a simulation; a --served plan reads the server's store")
        plan = _served(args, maus, channels)
    else:
        options = {name: SIMULATED[name] if getattr(args, name) is None else getattr(args, name) for name in SIMULATED}
        if options["seeds"] < 1:
            raise ValueError(f"--seeds must be >= 1; got {options['seeds']}")
        if options["jobs"] < 1:
            raise ValueError(f"--jobs must be >= 1; got {options['jobs']}")
        plan = plan_channels(load_world(args.world), maus, channels=channels, policy=options["policy"],
                             n_customers=options["customers"], n_days=options["days"],
                             seeds=range(options["seeds"]), n_jobs=options["jobs"], progress=not args.no_progress)
    print(format_plan(plan))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(plan.to_dict(), indent=1))
        print(f"\nJSON: {args.json}")
    if args.out is not None:
        print(f"plot: {plot_plan(plan, args.out)}")
    return 0


def _served(args: argparse.Namespace, maus: list[int], channels: list[str] | None) -> PlanResult:
    """The served model's plan, read from the store the settings (or --state-url) name."""
    from sendwise.server.planning import served_plan

    with server_state(args.state_url) as (settings, store):
        return served_plan(settings, store, maus, channels=channels, n_draws=args.draws)


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
    notes = [f"world {plan.world!r}: {plan.scaling}", plan.interval]
    if unbounded:
        notes.append("inf: the channel's gain (or the end of its interval) is not positive, so no size pays its cost")
    return "\n".join([*notes, "", summary, "", "net value per month (USD) by MAU", by_mau])
