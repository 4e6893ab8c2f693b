"""``sendwise demo``: the main job on the embedded defaults, end to end, in about a minute."""

from __future__ import annotations

import argparse

from sendwise.models import bandit_runs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the main job on the embedded defaults and print what happened")
    parser.add_argument("--steps", type=int, default=100_000, help="decisions per learning run (default 100000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("sendwise demo: Thompson sampling on the numba engine\n")
    rows = []
    for title, rates in (
        ("context-free, 168 arms", bandit_runs.reference_rates(1)),
        ("contextual, 16 segments x 168 arms", bandit_runs.reference_rates()),
    ):
        bandit_runs.run_bandit("ts", rates, 1_000, seed=1)  # compile (or load the cache) before timing
        for policy in ("ts", "random"):
            result = bandit_runs.run_bandit(policy, rates, args.steps, run=0, seed=0)
            rows.append((title, policy, result))
    print(f"{'case':36} {'policy':7} {'decisions':>10} {'regret':>10} {'reward':>9} {'decisions/s':>12}")
    for title, policy, r in rows:
        print(f"{title:36} {policy:7} {r.n_steps:>10,} {r.regret:>10,.1f} {r.reward:>9,.0f} "
              f"{r.decisions_per_s:>12,.0f}")
    return 0
