"""Server benchmark: one real uvicorn worker on loopback, loaded from a separate client process.

    python benchmarks/server.py [--json FILE] [--quick]

The script starts ``sendwise serve --workers 1`` on a free 127.0.0.1 port with a fresh state folder
(the default model: the seed world's prior), warms it up, and drives it from a second process that
speaks HTTP/1.1 over raw asyncio sockets (keep-alive, no client library on the hot path), so the
client costs little of the machine's second core. Measured in the same run:

- ``GET /v1/health``, the trivial endpoint of the same app, as the baseline (closed loop);
- single-customer decisions, closed loop: requests/s, p50, p99;
- single-customer decisions, open loop at 1,000 requests/s: latency from each request's scheduled
  send time (so a slow server cannot hide its queue), p50, p99, the rate achieved;
- 100-customer and 1,000-customer decision batches: decisions/s, p99;
- feedback in batches of 100 events, each batch committed durably (WAL, synchronous=FULL): events/s;
- the server's resident memory at the end, and its peak.

Closed loops keep 16 connections busy (2 for decision batches, 4 for feedback). Targets are reported,
never asserted: single-decision p99 <= 10 ms at 1,000 requests/s with no errors or unanswered requests;
single-decision throughput >= 50% of the trivial endpoint's; >= 40,000 decisions/s in 100-customer
batches; >= 5,000 durable feedback events/s in batches of 100. ``--quick`` runs every scenario for
half a second (a smoke test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import load_average, table, versions, write_json

API_KEY = "bench-key-0123456789abcdef"
READY_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 30.0
CONNECTIONS = 16
OPEN_LOOP_RATE = 1000.0
DURATIONS = {"full": 8.0, "quick": 0.5}  # seconds per scenario
TARGETS = {  # key: (comparison, threshold, what)
    "open_loop_1000_p99_ms": ("<=", 10.0, "single decision p99 at 1,000 requests/s, ms"),
    "open_loop_1000_errors": ("<=", 0, "errors or unanswered requests at 1,000 requests/s"),
    "single_vs_trivial": (">=", 0.5, "single-decision throughput / trivial endpoint's"),
    "batch100_decisions_per_s": (">=", 40_000, "decisions/s in 100-customer batches"),
    "feedback_events_per_s": (">=", 5_000, "durable feedback events/s in batches of 100"),
}
_CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


# --- the load generator (runs in its own process; standard library only) ---------------------------------


def http_request(method: str, path: str, body: bytes | None = None) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request with the benchmark's API key."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {API_KEY}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


def decisions_request(first: int, n_customers: int) -> bytes:
    """A decision request for customers ``first`` … ``first + n_customers - 1`` (new ids: no caps interfere)."""
    customers = [{"customer_id": f"bench-{i}", "timezone": "Europe/Berlin", "region": "EU", "industry": "ecommerce",
                  "campaign_type": "cart_reminder", "channels": ["email", "push", "sms"]}
                 for i in range(first, first + n_customers)]
    return http_request("POST", "/v1/decisions", json.dumps({"customers": customers}).encode())



class Connection:
    """One keep-alive connection; ``send`` returns (status, body) of one request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
        length = _CONTENT_LENGTH.search(head)
        body = await self.reader.readexactly(int(length.group(1))) if length else b""
        return int(head[9:12]), body

    def close(self) -> None:
        self.writer.close()


@dataclass
class Run:
    """Latencies (s) of successful requests, the error count and the wall time of one scenario."""

    latencies: list[float]
    errors: int
    seconds: float

    def summary(self, items_per_request: int = 1) -> dict[str, float]:
        ordered = sorted(self.latencies) or [float("nan")]
        n = len(self.latencies)
        return {"requests": n, "errors": self.errors, "requests_per_s": n / self.seconds,
                "items_per_s": n * items_per_request / self.seconds,
                "p50_ms": 1000 * statistics.median(ordered), "p99_ms": 1000 * ordered[min(n - 1, int(0.99 * n))],
                "max_ms": 1000 * ordered[-1]}


async def closed_loop(port: int, make: Callable[[int], bytes], seconds: float, connections: int = CONNECTIONS) -> Run:
    """``connections`` clients, each sending its next request as soon as the last one is answered."""
    latencies: list[float] = []
    errors, counter = 0, iter(range(1 << 62))
    start = time.perf_counter()
    deadline = start + seconds

    async def client() -> None:
        nonlocal errors
        conn = await Connection.open(port)
        while (sent := time.perf_counter()) < deadline:
            try:
                status, _ = await conn.send(make(next(counter)))
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                status = 0
                conn.close()
                conn = await Connection.open(port)
            if status == 200:
                latencies.append(time.perf_counter() - sent)
            else:
                errors += 1
        conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return Run(latencies, errors, time.perf_counter() - start)


