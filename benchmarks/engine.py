"""Engine benchmark: the numba kernels against their numpy twins, all measured in one run.

    python benchmarks/engine.py [--json FILE] [--quick] [--peers] [--repeats N]

- Batch: decisions/s of the decision path, a bank of 256 posterior draws per bank
  (``score_bank``), the rows' exact propensities from it (``bank_probabilities``) and one arm per
  row (``draw_from``), against the same path through the numpy twins, for K = 169 arms (7 channels
  × 24 local hours + the no-message arm) and B rows spread over the banks with masks repeated across
  rows (8 patterns), with posteriors at the prior Beta(1, 1), after learning (α = 1 + 1000·p,
  β = 1 + 1000·(1 − p), p ~ U(0.01, 0.10)), and with two learned outcomes (click worth 1, unsubscribe
  worth −5); on 1 thread and on every core.
- Per step: decide one, learn one, on the peers' 168-arm Bernoulli world (rates ~ U(0.01, 0.10)):
  ``engine.bernoulli_steps`` against the numpy loop ``engine.reference.bernoulli_steps``.
- Score banks: arm draws/s of ``score_bank`` (16 banks × 256 draws × 168 sampled arms, two learned
  outcomes) and rows/s of ``bank_probabilities`` (B = 1,000 rows, K = 169, 256 draws) with masks
  repeated across rows (8 patterns, so at most 128 distinct (bank, mask) pairs) and with every row
  distinct; engine on 1 thread and on every core, against the twins.
- Start-up: cold JIT compile of every wrapper (a subprocess with an empty cache) and the cached import
  (``import sendwise.engine`` timed from outside, minus a bare interpreter); peak RSS.

Every figure is a median over repeats after a warm-up that compiles or loads each kernel. The targets
are reported with pass/fail, never asserted, next to an estimate of what cores free of other work
would give (from items per CPU-second, which barely moves with the load of a shared machine).
``--peers`` adds MABWiser's Thompson sampling on the same world when it is installed. ``--quick``
shrinks every size and skips the cold compile (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial

import numpy as np
from _common import load_average, peak_rss_mib, rate, run_json, table, time_calls, time_command, versions, write_json

from sendwise import engine
from sendwise.engine import reference

N_CHANNELS, N_HOURS = 7, 24
N_SEND_ARMS = N_CHANNELS * N_HOURS
N_ARMS = N_SEND_ARMS + 1
NULL_ARM = N_SEND_ARMS
EPSILON = 0.01
BANK_DRAWS, BANK_MASK_PATTERNS = 256, 8
SIZES = {  # rows per batch, steps per loop, score banks, rows using the banks
    "full": {"batch_rows": 10_000, "steps": 100_000, "banks": 16, "bank_rows": 1_000},
    "quick": {"batch_rows": 2_000, "steps": 2_000, "banks": 4, "bank_rows": 200},
}
TARGETS = {  # key: (comparison, threshold, what)
    "batch_decisions_per_s": (">=", 100_000, "batch, learned posteriors, all threads"),
    "batch_speedup_vs_numpy": (">=", 1.8, "batch speed-up over the numpy twin"),
    "step_decisions_per_s": (">=", 70_000, "per-step loop"),
    "import_seconds_cached": ("<", 1.0, "cached import of sendwise.engine, s"),
}
POSTERIORS = ("prior", "learned", "two_outcomes")


def posterior(state: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(alpha, beta, value)`` for one cell: Beta(1, 1), learned clicks, or learned clicks and unsubscribes."""
    rng = np.random.default_rng(1)
    if state == "prior":
        return np.ones((1, 1, N_ARMS)), np.ones((1, 1, N_ARMS)), np.ones(1)
    rates = [rng.uniform(0.01, 0.10, N_ARMS)]
    if state == "two_outcomes":
        rates.append(rng.uniform(0.001, 0.01, N_ARMS))
    p = np.stack(rates)[None]
    return 1 + 1000 * p, 1 + 1000 * (1 - p), np.array([1.0, -5.0][: p.shape[1]])


