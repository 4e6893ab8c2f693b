"""The engine benchmark runs end to end and writes the JSON keys that reports read (not its timings)."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "engine.py"
RATES = ["batch_decisions_per_s", "numpy_batch_decisions_per_s", "step_decisions_per_s", "numpy_step_decisions_per_s"]
TARGETS = {"batch_decisions_per_s", "batch_speedup_vs_numpy", "step_decisions_per_s", "import_seconds_cached"}


def test_quick_benchmark_writes_the_promised_json(tmp_path: Path) -> None:
    out = tmp_path / "engine.json"
    done = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--repeats", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    for key in [*RATES, "import_seconds_cached", "batch_speedup_vs_numpy", "peak_rss_mib"]:
        assert isinstance(report[key], float) and report[key] > 0, key
    assert 0 < report["cpu_share"] <= 1.5  # CPU per wall-clock second of single-threaded figures
    assert set(report["targets"]) == TARGETS
    for target in report["targets"].values():
        assert isinstance(target["passed"], bool) and isinstance(target["passed_idle_estimate"], bool)
    assert report["thread_counts"][0] == 1 and {"python", "numpy", "numba"} <= report["versions"].keys()
    assert report["start_up"]["compile_seconds_cold"] is None  # --quick skips the cold compile
    assert "| batch B=" in done.stdout and ("PASS" in done.stdout or "FAIL" in done.stdout)
