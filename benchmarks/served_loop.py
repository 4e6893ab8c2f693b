"""Served loop: the seed world driven through the real app, next to the in-process simulation of it.

    python benchmarks/served_loop.py [--customers 20000] [--days 42] [--seeds 0,1,2] [--policy hier_ts]
                                     [--prior-trials 0] [--json FILE] [--quick] [--no-progress]

The product's promise is that what the simulator measures is what the server serves. For each seed the
same world, population, triggers and response draws run three times:

- **served**: ``models.simulate.run_loop`` drives ``ServedLoop`` (``benchmarks/_served.py``), a real app
  in this process (HTTP routes through ``TestClient``, SQLite store, guardrails, window closing by the
  app's own code on a fake clock) serving ``--policy`` from the world's prior;
- **in-process**: ``models.simulate.run_policy`` with the same policy in the simulator's ``Learner``;
  both start from the same prior (``--prior-trials``: flat by default, since a prior at the world's own
  rates would tell both runs the truth they are scored on);
- **segment oracle**: the policy that knows each cell's true rates, the yardstick.

Reported: each run's net value over the last 14 days as a share of the segment oracle's (mean and 95%
bootstrap interval over seeds), the ratio served / in-process, the mean uniform importance weight of the
served decision log (``(1 / allowed arms) / logged propensity`` over the rows ``sendwise export-logs``
writes: about 1 when the logged propensities are right), decisions served per wall-clock second,
the served wall time, and ``mask_mismatches``: served choices the simulator's mask forbids (sent as
nothing, and reported to the server as undelivered). Targets are reported, never asserted: ratio >=
0.95; mean uniform weight within 0.02 of 1; the full size served in under 15 minutes on 2 cores.
``--quick`` is a smoke test (1,000 customers × 10 days × seed 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import load_average, table, versions, write_json
from _served import ServedLoop, epoch_of, offset_drift
from tqdm.auto import tqdm

from sendwise.models import World, load_world
from sendwise.models.intervals import mean_interval
from sendwise.models.policies.factory import make_cold_start, make_world_policy
from sendwise.models.sim.simulate import LAST_DAYS, run_loop, run_policy

ORACLE = "segment_oracle"
FULL = {"n_customers": 20_000, "n_days": 42, "seeds": (0, 1, 2)}
QUICK = {"n_customers": 1_000, "n_days": 10, "seeds": (0,)}
WARMUP_CUSTOMERS = 200
TARGETS = {  # key: (comparison, threshold, what)
    "served_over_in_process": (">=", 0.95, "served share / in-process share of the segment oracle"),
    "uniform_weight_error": ("<=", 0.02, "|mean uniform weight - 1| of the served decision log"),
    "served_wall_s": ("<=", 15 * 60.0, "served wall time at the full size, s"),
}


def warm_up(world: World, policy: str) -> float:
    """Seconds of one tiny served day: imports, app start-up and kernel compilation stay out of the timings."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sendwise-warmup-") as tmp, \
            ServedLoop(world, Path(tmp) / "state", policy=policy, seed=0) as loop:
        run_loop(world, loop, n_customers=WARMUP_CUSTOMERS, n_days=2, seed=10_000, name="warm-up")
    return time.perf_counter() - start


