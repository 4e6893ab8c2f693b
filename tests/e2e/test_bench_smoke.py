"""The server benchmark runs end to end in quick mode and writes the JSON keys the reports rely on."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "server.py"
KEYS = ("trivial_rps", "single_decision_rps", "single_decision_p99_ms", "open_loop_p99_ms",
        "batch100_decisions_per_s", "batch1000_p99_ms", "feedback_events_per_s", "feedback_requests_per_commit",
        "server_rss_mib")


def test_server_benchmark_quick_mode_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "server.json"
    done = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    missing = [key for key in KEYS if key not in result]
    assert not missing, f"benchmark JSON lacks {missing}"
    assert all(math.isfinite(result[key]) and result[key] > 0 for key in KEYS), {k: result[k] for k in KEYS}
    assert len(result["rounds"]) == 2
    for measured in result["rounds"]:
        assert all(s["errors"] == 0 for name, s in measured["scenarios"].items() if name != "open_loop"), measured
    assert set(result["targets"]) and all(isinstance(t["passed"], bool) for t in result["targets"].values())
