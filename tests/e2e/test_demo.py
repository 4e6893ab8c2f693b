"""``sendwise demo`` (what ``make demo`` runs) goes through the whole loop, at a tiny size."""

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_whole_loop_and_stops_its_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-m", "sendwise.cli.main", "demo", "--steps", "2000", "--customers", "300", "--days", "4",
         "--seeds", "1", "--state-dir", str(tmp_path / "state")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for step in ("1. The engine", "2. Simulation", "3. MLflow", "4. Serving", "the demo is done"):
        assert step in out, f"missing {step!r} in the demo's output:\n{out[-3000:]}"
    assert "alias @champion" in out
    assert "model - holdout" in out and "model - baseline" in out and "sample ratio:" in out
    assert "POST /v1/decisions -> 200" in out and "the same event again -> duplicate" in out
    assert "served loop, 200 NA ecommerce cart_reminder customers" in out and "the next 200 customers" in out
    assert (tmp_path / "state" / "mlflow.db").is_file()