def world(n_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell stream, reward uniforms and true rates (1, 168) of the peers' context-free world."""
    rates = np.random.default_rng(0).uniform(0.01, 0.10, (1, N_SEND_ARMS))
    return np.zeros(n_steps, np.int64), np.random.default_rng(10_000).random(n_steps), rates


def bank_inputs(n_banks: int, n_rows: int, distinct: bool, state: str = "two_outcomes") -> tuple[tuple, tuple]:
    """Arguments of ``score_bank`` (every arm needed) and ``(bank_idx, mask)`` rows.

    Each arm is allowed with probability 0.8, the no-message arm always; with ``distinct`` False every
    row takes one of ``BANK_MASK_PATTERNS`` masks, as a server batch repeats them.
    """
    alpha, beta, value = posterior(state)
    zeros = np.zeros(n_banks, np.int64)
    score_args = (alpha, beta, value, np.zeros((1, N_ARMS)), zeros, zeros, np.ones((n_banks, N_ARMS), np.bool_),
                  BANK_DRAWS)
    rng = np.random.default_rng(4)
    masks = rng.random((n_rows if distinct else BANK_MASK_PATTERNS, N_ARMS)) < 0.8
    masks[:, NULL_ARM] = True
    mask = masks if distinct else masks[rng.integers(0, BANK_MASK_PATTERNS, n_rows)]
    return score_args, (rng.integers(0, n_banks, n_rows), mask)


def decide_through_banks(api: object, score_args: tuple, bank_idx: np.ndarray, mask: np.ndarray,
                         uniforms: np.ndarray) -> np.ndarray:
    """One arm per row the way decisions are made: a bank of draws, exact propensities, an inverse-CDF draw.

    ``api`` is ``engine`` or its numpy twins ``engine.reference``; ``draw_from`` is plain numpy in both.
    """
    scores = api.score_bank(*score_args, null_arm=NULL_ARM, rng=7)
    return engine.draw_from(api.bank_probabilities(scores, bank_idx, mask, EPSILON, NULL_ARM), uniforms)


def first_calls() -> dict[str, float]:
    """Seconds of the first call of every public wrapper in this process: compile, or load from cache."""
    alpha, beta, value = posterior("two_outcomes")
    cells, uniforms, rates = world(10)
    bank_args, (bank_idx, bank_mask) = bank_inputs(2, 4, distinct=True)
    calls: dict[str, Callable[[], object]] = {
        "update": lambda: engine.update(alpha.copy(), beta.copy(), [0], [1], [2], [1.0], [0.0]),
        "pool_posteriors": lambda: engine.pool_posteriors(alpha - 1, beta - 1, [np.zeros(1, np.int64)], 10.0),
        "bernoulli_steps": lambda: engine.bernoulli_steps(np.ones((1, 1, N_SEND_ARMS)), np.ones((1, 1, N_SEND_ARMS)),
                                                          cells, uniforms, rates, rng=0),
        "score_bank": lambda: engine.score_bank(*bank_args, null_arm=NULL_ARM, rng=0),
        "bank_probabilities": lambda: engine.bank_probabilities(np.zeros((2, 1, N_ARMS)), bank_idx, bank_mask),
    }
    return {name: time_calls(call, 1).wall[0] for name, call in calls.items()}


def measure_batch(sizes: dict, repeats: int, thread_counts: list[int]) -> dict:
    """Decisions/s through the banks per posterior state: the engine on each thread count, and the numpy twins."""
    n_rows = sizes["batch_rows"]
    uniforms = np.random.default_rng(5).random(n_rows)
    results: dict = {"numpy": {}, **{f"engine_{n}_threads": {} for n in thread_counts}}
    for state in POSTERIORS:
        score_args, (bank_idx, mask) = bank_inputs(sizes["banks"], n_rows, distinct=False, state=state)
        twin = partial(decide_through_banks, reference, score_args, bank_idx, mask, uniforms)
        results["numpy"][state] = rate(n_rows, time_calls(twin, repeats))
        for n_threads in thread_counts:
            engine.set_num_threads(n_threads)
            timing = time_calls(partial(decide_through_banks, engine, score_args, bank_idx, mask, uniforms), repeats)
            results[f"engine_{n_threads}_threads"][state] = rate(n_rows, timing)
    return results


def measure_steps(sizes: dict, repeats: int) -> dict:
    """Steps/s and pseudo-regret of the per-step loop, engine and numpy, each from Beta(1, 1)."""
    cells, uniforms, rates = world(sizes["steps"])

    def engine_run() -> np.ndarray:
        alpha, beta = np.ones((1, 1, N_SEND_ARMS)), np.ones((1, 1, N_SEND_ARMS))
        return engine.bernoulli_steps(alpha, beta, cells, uniforms, rates, rng=3)

    def numpy_run() -> np.ndarray:
        alpha, beta = np.ones((1, 1, N_SEND_ARMS)), np.ones((1, 1, N_SEND_ARMS))
        return reference.bernoulli_steps(alpha, beta, cells, uniforms, rates, rng=3)

    results = {}
    for name, run in (("engine", engine_run), ("numpy", numpy_run)):
        results[name] = rate(cells.size, time_calls(run, repeats))
        results[name]["regret"] = float(np.sum(rates.max() - rates[0, run()]))
    results["random_regret"] = float(cells.size * (rates.max() - rates.mean()))
    return results


def measure_banks(sizes: dict, repeats: int, thread_counts: list[int]) -> dict:
    """Arm draws/s of ``score_bank`` and rows/s of ``bank_probabilities``, engine per thread count and twin."""
    n_banks, n_rows = sizes["banks"], sizes["bank_rows"]
    score_args, _ = bank_inputs(n_banks, n_rows, distinct=True)
    n_arm_draws = n_banks * BANK_DRAWS * N_SEND_ARMS
    scores = engine.score_bank(*score_args, null_arm=NULL_ARM, rng=0)
    rows = {kind: bank_inputs(n_banks, n_rows, distinct=kind == "distinct")[1] for kind in ("repeated", "distinct")}
    results: dict = {"distinct_pairs": {kind: int(np.unique(np.column_stack([bank_idx, mask]), axis=0).shape[0])
                                        for kind, (bank_idx, mask) in rows.items()}}
    runs = {"score_bank": (n_arm_draws, partial(engine.score_bank, *score_args, null_arm=NULL_ARM, rng=0),
                           partial(reference.score_bank, *score_args, null_arm=NULL_ARM, rng=0))}
    for kind, (bank_idx, mask) in rows.items():
        runs[f"probabilities_{kind}"] = (
            n_rows, partial(engine.bank_probabilities, scores, bank_idx, mask, EPSILON, NULL_ARM),
            partial(reference.bank_probabilities, scores, bank_idx, mask, EPSILON, NULL_ARM))
    for name, (count, engine_call, twin_call) in runs.items():
        results[name] = {"numpy": rate(count, time_calls(twin_call, repeats))}
        for n_threads in thread_counts:
            engine.set_num_threads(n_threads)
            results[name][f"engine_{n_threads}_threads"] = rate(count, time_calls(engine_call, repeats))
    return results


def measure_start_up(repeats: int, cold: bool) -> dict:
    """Cold compile (fresh cache, in a subprocess) and cached import and kernel loading (warm cache)."""
    worker = [sys.executable, os.path.abspath(__file__), "--first-calls"]
    bare = statistics.median(time_command([sys.executable, "-c", "pass"], repeats))
    imported = statistics.median(time_command([sys.executable, "-c", "import sendwise.engine"], repeats))
    cached = run_json(worker)
    result = {
        "bare_python_seconds": bare,
        "import_seconds_cached": imported - bare,
        "first_call_seconds_cached": cached["first_call_seconds"],
        "load_seconds_cached": sum(cached["first_call_seconds"].values()),
        "peak_rss_mib_cached": cached["peak_rss_mib"],
        "compile_seconds_cold": None,
        "first_call_seconds_cold": None,
        "peak_rss_mib_cold": None,
    }
    if cold:
        with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache_dir:
            compiled = run_json(worker, env=os.environ | {"NUMBA_CACHE_DIR": cache_dir})
        result |= {"compile_seconds_cold": sum(compiled["first_call_seconds"].values()),
                   "first_call_seconds_cold": compiled["first_call_seconds"],
                   "peak_rss_mib_cold": compiled["peak_rss_mib"]}
    return result


def mabwiser_rates(sizes: dict) -> dict:
    """MABWiser Thompson sampling on the same 168-arm world: batch predict after learning, and per step."""
    try:
        from mabwiser.mab import MAB, LearningPolicy
    except ImportError:
        return {"skipped": "mabwiser is not installed"}
    cells, uniforms, rates = world(sizes["steps"])
    rng = np.random.default_rng(2)
    history = rng.integers(0, N_SEND_ARMS, 100_000)
    mab = MAB(arms=list(range(N_SEND_ARMS)), learning_policy=LearningPolicy.ThompsonSampling(), seed=0)
    mab.fit(decisions=history, rewards=(rng.random(history.size) < rates[0, history]).astype(np.int64))
    n_rows = min(sizes["batch_rows"], 20_000)
    batch_seconds = time_calls(lambda: mab.predict(np.zeros((n_rows, 1))), 3)
    n_steps = min(cells.size // 10, 2_000)  # about 500 steps/s: keep it short

    def steps() -> None:
        for t in range(n_steps):
            arm = mab.predict()
            mab.partial_fit(decisions=[arm], rewards=[int(uniforms[t] < rates[0, arm])])

    return {
        "version": versions("mabwiser")["mabwiser"],
        "batch_decisions_per_s": rate(n_rows, batch_seconds),
        "step_decisions_per_s": rate(n_steps, time_calls(steps, 1)),
    }


def idle_estimates(report: dict, thread_counts: list[int]) -> dict:
    """What the targets would read on cores free of other work, from rates per CPU-second.

    The batch figure assumes the threads scale perfectly, which they nearly do (independent chunks).
    """
    batch = thread_counts[-1] * report["batch"]["engine_1_threads"]["learned"]["per_cpu_second"]
    return {
        "batch_decisions_per_s": batch,
        "batch_speedup_vs_numpy": batch / report["batch"]["numpy"]["learned"]["per_cpu_second"],
        "step_decisions_per_s": report["steps"]["engine"]["per_cpu_second"],
        "import_seconds_cached": report["import_seconds_cached"],
    }


def targets(summary: dict, estimates: dict) -> dict:
    """Each target with its measured value, pass/fail, the share of the target, and the idle estimate."""
    checks = {}
    for key, (comparison, threshold, what) in TARGETS.items():
        measured, at_least = summary[key], comparison == ">="
        checks[key] = {
            "what": what,
            "target": f"{comparison} {threshold:,}",
            "measured": measured,
            "passed": measured >= threshold if at_least else measured < threshold,
            "share_of_target": measured / threshold if at_least else threshold / measured,
            "idle_estimate": estimates[key],
            "passed_idle_estimate": estimates[key] >= threshold if at_least else estimates[key] < threshold,
        }
    return checks


def cpu_share(report: dict) -> float:
    """Lowest CPU time per wall-clock second of the single-threaded figures (1.0: nothing else competed)."""
    single = [report["batch"]["numpy"], report["batch"]["engine_1_threads"], report["steps"]]
    return min(r["cpu_per_wall"] for group in single for r in group.values() if isinstance(r, dict))


def print_report(report: dict, thread_counts: list[int]) -> None:
    """The tables: throughput against the numpy twin, start-up, targets; then the peers if measured."""
    batch, steps, start = report["batch"], report["steps"], report["start_up"]
    per_s = "{:,.0f}".format
    engine_cols = [f"engine {n} thr" for n in thread_counts]
    rows = []
    for state in POSTERIORS:
        engine_rates = [batch[f"engine_{n}_threads"][state]["median"] for n in thread_counts]
        numpy_rate = batch["numpy"][state]["median"]
        rows.append([f"batch B={report['sizes']['batch_rows']:,}, K={N_ARMS}, {state.replace('_', ' ')}, "
                     f"through {report['sizes']['banks']} banks of {BANK_DRAWS} draws",
                     *map(per_s, engine_rates), per_s(numpy_rate), f"{engine_rates[-1] / numpy_rate:.2f}x"])
    rows.append([f"per-step loop K={N_SEND_ARMS}, {report['sizes']['steps']:,} steps",
                 per_s(steps["engine"]["median"]), *["-"] * (len(thread_counts) - 1),
                 per_s(steps["numpy"]["median"]), f"{steps['engine']['median'] / steps['numpy']['median']:.2f}x"])
    banks, sizes = report["banks"], report["sizes"]
    bank_labels = {
        "score_bank": f"score bank, arm draws/s ({sizes['banks']} banks x {BANK_DRAWS} draws x {N_SEND_ARMS} arms)",
        "probabilities_repeated": f"bank propensities, rows/s, B={sizes['bank_rows']:,}, K={N_ARMS}, {BANK_DRAWS} "
                                  f"draws, {banks['distinct_pairs']['repeated']} distinct (bank, mask)",
        "probabilities_distinct": f"bank propensities, rows/s, B={sizes['bank_rows']:,}, K={N_ARMS}, {BANK_DRAWS} "
                                  f"draws, every row distinct",
    }
    for name, label in bank_labels.items():
        engine_rates = [banks[name][f"engine_{n}_threads"]["median"] for n in thread_counts]
        numpy_rate = banks[name]["numpy"]["median"]
        rows.append([label, *map(per_s, engine_rates), per_s(numpy_rate), f"{engine_rates[-1] / numpy_rate:.2f}x"])
    print(f"decisions/s unless a row says otherwise, median of {report['repeats']} repeats "
          "(engine/numpy uses the most threads)\n")
    print(table(["workload", *engine_cols, "numpy twin", "engine/numpy"], rows))

    print(f"\nper-step pseudo-regret after {report['sizes']['steps']:,} steps: engine "
          f"{steps['engine']['regret']:,.1f}, numpy {steps['numpy']['regret']:,.1f}, "
          f"uniformly random {steps['random_regret']:,.1f}\n")
    cold = start["compile_seconds_cold"]
    print(table(["start-up", "seconds", "peak RSS MiB"], [
        ["cold JIT compile, every wrapper once (empty cache)", "skipped (--quick)" if cold is None else f"{cold:.2f}",
         "-" if cold is None else f"{start['peak_rss_mib_cold']:.0f}"],
        ["cached: import sendwise.engine (minus bare python)", f"{start['import_seconds_cached']:.3f}", "-"],
        ["cached: load every kernel on its first call", f"{start['load_seconds_cached']:.3f}",
         f"{start['peak_rss_mib_cached']:.0f}"],
        ["bare python start", f"{start['bare_python_seconds']:.3f}", "-"],
        ["this run's warm-up (load or compile), in process", f"{sum(report['warm_up_seconds'].values()):.3f}", "-"],
    ]))
    print(f"\npeak RSS of this run {report['peak_rss_mib']:.0f} MiB; threads {thread_counts}; load average "
          f"{report['load_average_start']} -> {report['load_average_end']}; {report['versions']}")
    if report["cpu_share"] < 0.9:
        print(f"warning: other processes competed for the CPU; a single-threaded figure got as little as "
              f"{report['cpu_share']:.0%} of a core, so the rates above understate")

    def figure(value: float) -> str:
        return f"{value:,.3f}" if value < 10 else per_s(value)

    print("\n" + table(["target", "wanted", "measured", "share", "pass", "idle-core estimate", "pass"], [
        [t["what"], t["target"], figure(t["measured"]), f"{t['share_of_target']:.0%}",
         "PASS" if t["passed"] else "FAIL", figure(t["idle_estimate"]), "PASS" if t["passed_idle_estimate"] else "FAIL"]
        for t in report["targets"].values()
    ]))
    print("idle-core estimates: rates per CPU-second of this process; batch = threads x 1-thread rate")
    peers = report.get("peers")
    if peers is not None:
        if "skipped" in peers:
            print(f"\nMABWiser: skipped ({peers['skipped']})")
        else:
            print(f"\nMABWiser {peers['version']}: batch {per_s(peers['batch_decisions_per_s']['median'])}/s, "
                  f"per step {per_s(peers['step_decisions_per_s']['median'])}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the medians and settings as JSON")
    parser.add_argument("--quick", action="store_true", help="small sizes, no cold compile: a smoke test")
    parser.add_argument("--peers", action="store_true", help="add MABWiser on the same world if installed")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per figure (5; 2 with --quick)")
    parser.add_argument("--first-calls", action="store_true", help=argparse.SUPPRESS)  # start-up worker
    parser.add_argument("--mabwiser", action="store_true", help=argparse.SUPPRESS)  # peers worker
    args = parser.parse_args()
    sizes = SIZES["quick" if args.quick else "full"]
    if args.first_calls:
        print(json.dumps({"first_call_seconds": first_calls(), "peak_rss_mib": peak_rss_mib()}))
        return
    if args.mabwiser:
        print(json.dumps(mabwiser_rates(sizes)))
        return
    repeats = args.repeats or (2 if args.quick else 5)
    thread_counts = sorted({1, os.cpu_count() or 1})
    report: dict = {"sizes": sizes, "repeats": repeats, "thread_counts": thread_counts, "epsilon": EPSILON,
                    "n_arms": N_ARMS, "versions": versions("numpy", "numba", "sendwise"),
                    "load_average_start": load_average()}
    report["warm_up_seconds"] = first_calls()
    report["batch"] = measure_batch(sizes, repeats, thread_counts)
    engine.set_num_threads(thread_counts[-1])
    report["steps"] = measure_steps(sizes, repeats)
    report["banks"] = measure_banks(sizes, repeats, thread_counts)
    engine.set_num_threads(thread_counts[-1])
    report["start_up"] = measure_start_up(repeats, cold=not args.quick)
    if args.peers:
        quick_flag = ["--quick"] if args.quick else []
        try:
            report["peers"] = run_json([sys.executable, os.path.abspath(__file__), "--mabwiser", *quick_flag])
        except subprocess.CalledProcessError as failed:
            report["peers"] = {"skipped": f"the MABWiser run failed: {failed.stderr.strip().splitlines()[-1]}"}
    report["peak_rss_mib"] = peak_rss_mib()
    report["load_average_end"] = load_average()
    most = f"engine_{thread_counts[-1]}_threads"
    summary = {
        "batch_decisions_per_s": report["batch"][most]["learned"]["median"],
        "numpy_batch_decisions_per_s": report["batch"]["numpy"]["learned"]["median"],
        "step_decisions_per_s": report["steps"]["engine"]["median"],
        "numpy_step_decisions_per_s": report["steps"]["numpy"]["median"],
        "import_seconds_cached": report["start_up"]["import_seconds_cached"],
    }
    summary["batch_speedup_vs_numpy"] = summary["batch_decisions_per_s"] / summary["numpy_batch_decisions_per_s"]
    report |= summary
    report["targets"] = targets(summary, idle_estimates(report, thread_counts))
    report["cpu_share"] = cpu_share(report)
    print_report(report, thread_counts)
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