async def open_loop(port: int, make: Callable[[int], bytes], rate: float, seconds: float,
                    max_connections: int = 256) -> Run:
    """Request ``i`` is due at ``i / rate``; its latency counts from then, however long it waits for a connection.

    Requests still unanswered ``seconds + 1`` after the last one was due count as errors.
    """
    latencies: list[float] = []
    errors, idle = 0, asyncio.LifoQueue[Connection]()
    slots = asyncio.Semaphore(max_connections)
    start = time.perf_counter()

    async def one(i: int, due: float) -> None:
        nonlocal errors
        async with slots:
            conn = await Connection.open(port) if idle.empty() else idle.get_nowait()
            try:
                status, _ = await conn.send(make(i))
                idle.put_nowait(conn)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                status = 0
                conn.close()
        if status == 200:
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1

    tasks = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    # A server far below the rate gets as long again (and a second) to drain; the rest count as errors.
    _, late = await asyncio.wait(tasks, timeout=seconds + 1.0)
    for task in late:
        task.cancel()
    errors += len(late)
    while not idle.empty():
        idle.get_nowait().close()
    return Run(latencies, errors, time.perf_counter() - start)


async def feedback_requests(port: int, first: int, events_per_request: int = 100) -> Callable[[int], bytes]:
    """Decide for 1,000 new customers from ``first`` on; request ``i`` of ``events_per_request`` feedback events
    for them, each id new.

    The events (delivered, opened, clicked) are stamped now.
    """
    conn = await Connection.open(port)
    _, body = await conn.send(decisions_request(first, 1000))
    conn.close()
    decision_ids = [d["decision_id"] for d in json.loads(body)["decisions"]]
    now = datetime.now(UTC).isoformat()

    def batch(i: int) -> bytes:
        events = [{"event_id": f"bench-{first}-{i}-{k}",
                   "decision_id": decision_ids[(i * events_per_request + k) % len(decision_ids)],
                   "type": ("delivered", "opened", "clicked")[k % 3], "timestamp": now}
                  for k in range(events_per_request)]
        return http_request("POST", "/v1/feedback", json.dumps({"events": events}).encode())

    return batch


async def scenarios(port: int, seconds: float) -> dict[str, dict[str, float]]:
    """Every scenario in turn against the server on ``port``."""
    health = http_request("GET", "/v1/health")
    results = {"trivial": (await closed_loop(port, lambda i: health, seconds)).summary()}
    results["single"] = (await closed_loop(port, lambda i: decisions_request(10_000_000 + i, 1), seconds)).summary()
    results["open_loop_1000"] = (await open_loop(port, lambda i: decisions_request(20_000_000 + i, 1),
                                                 OPEN_LOOP_RATE, seconds)).summary()
    results["batch100"] = (await closed_loop(port, lambda i: decisions_request(30_000_000 + 100 * i, 100), seconds,
                                             connections=2)).summary(100)
    results["batch1000"] = (await closed_loop(port, lambda i: decisions_request(40_000_000 + 1000 * i, 1000), seconds,
                                              connections=2)).summary(1000)
    feedback = await feedback_requests(port, 50_000_000)
    results["feedback100"] = (await closed_loop(port, feedback, seconds, connections=4)).summary(100)
    return results


def run_client(port: int, seconds: float) -> dict[str, dict[str, float]]:
    """Entry point of the load-generator process."""
    return asyncio.run(scenarios(port, seconds))


# --- the server under test -------------------------------------------------------------------------------


@contextmanager
def running_server(state_dir: Path, workers: int = 1,
                   settings: Mapping[str, str] | None = None) -> Iterator[tuple[int, int, float]]:
    """``sendwise serve`` on a free loopback port: yields (port, pid, seconds to ready); stops it on exit.

    ``settings`` are extra ``Settings`` fields (e.g. a Redis state URL).
    """
    from sendwise.server import serve_in_background  # here: the load-generator process re-imports this module

    start = time.perf_counter()
    with serve_in_background({**(settings or {}), "state_dir": state_dir, "api_keys": API_KEY}, workers=workers,
                             log=state_dir.parent / "server.log", timeout_s=READY_TIMEOUT_S) as server:
        yield server.port, server.pid, time.perf_counter() - start


