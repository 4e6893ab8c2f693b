"""Budget pacing on the seed world: an SMS budget of half what an unconstrained run spends.

One run of the product's default policy (``hier_ts``) without a budget measures its SMS spend per
30-day month; the budget is half of that (the mean over seeds). Then, on the same seeds and customers,
three rules keep to that budget:

- ``paced``: the ``Pacer``'s cost multiplier, moved each day by the dual update, and each day's batch
  held to one day of even pace ahead of the line (the product's rule);
- ``paced between days only``: the dual update alone, without the limit within a day's batch;
- ``stop when spent``: SMS at its plain cost until the month's budget is gone, then none;
- ``fixed multiplier``: SMS priced at a constant (unconstrained spend / budget = 2) times its cost, and
  switched off if the budget is gone all the same.

Checked, as issue 19 states them, for the paced rule in every month and seed: month-end SMS spend within
2% of the budget; each of the month's four 7-day weeks within ±15% of the even pace (budget × 7/30);
and more net value (clicks and unsubscribes valued, every message cost paid) than each naive rule,
paired by seed (mean difference and 95% interval). The spend checks are repeated from the second month
on: the first month starts from a cold start at multiplier 1, when the policy explores SMS hardest.

    python benchmarks/budgets.py [--customers 20000] [--days 60] [--seeds 3] [--jobs 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sendwise.models import load_world
from sendwise.models.intervals import mean_interval, seeds_caption
from sendwise.models.policies import Learner, Pacer, make_world_policy
from sendwise.models.policies.pacing import DEFAULT_LEARNING_RATE
from sendwise.models.sim.simulate import run_loop
from sendwise.models.tables import render_table

CHANNEL = "sms"
POLICY = "hier_ts"
DAYS_PER_MONTH, DAYS_PER_WEEK, WEEKS_PER_MONTH = 30, 7, 4
MONTH_TOLERANCE, WEEK_TOLERANCE = 0.02, 0.15
FIXED_MULTIPLIER = 2.0  # unconstrained spend / budget
RULES: dict[str, dict[str, float | None] | None] = {
    "unconstrained": None,
    "paced": {"learning_rate": DEFAULT_LEARNING_RATE, "multiplier": 1.0},
    "paced between days only": {"learning_rate": DEFAULT_LEARNING_RATE, "multiplier": 1.0, "ahead_hours": None},
    "stop when spent": {"learning_rate": 0.0, "multiplier": 1.0, "ahead_hours": None},
    "fixed multiplier": {"learning_rate": 0.0, "multiplier": FIXED_MULTIPLIER, "ahead_hours": None},
}


def run_rule(rule: str, budget: float, seed: int, n_customers: int, n_days: int) -> dict[str, Any]:
    """One rule on one seed: daily SMS spend and net value, and the total net value."""
    world = load_world("seed")
    options = RULES[rule]
    pacer = None if options is None else Pacer(world.catalog, {CHANNEL: budget}, **options)
    learner = Learner(make_world_policy(POLICY, world, seed=seed), pacer=pacer)
    run = run_loop(world, learner, n_customers=n_customers, n_days=n_days, seed=seed, name=rule)
    return {"rule": rule, "seed": seed, "spend": run.daily[f"cost_{CHANNEL}"].tolist(),
            "net_value": run.totals["net_value"],
            "multiplier": None if pacer is None else float(pacer.multiplier[world.catalog.channel_index(CHANNEL)])}


def run_all(rules: list[str], budget: float, seeds: list[int], n_customers: int, n_days: int,
            jobs: int) -> list[dict[str, Any]]:
    """Every rule × seed, in ``jobs`` processes, with a progress bar over runs."""
    jobs_list = [(rule, budget, seed, n_customers, n_days) for rule in rules for seed in seeds]
    with tqdm(total=len(jobs_list), desc=f"{', '.join(rules)}", unit="run") as bar:
        if jobs == 1:
            results = []
            for job in jobs_list:
                results.append(run_rule(*job))
                bar.update(1)
            return results
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("forkserver")) as pool:
            futures = [pool.submit(run_rule, *job) for job in jobs_list]
            for future in futures:
                future.add_done_callback(lambda _: bar.update(1))
            return [f.result() for f in futures]


def month_figures(spend: np.ndarray, budget: float) -> list[dict[str, float]]:
    """Per whole month of ``spend`` (daily): its total vs budget, and its worst week vs even pace."""
    week_pace = budget * DAYS_PER_WEEK / DAYS_PER_MONTH
    months = []
    for start in range(0, spend.size - DAYS_PER_MONTH + 1, DAYS_PER_MONTH):
        month = spend[start:start + DAYS_PER_MONTH]
        weeks = month[:WEEKS_PER_MONTH * DAYS_PER_WEEK].reshape(WEEKS_PER_MONTH, DAYS_PER_WEEK).sum(axis=1)
        deviation = weeks / week_pace - 1.0
        months.append({"spend": float(month.sum()), "vs_budget": float(month.sum() / budget - 1.0),
                       "worst_week_vs_pace": float(deviation[np.argmax(np.abs(deviation))])})
    return months


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=60, help="whole 30-day months are checked (default 60)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", default=None, help="write every figure and check to this file")
    args = parser.parse_args(argv)
    if args.days < DAYS_PER_MONTH or args.seeds < 1 or args.customers < 1 or args.jobs < 1:
        raise SystemExit(f"--days must be >= {DAYS_PER_MONTH}; --seeds, --customers and --jobs >= 1")
    seeds = list(range(args.seeds))
    free = run_all(["unconstrained"], 0.0, seeds, args.customers, args.days, args.jobs)
    monthly = [sum(r["spend"]) * DAYS_PER_MONTH / args.days for r in free]
    budget = 0.5 * float(np.mean(monthly))
    runs = free + run_all([r for r in RULES if r != "unconstrained"], budget, seeds, args.customers, args.days,
                          args.jobs)
    by_rule = {rule: [r for r in runs if r["rule"] == rule] for rule in RULES}
    paced_value = np.array([r["net_value"] for r in by_rule["paced"]])
    rows, checks, report = [], [], {"budget_per_month": budget, "unconstrained_per_month": monthly, "rules": {}}
    for rule, group in by_rule.items():
        months = [month_figures(np.array(r["spend"]), budget) for r in group]
        spend = np.array([[m["spend"] for m in ms] for ms in months])
        worst = max((m["worst_week_vs_pace"] for ms in months for m in ms), key=abs)
        value = np.array([r["net_value"] for r in group])
        gap = None if rule == "paced" else tuple(float(v) for v in mean_interval(paced_value - value))
        rows.append([rule, *(tuple(float(v) for v in mean_interval(spend[:, k])) for k in range(spend.shape[1])),
                     f"{max((m['vs_budget'] for ms in months for m in ms), key=abs):+.1%}", f"{worst:+.1%}",
                     tuple(float(v) for v in mean_interval(value)), gap])
        report["rules"][rule] = {"months": months, "daily_spend": [r["spend"] for r in group],
                                 "net_value": value.tolist(), "paced_minus_rule": gap,
                                 "final_multiplier": [r["multiplier"] for r in group]}
    for first, label in ((0, "every month"), (1, "from month 2")):
        paced_months = [m for ms in report["rules"]["paced"]["months"] for m in ms[first:]]
        if not paced_months:
            continue
        checks.append([f"{label}: month-end spend within 2% of budget",
                       max(abs(m["vs_budget"]) for m in paced_months) <= MONTH_TOLERANCE])
        checks.append([f"{label}: every week within ±15% of even pace",
                       max(abs(m["worst_week_vs_pace"]) for m in paced_months) <= WEEK_TOLERANCE])
    for rule in ("stop when spent", "fixed multiplier"):
        checks.append([f"more net value than {rule!r}", report["rules"][rule]["paced_minus_rule"][0] > 0])
    report["checks"] = {name: bool(ok) for name, ok in checks}
    n_months = args.days // DAYS_PER_MONTH
    print(f"seed world, {POLICY}, {args.customers:,} customers x {args.days} days; SMS budget "
          f"${budget:,.2f} per month = half the unconstrained run's ${np.mean(monthly):,.2f}")
    print(seeds_caption(len(seeds)) + "\n")
    print(render_table(["rule", *(f"SMS spend, month {k + 1}" for k in range(n_months)), "worst month vs budget",
                        "worst week vs pace", "net value", "paced minus rule"], rows))
    print()
    print(render_table(["check (paced rule, every seed)", "result"],
                       [[name, "pass" if ok else "FAIL"] for name, ok in checks]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
        print(f"\nJSON: {args.json}")
    return 0  # the checks are in the table and the JSON, as in the other benchmarks


if __name__ == "__main__":
    sys.exit(main())
