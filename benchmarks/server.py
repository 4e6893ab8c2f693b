"""Server benchmark: one real uvicorn worker on loopback, loaded by wrk and an open-loop client.

    python benchmarks/server.py [--json FILE] [--quick]

The script starts ``sendwise serve --workers 1`` on a free 127.0.0.1 port with a fresh state folder
(the default model: the seed world's prior), warms it up, and runs every scenario twice (two rounds
on new customers and event ids each), measuring in the same run:

- ``GET /v1/health``, the trivial endpoint of the same app, as the baseline (closed loop);
- single-customer decisions, closed loop: requests/s, p50, p99;
- single-customer decisions, open loop at 500 requests/s: latency from each request's scheduled send
  time (so a slow server cannot hide its queue), p50, p99, errors and unanswered requests;
- 100-customer and 1,000-customer decision batches: decisions/s, p99;
- feedback in batches of 100 events from 8 concurrent clients, each acknowledged only after its
  durable commit (WAL, synchronous=FULL; concurrent requests share commits): events/s;
- the server's resident memory after each round, and its peak.

Closed loops are driven by ``wrk`` (``apt-get install wrk``; ``make system-deps`` installs it): 16
connections, 2 for decision batches, 8 for feedback. The open loop needs a fixed arrival rate, which
wrk cannot express: it runs on the in-repo client (keep-alive HTTP/1.1 over raw asyncio sockets, a
separate process), which also drives the closed loops when wrk is missing (the report says which).
Targets are reported, never asserted; the table is the second round's. ``--quick`` runs every
scenario for about a second (a smoke test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import load_average, table, versions, write_json
from _wrk import WRK, decisions_script, feedback_script, get_script, run_wrk

API_KEY = "bench-key-0123456789abcdef"
READY_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 30.0
CONNECTIONS = 16
BATCH_CONNECTIONS = 2
FEEDBACK_CONNECTIONS = 8
OPEN_LOOP_RATE = 500.0
ROUND_OFFSET = 100_000_000  # each round's customer numbers start this much after the last round's
RSS_NOISE = 0.02  # "no growth": within the allocator's 2% wobble between two identical rounds
DURATIONS = {"full": 8.0, "quick": 1.0}  # seconds per scenario
TARGETS = {  # key: (comparison, threshold, what)
    "single_vs_trivial": (">=", 0.5, "single-decision throughput / trivial endpoint's"),
    "open_loop_p99_ms": ("<=", 10.0, "single decision p99 at 500 requests/s, ms"),
    "open_loop_errors": ("<=", 0, "errors or unanswered requests at 500 requests/s"),
    "batch100_decisions_per_s": (">=", 40_000, "decisions/s in 100-customer batches"),
    "batch1000_decisions_per_s": (">=", 60_000, "decisions/s in 1,000-customer batches"),
    "batch1000_p99_ms": ("<=", 50.0, "1,000-customer batch p99, ms"),
    "feedback_events_per_s": (">=", 20_000, "durable feedback events/s, batches of 100, 8 clients"),
    "rss_growth_share": ("<=", RSS_NOISE, "server memory growth, round 1 to round 2 (share of round 1's)"),
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


def feedback_requests(decision_ids: list[str], prefix: str, events_per_request: int = 100) -> Callable[[int], bytes]:
    """Request ``i`` of ``events_per_request`` feedback events (delivered, opened, clicked) on ``decision_ids``,
    each event id new (``prefix``-i-k), stamped now."""
    now = datetime.now(UTC).isoformat()

    def batch(i: int) -> bytes:
        events = [{"event_id": f"{prefix}-{i}-{k}",
                   "decision_id": decision_ids[(i * events_per_request + k) % len(decision_ids)],
                   "type": ("delivered", "opened", "clicked")[k % 3], "timestamp": now}
                  for k in range(events_per_request)]
        return http_request("POST", "/v1/feedback", json.dumps({"events": events}).encode())

    return batch


async def decision_ids(port: int, first: int, n: int = 1000) -> list[str]:
    """Decide for ``n`` new customers from ``first`` on; their decision ids (what feedback is posted on)."""
    conn = await Connection.open(port)
    _, body = await conn.send(decisions_request(first, n))
    conn.close()
    return [d["decision_id"] for d in json.loads(body)["decisions"]]


async def python_closed_loops(port: int, seconds: float, offset: int) -> dict[str, dict[str, float]]:
    """The closed-loop scenarios on the in-repo client (when wrk is not installed)."""
    health = http_request("GET", "/v1/health")
    results = {"trivial": (await closed_loop(port, lambda i: health, seconds)).summary()}
    results["single"] = (await closed_loop(port, lambda i: decisions_request(offset + 10_000_000 + i, 1),
                                           seconds)).summary()
    for n in (100, 1000):
        results[f"batch{n}"] = (await closed_loop(port, lambda i, n=n: decisions_request(offset + n * (1_000_000 + i),
                                                                                         n),
                                                  seconds, connections=BATCH_CONNECTIONS)).summary(n)
    ids = await decision_ids(port, offset + 50_000_000)
    results["feedback100"] = (await closed_loop(port, feedback_requests(ids, f"p{offset}-fb"), seconds,
                                                connections=FEEDBACK_CONNECTIONS)).summary(100)
    return results


def wrk_closed_loops(port: int, seconds: float, offset: int, folder: Path) -> dict[str, dict[str, float]]:
    """The closed-loop scenarios driven by wrk: the same requests as the in-repo client's."""
    results = {"trivial": run_wrk(port, get_script(API_KEY, "/v1/health"), folder, CONNECTIONS, seconds)}
    results["single"] = run_wrk(port, decisions_script(API_KEY, f"w{offset}-single", 1), folder, CONNECTIONS, seconds)
    for n in (100, 1000):
        results[f"batch{n}"] = run_wrk(port, decisions_script(API_KEY, f"w{offset}-batch{n}", n), folder,
                                       BATCH_CONNECTIONS, seconds, n)
    ids = asyncio.run(decision_ids(port, offset + 50_000_000))
    results["feedback100"] = run_wrk(port, feedback_script(API_KEY, f"w{offset}-fb", ids, 100,
                                                           datetime.now(UTC).isoformat()),
                                     folder, FEEDBACK_CONNECTIONS, seconds, 100)
    return results


