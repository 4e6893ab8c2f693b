"""Stores and workers benchmark: decisions/s and durable feedback/s of SQLite and Redis, 1 and 2 workers.

    python benchmarks/server_redis.py [--workers 1,2] [--json FILE] [--quick]

For each worker count, ``sendwise serve --workers N`` on the default SQLite state, then on a Redis
of its own (a temporary folder, a free 127.0.0.1 port, ``appendonly yes``, ``appendfsync always``,
no RDB snapshots; ``SENDWISE_REDIS_DURABILITY=always``). Each row's baselines, measured in the same
run, are SQLite with as many workers (``x SQLite``) and the same store with one worker (``x 1
worker``). Each configuration gets a fresh state and is driven by ``benchmarks/server.py``'s
load generator (keep-alive HTTP/1.1 over raw asyncio sockets, in this process):

- decisions: 100-customer batches, closed loop, 2 connections per worker: decisions/s, p99;
- feedback: 100-event batches, closed loop, 8 connections (2 per worker beyond 4): durable events/s, p99.

Durability differs and is part of the comparison: on Redis every commit (decision logs too) is
fsynced before the reply; SQLite fsyncs feedback (``synchronous=FULL``) but not decision logs.
New connections land on whichever worker accepts them, so the script waits after the first worker
is ready and reports how many workers did work while measured. Numbers are reported, not asserted;
the targets (Redis within 0.8 of SQLite, two workers above one) are for the reader to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import load_average, table, versions, write_json

from sendwise.server import free_port
from server import FEEDBACK_CONNECTIONS, closed_loop, decision_ids, decisions_request, feedback_requests, running_server

DURATIONS = {"full": 5.0, "quick": 1.0}  # seconds per scenario
WARM_UP_S = 2.0
BUSY_SHARE = 0.05  # a worker "did work" if it used this share of one core while measured
REDIS_START_TIMEOUT_S = 10.0


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server on a free loopback port, its AOF in ``folder``, fsynced on every write; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found; install it (Debian/Ubuntu: apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
                                "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                                "--logfile", str(folder / "redis.log")], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{(folder / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(port: int) -> bool:
    """Whether a Redis on ``port`` answers PING (inline command, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def flush_redis(url: str) -> None:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        if not sock.recv(16).startswith(b"+OK"):
            raise RuntimeError("FLUSHALL failed")


def cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each uvicorn worker: the children of ``pid``, or ``pid`` if it has none."""
    workers = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()] or [pid]
    out = {}
    for worker in workers:
        fields = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()
        out[worker] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


async def scenarios(port: int, seconds: float, workers: int, pid: int) -> dict[str, dict[str, float]]:
    """Warm every worker up, then measure decisions and feedback, counting the workers that did work."""
    connections = 2 * workers
    await closed_loop(port, lambda i: decisions_request(10_000_000 + 100 * i, 100), WARM_UP_S, connections)
    before = cpu_seconds(pid)
    start = time.perf_counter()
    results = {"decisions": (await closed_loop(port, lambda i: decisions_request(20_000_000 + 100 * i, 100),
                                               seconds, connections)).summary(100)}
    feedback = feedback_requests(await decision_ids(port, 30_000_000), "feedback")
    results["feedback"] = (await closed_loop(port, feedback, seconds,
                                             max(FEEDBACK_CONNECTIONS, connections))).summary(100)
    elapsed, after = time.perf_counter() - start, cpu_seconds(pid)
    busy = sum(after[p] - before.get(p, 0.0) > BUSY_SHARE * elapsed for p in after)
    results["workers"] = {"asked": workers, "busy": busy}
    return results


def measure(label: str, workers: int, seconds: float, settings: dict[str, str]) -> dict[str, Any]:
    """Start a fresh server (``workers`` workers, extra ``settings``), let every worker start, measure it."""
    with tempfile.TemporaryDirectory(prefix="sendwise-bench-") as tmp, running_server(
            Path(tmp) / "state", workers, settings) as (port, pid, ready):
        time.sleep(ready if workers > 1 else 0.0)  # the other workers started with the first one
        result = asyncio.run(scenarios(port, seconds, workers, pid))
    return {"store": label, "ready_seconds": ready, **result}


def print_report(report: dict[str, Any]) -> None:
    runs = {(run["store"], run["workers"]["asked"]): run for run in report["runs"]}
    rows = []
    for run in report["runs"]:
        d, f = run["decisions"], run["feedback"]
        sqlite, single = runs[("SQLite", run["workers"]["asked"])], runs[(run["store"], 1)]
        rows.append([run["store"], f"{run['workers']['asked']} ({run['workers']['busy']} busy)",
                     f"{d['items_per_s']:,.0f}", f"{d['items_per_s'] / sqlite['decisions']['items_per_s']:.2f}",
                     f"{d['items_per_s'] / single['decisions']['items_per_s']:.2f}",
                     f"{d['p99_ms']:.0f}", f"{f['items_per_s']:,.0f}",
                     f"{f['items_per_s'] / sqlite['feedback']['items_per_s']:.2f}",
                     f"{f['items_per_s'] / single['feedback']['items_per_s']:.2f}", f"{f['p99_ms']:.0f}",
                     str(d["errors"] + f["errors"])])
    print(f"{report['seconds_per_scenario']} s per scenario; {report['cores']} cores; load average "
          f"{report['load_average_start']} -> {report['load_average_end']}; {report['versions']}\n")
    print(table(["store", "workers", "decisions/s", "x SQLite", "x 1 worker", "p99 ms (100)", "feedback ev/s",
                 "x SQLite", "x 1 worker", "p99 ms (100)", "errors"], rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="every scenario for 1 s: a smoke test")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    if not counts or min(counts) < 1 or 1 not in counts:
        parser.error(f"--workers needs positive counts including 1, e.g. 1,2,4; got {args.workers!r}")
    seconds = DURATIONS["quick" if args.quick else "full"]
    report: dict[str, Any] = {"seconds_per_scenario": seconds, "cores": os.cpu_count(),
                              "load_average_start": load_average(),
                              "versions": versions("sendwise", "redis", "uvicorn", "fastapi")}
    runs = [measure("SQLite", workers, seconds, {}) for workers in counts]
    with tempfile.TemporaryDirectory(prefix="sendwise-redis-") as folder, redis_server(Path(folder)) as url:
        for workers in counts:
            flush_redis(url)
            runs.append(measure("Redis", workers, seconds, {"state_url": url, "redis_durability": "always"}))
    report |= {"runs": runs, "load_average_end": load_average()}
    print_report(report)
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
