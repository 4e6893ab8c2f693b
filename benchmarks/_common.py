"""Helpers shared by the benchmark scripts: timing, rates, memory, versions, subprocess timing, tables.

Every script measures its subject and its baseline in the same process and run, reports medians over
repeats after a warm-up, and prints a table (plus JSON on request). Machine noise matters on small
shared machines, so the load average is recorded next to the numbers.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timing:
    """Wall-clock and CPU seconds (all threads of this process) of each repeat of one call."""

    wall: list[float]
    cpu: list[float]


def time_calls(fn: Callable[[], object], repeats: int) -> Timing:
    """Time ``repeats`` calls of ``fn`` (warm it up first)."""
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return Timing(wall, cpu)


def rate(count: int, timing: Timing) -> dict[str, float]:
    """Items per wall-clock second: the median over repeats, the slowest and the fastest repeat.

    ``cpu_per_wall`` is the median CPU time per wall-clock second: about the number of threads at
    work on a quiet machine, less when other processes took the cores (the rate then understates).
    ``per_cpu_second`` is the median of items per CPU-second of this process, what one core free
    of other work would deliver per thread; it barely moves with the machine's load.
    """
    return {
        "median": count / statistics.median(timing.wall),
        "min": count / max(timing.wall),
        "max": count / min(timing.wall),
        "repeats": len(timing.wall),
        "cpu_per_wall": statistics.median(c / w for c, w in zip(timing.cpu, timing.wall, strict=True)),
        "per_cpu_second": count / statistics.median(timing.cpu),
    }


def time_command(command: Sequence[str], repeats: int, env: Mapping[str, str] | None = None) -> list[float]:
    """Wall-clock seconds of ``repeats`` runs of a command, timed from outside (start-up included)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - start)
    return seconds


def run_json(command: Sequence[str], env: Mapping[str, str] | None = None) -> dict:
    """Run a command that prints one JSON object and return that object."""
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB.

    Linux's ``ru_maxrss`` survives ``exec``, so a subprocess would report its parent's peak;
    ``VmHWM`` belongs to the running program only. Elsewhere, fall back to ``ru_maxrss`` (KiB).
    """
    try:
        status = Path("/proc/self/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def versions(*packages: str) -> dict[str, str]:
    """Python and package versions, for the record next to the numbers."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, columns padded to line up in a terminal."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
                     for line in lines)


def write_json(path: str | Path, data: Mapping) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
