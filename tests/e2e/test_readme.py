"""Every fenced ``bash`` command of the README works when pasted, in order, on a fresh home.

The README's blocks run as one bash script (``set -euo pipefail``) in a temporary folder that links the
checkout's ``.venv``, ``Makefile``, ``engine/`` and ``benchmarks/`` (so ``.venv/bin/…``, ``make`` and
benchmark lines work unchanged), with ``SENDWISE_HOME`` in that folder. Three things are adapted, each on purpose:

- long runs are cut to a small size by capping their size flags (``SIZE_CAPS``), the same command otherwise;
- commands that run until stopped (``make serve``, ``mlflow ui``) start in the background, and the next
  block waits until their port answers; they are stopped when the script ends;
- a gated ``promote`` may exit 1, its verdict "not promoted" (any other failure still fails);
- ``make demo`` and ``make test`` are left out: ``make test`` is what runs this test, and ``make demo`` has
  its own end-to-end test at a small size (``test_demo.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# 14 days: an experiment log keeps only days whose every attribution window (e-mail: a week) has closed.
SIZE_CAPS = {"--customers": 2000, "--days": 14, "--seeds": 2, "--bootstrap": 100, "--n-draws": 100}
LEFT_OUT = re.compile(r"^\s*make (demo|test)\b")
GATED = re.compile(r"\bpromote\b.*--gate\b")
UNTIL_STOPPED = {re.compile(r"\bmake serve\b"): 8000, re.compile(r"\bmlflow ui\b"): 5000}
PRELUDE = r"""set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
wait_for_port() {  # until 127.0.0.1:$1 answers, or fail after 120 s
  for _ in $(seq 1200); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing answered on port $1" >&2; return 1
}
"""


def bash_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, body) of each fenced block whose info string is ``bash``."""
    blocks, body, start = [], None, 0
    for number, line in enumerate(text.splitlines(), start=1):
        if body is None and line.strip() == "```bash":
            body, start = [], number + 1
        elif body is not None and line.strip() == "```":
            blocks.append((start, "\n".join(body)))
            body = None
        elif body is not None:
            body.append(line)
    return blocks


def cap_sizes(command: str) -> str:
    """The command with every size flag in ``SIZE_CAPS`` lowered to its cap (never raised)."""
    def capped(match: re.Match[str]) -> str:
        flag, value = match.group(1), int(match.group(2))
        return f"{flag} {min(value, SIZE_CAPS[flag])}"
    return re.sub(rf"({'|'.join(map(re.escape, SIZE_CAPS))})[ =](\d+)", capped, command)


def script(blocks: list[tuple[int, str]]) -> str:
    """One bash script: each block announced by its README line, long-running commands in the background."""
    parts, ports = [PRELUDE], []
    for start, body in blocks:
        lines = [line for line in body.splitlines() if not LEFT_OUT.match(line)]
        if not any(line.strip() for line in lines):
            continue
        parts.append(f"echo '### README line {start}'")
        parts.extend(f"wait_for_port {port}" for port in ports)
        for line in lines:
            port = next((p for pattern, p in UNTIL_STOPPED.items() if pattern.search(line)), None)
            if port is None and GATED.search(line) and not line.rstrip().endswith("\\"):
                parts.append(f"{cap_sizes(line)} || [ $? -eq 1 ]")  # exit 1: the gate kept the champion
            elif port is None:
                parts.append(cap_sizes(line))
            else:
                parts.append(f"( {line} ) > until-stopped-{port}.log 2>&1 &")
                ports.append(port)
    return "\n".join(parts) + "\n"


def test_the_size_caps_lower_flags_and_keep_the_rest() -> None:
    assert cap_sizes("simulate --customers 100000 --days 3 --seeds=5 --jobs 2") == \
        "simulate --customers 2000 --days 3 --seeds 2 --jobs 2"
    assert cap_sizes("simulate --days 60") == "simulate --days 14"


def test_every_bash_block_of_the_readme_runs(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (the README's serving examples use it)")
    venv = Path(sys.executable).parents[1]
    (tmp_path / ".venv").symlink_to(venv)
    for name in ("Makefile", "engine", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name)
    # The install is done (the venv runs this test): a copy older than every stamp keeps `make` from redoing it.
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    os.utime(tmp_path / "pyproject.toml", (0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "SENDWISE_API_KEYS")}
    env["SENDWISE_HOME"] = str(tmp_path / ".sendwise")
    blocks = bash_blocks(README.read_text())
    assert blocks, "the README has no bash block"
    (tmp_path / "readme.sh").write_text(script(blocks))
    done = subprocess.run(["bash", "readme.sh"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    logs = "".join(f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in tmp_path.glob("until-stopped-*.log"))
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}{logs}"
    assert '"decisions":[{' in done.stdout, done.stdout[-3000:]
    assert '"status":"applied"' in done.stdout, done.stdout[-3000:]
    assert not (tmp_path / "mlflow.db").exists() and not list(tmp_path.glob("mlruns*"))