def run_seed(world: World, policy: str, *, n_customers: int, n_days: int, seed: int, prior_trials: float,
             bar: tqdm) -> dict[str, Any]:
    """Served, in-process and segment-oracle runs of one seed, with the served run's diagnostics."""
    size = {"n_customers": n_customers, "n_days": n_days, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="sendwise-served-") as tmp, \
            ServedLoop(world, Path(tmp) / "state", policy=policy, seed=seed, prior_trials=prior_trials) as loop:
        bar.set_description(f"served seed {seed}")
        start = time.perf_counter()
        served = run_loop(world, loop, name=f"served:{policy}", on_day=lambda: bar.update(1), **size)
        served_wall = time.perf_counter() - start
        weights, weight_source, allowed_disagreements = loop.uniform_weights()
        stats = loop.stats.to_dict()
    runs = {"served": served}
    for label, built in (("in_process", make_cold_start(policy, world, seed=seed, prior_trials=prior_trials)),
                         (ORACLE, make_world_policy(ORACLE, world, seed=seed))):
        bar.set_description(f"{label} seed {seed}")
        runs[label] = run_policy(world, built, on_day=lambda: bar.update(1), **size)
    last = {label: run.totals["net_value_last14"] for label, run in runs.items()}
    return {
        "seed": seed,
        "net_value_last14": last,
        "served_share_of_segment_oracle": last["served"] / last[ORACLE],
        "in_process_share_of_segment_oracle": last["in_process"] / last[ORACLE],
        "daily_net_value": {label: run.daily["net_value"].tolist() for label, run in runs.items()},
        "decisions": int(runs["served"].totals["decisions"]),
        "served_wall_s": served_wall,
        "decisions_per_s": runs["served"].totals["decisions"] / served_wall,
        "mean_uniform_weight": float(weights.mean()) if weights.size else float("nan"),
        "uniform_weight_rows": int(weights.size),
        "uniform_weight_sum_sq": float(np.sum(weights**2)),
        "uniform_weight_source": weight_source,
        "allowed_disagreements": allowed_disagreements,
        "served": stats,
    }


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Shares of the segment oracle (mean and 95% interval over seeds), pooled weights, rates and counts."""
    served = np.array([s["served_share_of_segment_oracle"] for s in per_seed])
    in_process = np.array([s["in_process_share_of_segment_oracle"] for s in per_seed])
    rows = np.array([s["uniform_weight_rows"] for s in per_seed])
    weights = np.array([s["mean_uniform_weight"] for s in per_seed])
    n_rows = int(rows.sum())
    mean_weight = float(np.sum(weights * rows) / n_rows) if n_rows else float("nan")
    sum_sq = sum(s["uniform_weight_sum_sq"] for s in per_seed)
    variance = (sum_sq - n_rows * mean_weight**2) / (n_rows - 1) if n_rows > 1 else float("nan")
    half = 1.959964 * float(np.sqrt(max(variance, 0.0) / n_rows)) if n_rows > 1 else float("nan")
    decisions = sum(s["decisions"] for s in per_seed)
    wall = sum(s["served_wall_s"] for s in per_seed)
    out: dict[str, Any] = {
        "served_share_of_segment_oracle": [float(x) for x in mean_interval(served)],
        "in_process_share_of_segment_oracle": [float(x) for x in mean_interval(in_process)],
        "served_over_in_process": float(served.mean() / in_process.mean()),
        "served_over_in_process_per_seed": (served / in_process).tolist(),
        "served_minus_in_process": [float(x) for x in mean_interval(served - in_process)],
        "mean_uniform_weight": mean_weight,
        "mean_uniform_weight_interval": [mean_weight - half, mean_weight + half],
        "decisions_per_s": decisions / wall,
        "served_wall_s": wall,
        "served_decisions": decisions,
        "mask_mismatches": sum(s["served"]["mask_mismatches"] for s in per_seed),
        "narrower_masks": sum(s["served"]["narrower_masks"] for s in per_seed),
        "wider_masks": sum(s["served"]["wider_masks"] for s in per_seed),
        "narrower_rules": dict(sum((Counter(s["served"]["narrower_rules"]) for s in per_seed), Counter())),
        "send_time_mismatches": sum(s["served"]["send_time_mismatches"] for s in per_seed),
        "allowed_disagreements": sum(s["allowed_disagreements"] for s in per_seed),
        "uniform_weight_rows": n_rows,
        "served_seconds_by_step": {step: sum(s["served"][f"{step}_seconds"] for s in per_seed)
                                   for step in ("decide", "feedback", "close")},
    }
    out["uniform_weight_error"] = abs(out["mean_uniform_weight"] - 1.0)
    return out


def verdicts(summary: dict[str, Any], full_size: bool) -> dict[str, str]:
    """'met' / 'not met' per target ('n/a' for the wall-time target below the full size)."""
    out = {}
    for key, (op, threshold, _) in TARGETS.items():
        if key == "served_wall_s" and not full_size:
            out[key] = "n/a (not the full size)"
            continue
        value = summary[key]
        met = value >= threshold if op == ">=" else value <= threshold
        out[key] = "met" if met else "not met"
    return out


def report(result: dict[str, Any]) -> str:
    s, v = result, result["targets"]
    lo_w, hi_w = s["mean_uniform_weight_interval"]

    def interval(x: list[float]) -> str:
        return f"{x[0]:.3f} [{x[1]:.3f}, {x[2]:.3f}]"

    lines = [f"seed world, {result['n_customers']:,} customers × {result['n_days']} days, seeds {result['seeds']}, "
             f"policy {result['policy']} (prior trials {result['prior_trials']:g}): net value over the last "
             f"{LAST_DAYS} days as a share of the segment oracle's (mean [95% interval])", ""]
    lines.append(table(("metric", "value", "target"), [
        ("served share of segment oracle", interval(s["served_share_of_segment_oracle"]), ""),
        ("in-process share of segment oracle", interval(s["in_process_share_of_segment_oracle"]), ""),
        ("served − in-process", interval(s["served_minus_in_process"]), ""),
        ("served / in-process", f"{s['served_over_in_process']:.3f}", f">= 0.95: {v['served_over_in_process']}"),
        ("mean uniform weight (decision log)", f"{s['mean_uniform_weight']:.4f} [{lo_w:.4f}, {hi_w:.4f}]",
         f"1 ± 0.02: {v['uniform_weight_error']}"),
        ("served decisions/s", f"{s['decisions_per_s']:,.0f}", ""),
        ("served wall time", f"{s['served_wall_s']:,.1f} s", f"< 900 s at full size: {v['served_wall_s']}"),
        ("  in POST decisions / feedback / window closing", " / ".join(
            f"{s['served_seconds_by_step'][k]:,.1f}" for k in ("decide", "feedback", "close")) + " s", ""),
        ("mask mismatches", f"{s['mask_mismatches']:,} of {s['served_decisions']:,}", "0"),
        ("server mask narrower / wider", f"{s['narrower_masks']:,} / {s['wider_masks']:,} rows",
         "guardrails there: " + (", ".join(f"{k} {n:,}" for k, n in sorted(s["narrower_rules"].items())) or "-")),
        ("send-time mismatches", f"{s['send_time_mismatches']:,}", "0"),
        ("logged allowed sets ≠ response guardrails", f"{s['allowed_disagreements']:,} of "
         f"{s['uniform_weight_rows']:,}", "0"),
    ]))
    lines += ["", table(("seed", "served", "in-process", "oracle net value", "decisions", "served s", "weight",
                         "feedback events (status)"), [
        (str(p["seed"]), f"{p['served_share_of_segment_oracle']:.3f}", f"{p['in_process_share_of_segment_oracle']:.3f}",
         f"{p['net_value_last14'][ORACLE]:,.0f}", f"{p['decisions']:,}", f"{p['served_wall_s']:.1f}",
         f"{p['mean_uniform_weight']:.4f}",
         ", ".join(f"{k} {n:,}" for k, n in sorted(p["served"]["event_status"].items())) or "-")
        for p in result["per_seed"]])]
    lines.append(f"\nwarm-up (imports, app start-up, kernel compilation; not timed): {result['warmup_s']:.1f} s; "
                 f"load average {result['load_average']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=FULL["n_customers"], help="customers (default 20,000)")
    parser.add_argument("--days", type=int, default=FULL["n_days"], help="simulated days (default 42)")
    parser.add_argument("--seeds", default=",".join(map(str, FULL["seeds"])), help="comma-separated (default 0,1,2)")
    parser.add_argument("--policy", default="hier_ts", help="policy served and run in process (default hier_ts)")
    parser.add_argument("--prior-trials", type=float, default=0.0,
                        help="cold start of both runs: pseudo-sends per cell and option at the world's rates "
                             "(default 0: the flat prior; > 0 tells both runs the truth they are scored on)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1,000 customers × 10 days × seed 0")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.quick:
        n_customers, n_days, seeds = QUICK["n_customers"], QUICK["n_days"], list(QUICK["seeds"])
    else:
        n_customers, n_days = args.customers, args.days
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds:
        parser.error(f"--seeds must name at least one seed; got {args.seeds!r}")
    world = load_world("seed")
    make_cold_start(args.policy, world, seed=0, prior_trials=args.prior_trials)  # bad arguments fail now
    drift = offset_drift(world, epoch_of(world), n_days)
    if drift:
        print(f"warning: UTC offsets change during the run in {drift} (hours): served send times will differ "
              "from the simulator's", file=sys.stderr)
    warmup_s = warm_up(world, args.policy)
    per_seed = []
    with tqdm(total=3 * n_days * len(seeds), unit="day", disable=args.no_progress) as bar:
        for seed in seeds:
            per_seed.append(run_seed(world, args.policy, n_customers=n_customers, n_days=n_days, seed=seed,
                                     prior_trials=args.prior_trials, bar=bar))
    summary = summarize(per_seed)
    full_size = n_customers >= FULL["n_customers"] and n_days >= FULL["n_days"] and len(seeds) >= len(FULL["seeds"])
    result = {**summary, "targets": verdicts(summary, full_size), "per_seed": per_seed,
              "n_customers": n_customers, "n_days": n_days, "seeds": seeds, "policy": args.policy,
              "prior_trials": args.prior_trials,
              "warmup_s": warmup_s, "epoch": epoch_of(world).isoformat(), "utc_offset_drift": drift,
              "load_average": load_average(), "versions": versions("numpy", "numba", "fastapi", "starlette")}
    print(report(result))
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