def run_client(port: int, seconds: float, offset: int, closed_loops: bool) -> dict[str, dict[str, float]]:
    """Entry point of the load-generator process: the open loop, and the closed loops unless wrk drives them."""

    async def run() -> dict[str, dict[str, float]]:
        results = await python_closed_loops(port, seconds, offset) if closed_loops else {}
        results["open_loop"] = (await open_loop(port, lambda i: decisions_request(offset + 20_000_000 + i, 1),
                                                OPEN_LOOP_RATE, seconds)).summary()
        return results

    return asyncio.run(run())


def one_round(port: int, seconds: float, offset: int, folder: Path) -> dict[str, dict[str, float]]:
    """Every scenario once, on customers and events no earlier round used (ids from ``offset`` on).

    The feedback scenario also reports how many requests each durable commit held on average
    (the server's ``/metrics``: only feedback commits durable units).
    """
    before = durable_counts(port)
    results = wrk_closed_loops(port, seconds, offset, folder) if WRK else {}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results |= pool.apply_async(run_client, (port, seconds, offset, not WRK)).get(timeout=60 + 20 * seconds)
    after = durable_counts(port)
    results["feedback100"]["requests_per_commit"] = (
        float("nan") if before is None or after is None else (after[0] - before[0]) / max(1, after[1] - before[1]))
    return results


