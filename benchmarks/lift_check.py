"""Does the lift report tell the truth? Coverage of its intervals and the sample-ratio check, over seeds.

Each seed simulates one experiment on the seed world (a holdout, the policy under test and the world's
playbook as baseline, a pre-period of the playbook for CUPED), writes its decision log and reads it back
through ``lift_report``. The simulated true difference is the same contrast over the world's expected
value of every logged decision (true rates, attribution windows) instead of its drawn outcomes
(``true_value_per_customer_<group>`` of the run). The sample-ratio check runs three ways: on the log as
written (a fair split), on the log after losing a random part of the baseline group's customers so that
model : baseline is 52 : 48 (how a mismatch usually arises), and on the bare assignment of 20,000
customers at 50 / 50 and at 52 / 48 against a configured 50 / 50.

    python benchmarks/lift_check.py --seeds 20 --json bench-results/lift.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from sendwise.models import Assignment, Experiment, load_world, read_logs
from sendwise.models.experiments import BASELINE, HOLDOUT, MODEL, group_shares, lift_report, pseudonym
from sendwise.models.experiments.lift import sample_ratio
from sendwise.models.sim.simulate import run_task
from sendwise.models.tables import render_table

SRM_CUSTOMERS = 20_000
INJECTED = 0.52  # model's part of model + baseline after the injected loss


def run_seed(seed: int, args: dict[str, Any]) -> dict[str, Any]:
    """One experiment: the report's intervals against the truth, and the SRM check fair and injected."""
    world = load_world(args["world"])
    experiment = Experiment(Assignment(salt=f"lift-check-{seed}", holdout_share=args["holdout_share"],
                                       baseline_share=args["baseline_share"]), pre_days=args["pre_days"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decisions.parquet"
        run = run_task(world, args["policy"], seed, args["customers"], args["days"], {}, None, path, experiment)
        log = read_logs(path)
    shares = experiment.assignment.shares
    report = lift_report(log, shares)
    truth = {g: run.totals[f"true_value_per_customer_{g}"] for g in (HOLDOUT, MODEL, BASELINE)}
    out: dict[str, Any] = {"seed": seed, "truth": truth}
    for control in (HOLDOUT, BASELINE):
        d = report.difference(MODEL, control)
        true = truth[MODEL] - truth[control]
        out[f"model_minus_{control}"] = {
            "true": true, "estimate": d.estimate, "low": d.low, "high": d.high, "covered": d.low <= true <= d.high,
            "cuped_estimate": d.cuped_estimate, "cuped_low": d.cuped_low, "cuped_high": d.cuped_high,
            "cuped_covered": d.cuped_low <= true <= d.cuped_high, "variance_reduction": d.variance_reduction}
    observed = dict(report.sample_ratio.observed)
    out["srm_fair_log"] = {"observed": observed, "p": report.sample_ratio.p_value,
                           "flagged": report.sample_ratio.flagged}
    kept = round(observed[MODEL] * (1 - INJECTED) / INJECTED)  # baseline customers left at model : baseline 52 : 48
    injected = {**observed, BASELINE: kept}
    check = sample_ratio(injected, shares)
    out["srm_injected_log"] = {"observed": injected, "p": check.p_value, "flagged": check.flagged}
    names = [pseudonym(i) for i in range(SRM_CUSTOMERS)]
    half = group_shares(0.0, 0.5)
    for label, baseline_share in (("fair", 0.5), ("injected", 1 - INJECTED)):
        groups = Assignment(salt=f"srm-{seed}", baseline_share=baseline_share).groups(names)
        counts = {g: int(np.sum(groups == g)) for g in (MODEL, BASELINE)}
        check = sample_ratio(counts, half)
        out[f"srm_{label}_assignment"] = {"observed": counts, "p": check.p_value, "flagged": check.flagged}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--pre-days", type=int, default=14)
    parser.add_argument("--policy", default="hier_ts")
    parser.add_argument("--world", default="seed")
    parser.add_argument("--holdout-share", type=float, default=0.1)
    parser.add_argument("--baseline-share", type=float, default=0.45)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    settings = {"world": args.world, "policy": args.policy, "customers": args.customers, "days": args.days,
                "pre_days": args.pre_days, "holdout_share": args.holdout_share, "baseline_share": args.baseline_share}
    seeds = list(range(args.seeds))
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_seed, seeds, [settings] * len(seeds)))
    print(f"{args.policy} on the {args.world} world: {args.customers:,} customers x {args.days} days "
          f"(+{args.pre_days} pre-period days), holdout {args.holdout_share:.0%}, baseline (playbook) "
          f"{args.baseline_share:.0%}, seeds 0..{args.seeds - 1}\n")
    rows = []
    for control in (HOLDOUT, BASELINE):
        key = f"model_minus_{control}"
        items = [r[key] for r in results]
        rows.append([f"model - {control}", np.mean([i["true"] for i in items]), np.mean([i["estimate"] for i in items]),
                     np.mean([i["high"] - i["low"] for i in items]), f"{sum(i['covered'] for i in items)}/{len(items)}",
                     f"{sum(i['cuped_covered'] for i in items)}/{len(items)}",
                     np.mean([i["variance_reduction"] for i in items])])
    print(render_table(["value / customer", "true (mean)", "estimate (mean)", "95% width (mean)", "covered",
                        "CUPED covered", "CUPED variance cut"], rows))
    print()
    srm_rows = [[label, f"{sum(r[key]['flagged'] for r in results)}/{len(results)}",
                 float(np.median([r[key]["p"] for r in results]))]
                for label, key in (("log as written (fair)", "srm_fair_log"),
                                   ("log, baseline customers lost to 52:48", "srm_injected_log"),
                                   (f"assignment of {SRM_CUSTOMERS:,}, 50/50", "srm_fair_assignment"),
                                   (f"assignment of {SRM_CUSTOMERS:,}, 52/48", "srm_injected_assignment"))]
    print(render_table(["sample-ratio check", "flagged", "median p"], srm_rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": settings, "seeds": results}, indent=1, default=float) + "\n")
        print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
