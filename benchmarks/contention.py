"""Contention benchmark: does feedback wait for large decision batches? Two workers on one SQLite file.

    python benchmarks/contention.py [--json FILE] [--quick]

``sendwise serve --workers 2`` on a fresh state folder (the seed world's prior), warmed up, loaded
from a separate process with the server benchmark's raw-socket client. Measured in the same run:

- baseline: one-event feedback requests (a messaging system's webhook), 2 connections, closed loop,
  with nothing else running: p50, p99 and the slowest;
- contended: the same feedback while 2 more connections post 1,000-customer decision batches
  without pause; the feedback's p50, p99, slowest and its 503s, and the batches' decisions/s.

Target (reported, never asserted): the slowest contended feedback request answers within the
request deadline (30 s) with no 5xx, and its p99 stays within 10× the baseline's.
``--quick`` runs each scenario for a second (a smoke test).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import load_average, table, versions, write_json

from server import closed_loop, decision_ids, decisions_request, feedback_requests, running_server, warm_up

DURATIONS = {"full": 10.0, "quick": 1.0}
WORKERS = 2
P99_RATIO_TARGET = 10.0


async def scenarios(port: int, seconds: float) -> dict[str, dict[str, float]]:
    baseline = feedback_requests(await decision_ids(port, 60_000_000), "baseline", events_per_request=1)
    results = {"baseline": (await closed_loop(port, baseline, seconds, connections=2)).summary()}
    contended = feedback_requests(await decision_ids(port, 70_000_000), "contended", events_per_request=1)
    feedback, batches = await asyncio.gather(
        closed_loop(port, contended, seconds, connections=2),
        closed_loop(port, lambda i: decisions_request(80_000_000 + 1000 * i, 1000), seconds, connections=2))
    results["contended"] = feedback.summary()
    results["batches"] = batches.summary(1000)
    return results


def run_client(port: int, seconds: float) -> dict[str, dict[str, float]]:
    """Entry point of the load-generator process."""
    return asyncio.run(scenarios(port, seconds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="each scenario for 1 s: a smoke test")
    args = parser.parse_args(argv)
    seconds = DURATIONS["quick" if args.quick else "full"]
    report: dict[str, Any] = {"seconds_per_scenario": seconds, "workers": WORKERS, "load_average_start": load_average(),
                              "versions": versions("sendwise", "uvicorn", "fastapi")}
    with tempfile.TemporaryDirectory(prefix="sendwise-bench-") as tmp, \
            running_server(Path(tmp) / "state", workers=WORKERS) as (port, _, ready):
        report["ready_seconds"] = ready
        report["warm_up_seconds"] = warm_up(port) + warm_up(port)  # one per worker, roughly
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            report["scenarios"] = pool.apply_async(run_client, (port, seconds)).get(timeout=120 + 10 * seconds)
        report["client_seconds"] = time.perf_counter() - started
    base, busy = report["scenarios"]["baseline"], report["scenarios"]["contended"]
    report["p99_ratio"] = busy["p99_ms"] / base["p99_ms"]
    report["load_average_end"] = load_average()
    report["target"] = {"what": f"contended feedback p99 <= {P99_RATIO_TARGET:g}x baseline, none slower than 30 s",
                        "passed": bool(report["p99_ratio"] <= P99_RATIO_TARGET and busy["max_ms"] < 30_000)}
    rows = [[what, f"{r['requests']:,}", f"{r['items_per_s']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
             f"{r['max_ms']:.1f}", str(r["errors"])]
            for what, r in (("feedback, 1 event, alone (baseline)", base),
                            ("feedback, 1 event, beside 1,000-customer batches", busy),
                            ("decisions in 1,000-customer batches (items: decisions)",
                             report["scenarios"]["batches"]))]
    print(f"{WORKERS} uvicorn workers on one SQLite file; {seconds:g} s per scenario\n")
    print(table(["scenario", "requests", "items/s", "p50 ms", "p99 ms", "max ms", "errors"], rows))
    print(f"\ncontended / baseline feedback p99: {report['p99_ratio']:.1f}x; target "
          f"{'PASS' if report['target']['passed'] else 'FAIL'} ({report['target']['what']}); load average "
          f"{report['load_average_start']} -> {report['load_average_end']}; {report['versions']}")
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