def durable_counts(port: int) -> tuple[int, int] | None:
    """The server's durable units and the commits that held them so far (``/metrics``); None if it does not
    count them (a version without group commit; a store without it reports 0 of each)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        values = dict(line.split()[:2] for line in response.read().decode().splitlines()
                      if line.startswith(("sendwise_durable_units ", "sendwise_durable_commits ")))
    if len(values) < 2:
        return None
    return int(float(values["sendwise_durable_units"])), int(float(values["sendwise_durable_commits"]))


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


SCENARIOS = (("trivial", "GET /v1/health (baseline)", "req"),
             ("single", "decisions, 1 customer, closed loop", "decision"),
             ("open_loop", "decisions, 1 customer, open loop 500/s", "decision"),
             ("batch100", "decisions, 100-customer batches", "decision"),
             ("batch1000", "decisions, 1,000-customer batches", "decision"),
             ("feedback100", "feedback, 100-event batches, 8 clients (durable)", "event"))


def print_report(report: dict[str, Any]) -> None:
    first, second = report["rounds"]
    rows = []
    for name, what, per in SCENARIOS:
        r = second["scenarios"][name]
        rows.append([what, f"{r['requests']:,}", f"{r['requests_per_s']:,.0f}", f"{r['items_per_s']:,.0f} {per}/s",
                     f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", str(r["errors"]),
                     f"{first['scenarios'][name]['items_per_s']:,.0f}"])
    print(f"one uvicorn worker; closed loops: {report['client']}; open loop: in-repo client; "
          f"{report['seconds_per_scenario']} s per scenario; round 2 (round 1's items/s on the right)\n")
    print(table(["scenario", "requests", "requests/s", "items/s", "p50 ms", "p99 ms", "errors", "round 1"], rows))
    print(f"\nfeedback: {report['feedback_requests_per_commit']:.2f} requests per durable commit (group commit)")
    print(f"ready after {report['ready_seconds']:.1f} s; warm-up {report['warm_up_seconds']:.1f} s; server RSS "
          f"{first['rss_mib']:.0f} MiB after round 1, {second['rss_mib']:.0f} after round 2 (peak "
          f"{report['server_peak_rss_mib']:.0f}); load average {report['load_average_start']} -> "
          f"{report['load_average_end']}; {report['versions']}\n")
    print(table(["target", "wanted", "measured", "pass"], [
        [t["what"], t["target"], f"{t['measured']:,.2f}" if abs(t["measured"]) < 100 else f"{t['measured']:,.0f}",
         "PASS" if t["passed"] else "FAIL"] for t in report["targets"].values()]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="every scenario for about a second: a smoke test")
    args = parser.parse_args(argv)
    seconds = DURATIONS["quick" if args.quick else "full"]
    report: dict[str, Any] = {"seconds_per_scenario": seconds, "load_average_start": load_average(),
                              "versions": versions("sendwise", "uvicorn", "fastapi", "httptools", "uvloop"),
                              "client": WRK and _wrk_version() or "in-repo asyncio client (wrk not installed)"}
    with tempfile.TemporaryDirectory(prefix="sendwise-bench-") as tmp, running_server(Path(tmp) / "state") as (
            port, pid, ready):
        report["ready_seconds"] = ready
        report["warm_up_seconds"] = warm_up(port)
        rounds = []
        for number in range(2):
            scenarios = one_round(port, seconds, ROUND_OFFSET * (number + 1), Path(tmp))
            rounds.append({"scenarios": scenarios, **memory_mib(pid)})
    report["rounds"] = rounds
    last = rounds[-1]["scenarios"]
    report |= {
        "trivial_rps": last["trivial"]["requests_per_s"],
        "single_decision_rps": last["single"]["requests_per_s"],
        "single_decision_p50_ms": last["single"]["p50_ms"],
        "single_decision_p99_ms": last["single"]["p99_ms"],
        "single_vs_trivial": last["single"]["requests_per_s"] / last["trivial"]["requests_per_s"],
        "open_loop_achieved_rps": last["open_loop"]["requests_per_s"],
        "open_loop_p50_ms": last["open_loop"]["p50_ms"],
        "open_loop_p99_ms": last["open_loop"]["p99_ms"],
        "open_loop_errors": last["open_loop"]["errors"],
        "batch100_decisions_per_s": last["batch100"]["items_per_s"],
        "batch100_p99_ms": last["batch100"]["p99_ms"],
        "batch1000_decisions_per_s": last["batch1000"]["items_per_s"],
        "batch1000_p99_ms": last["batch1000"]["p99_ms"],
        "feedback_events_per_s": last["feedback100"]["items_per_s"],
        "feedback_batch_p99_ms": last["feedback100"]["p99_ms"],
        "feedback_requests_per_commit": last["feedback100"]["requests_per_commit"],
        "server_rss_mib": rounds[-1]["rss_mib"],
        "server_peak_rss_mib": rounds[-1]["peak_rss_mib"],
        "rss_growth_share": rounds[1]["rss_mib"] / rounds[0]["rss_mib"] - 1.0,
        "load_average_end": load_average(),
    }
    report["targets"] = targets(report)
    print_report(report)
    if args.json:
        write_json(args.json, report)


def _wrk_version() -> str:
    """wrk's version line (it prints it with its usage, on any unknown option)."""
    out = subprocess.run([str(WRK), "--version"], capture_output=True, text=True, check=False)
    return f"wrk ({(out.stdout or out.stderr).splitlines()[0].strip()})"


if __name__ == "__main__":
    main()