def memory_mib(pid: int) -> dict[str, float]:
    """Resident (VmRSS) and peak resident (VmHWM) memory of a process, MiB (Linux /proc)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "peak_rss_mib": int(fields["VmHWM"].split()[0]) / 1024}


def warm_up(port: int) -> float:
    """Seconds of one second of 100-customer decisions (JIT cache loads, propensity estimates) before timing."""
    start = time.perf_counter()
    asyncio.run(closed_loop(port, lambda i: decisions_request(i, 100), 1.0, connections=1))
    return time.perf_counter() - start


# --- report ---------------------------------------------------------------------------------------------


def targets(summary: dict[str, float]) -> dict[str, dict[str, Any]]:
    checks = {}
    for key, (comparison, threshold, what) in TARGETS.items():
        measured = summary[key]
        passed = measured >= threshold if comparison == ">=" else measured <= threshold
        checks[key] = {"what": what, "target": f"{comparison} {threshold:,}", "measured": measured,
                       "passed": bool(passed)}
    return checks


def print_report(report: dict[str, Any]) -> None:
    rows = []
    for name, what, per in (("trivial", "GET /v1/health (baseline)", "req"),
                            ("single", "decisions, 1 customer, closed loop", "decision"),
                            ("open_loop_1000", "decisions, 1 customer, open loop 1,000/s", "decision"),
                            ("batch100", "decisions, 100-customer batches", "decision"),
                            ("batch1000", "decisions, 1,000-customer batches", "decision"),
                            ("feedback100", "feedback, 100-event batches (durable)", "event")):
        r = report["scenarios"][name]
        rows.append([what, f"{r['requests']:,}", f"{r['requests_per_s']:,.0f}", f"{r['items_per_s']:,.0f} {per}/s",
                     f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", str(r["errors"])])
    print(f"one uvicorn worker, {report['client']}; {report['seconds_per_scenario']} s per scenario\n")
    print(table(["scenario", "requests", "requests/s", "items/s", "p50 ms", "p99 ms", "errors"], rows))
    print(f"\nready after {report['ready_seconds']:.1f} s; warm-up {report['warm_up_seconds']:.1f} s; "
          f"server RSS {report['server_rss_mib']:.0f} MiB (peak {report['server_peak_rss_mib']:.0f}); "
          f"load average {report['load_average_start']} -> {report['load_average_end']}; {report['versions']}\n")
    print(table(["target", "wanted", "measured", "pass"], [
        [t["what"], t["target"], f"{t['measured']:,.2f}" if abs(t["measured"]) < 100 else f"{t['measured']:,.0f}",
         "PASS" if t["passed"] else "FAIL"] for t in report["targets"].values()]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="every scenario for 0.5 s: a smoke test")
    args = parser.parse_args(argv)
    seconds = DURATIONS["quick" if args.quick else "full"]
    report: dict[str, Any] = {"seconds_per_scenario": seconds, "load_average_start": load_average(),
                              "versions": versions("sendwise", "uvicorn", "fastapi", "httptools", "uvloop"),
                              "client": "asyncio raw-socket HTTP/1.1 client in a separate process"}
    with tempfile.TemporaryDirectory(prefix="sendwise-bench-") as tmp, running_server(Path(tmp) / "state") as (
            port, pid, ready):
        report["ready_seconds"] = ready
        report["warm_up_seconds"] = warm_up(port)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            report["scenarios"] = pool.apply_async(run_client, (port, seconds)).get(timeout=60 + 20 * seconds)
        memory = memory_mib(pid)
    scenarios_ = report["scenarios"]
    report |= {
        "trivial_rps": scenarios_["trivial"]["requests_per_s"],
        "single_decision_rps": scenarios_["single"]["requests_per_s"],
        "single_decision_p50_ms": scenarios_["single"]["p50_ms"],
        "single_decision_p99_ms": scenarios_["single"]["p99_ms"],
        "open_loop_1000_achieved_rps": scenarios_["open_loop_1000"]["requests_per_s"],
        "open_loop_1000_p50_ms": scenarios_["open_loop_1000"]["p50_ms"],
        "open_loop_1000_p99_ms": scenarios_["open_loop_1000"]["p99_ms"],
        "open_loop_1000_errors": scenarios_["open_loop_1000"]["errors"],
        "batch100_decisions_per_s": scenarios_["batch100"]["items_per_s"],
        "batch100_p99_ms": scenarios_["batch100"]["p99_ms"],
        "batch1000_decisions_per_s": scenarios_["batch1000"]["items_per_s"],
        "batch1000_p99_ms": scenarios_["batch1000"]["p99_ms"],
        "feedback_events_per_s": scenarios_["feedback100"]["items_per_s"],
        "feedback_batch_p99_ms": scenarios_["feedback100"]["p99_ms"],
        "server_rss_mib": memory["rss_mib"],
        "server_peak_rss_mib": memory["peak_rss_mib"],
        "load_average_end": load_average(),
    }
    report["single_vs_trivial"] = report["single_decision_rps"] / report["trivial_rps"]
    report["targets"] = targets(report)
    print_report(report)
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
