"""The served-loop benchmark runs in quick mode: the seed world through the real app, next to the simulator.

Checks what must hold whatever the learning quality: the JSON the reports rely on, every simulated
decision answered by the server, served choices inside the simulator's masks, send times that agree,
and every posted outcome accepted as applied (the fake clock keeps events inside their windows).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "served_loop.py"
INTERVAL_KEYS = ("served_share_of_segment_oracle", "in_process_share_of_segment_oracle")
NUMBER_KEYS = ("mean_uniform_weight", "decisions_per_s", "served_over_in_process", "served_wall_s")
MAX_MISMATCH_SHARE = 0.005


def test_served_loop_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "served.json"
    done = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--no-progress", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())

    missing = [key for key in (*INTERVAL_KEYS, *NUMBER_KEYS, "per_seed", "mask_mismatches") if key not in result]
    assert not missing, f"benchmark JSON lacks {missing}"
    for key in INTERVAL_KEYS:
        mean, low, high = result[key]
        assert all(math.isfinite(x) for x in (mean, low, high)) and low <= mean <= high, (key, result[key])
    for key in NUMBER_KEYS:
        assert math.isfinite(result[key]) and result[key] > 0, (key, result[key])

    (seed,) = result["per_seed"]
    served = seed["served"]
    assert served["decisions"] == seed["decisions"] > 0, \
        f"server answered {served['decisions']} of the simulator's {seed['decisions']} decisions"
    assert seed["uniform_weight_rows"] > 0, "the served decision log exported no closed decision"
    mismatches, limit = result["mask_mismatches"], MAX_MISMATCH_SHARE * seed["decisions"]
    assert mismatches <= limit, f"{mismatches} served choices outside the simulator's masks (limit {limit:.0f})"
    assert result["send_time_mismatches"] == 0, \
        f"{result['send_time_mismatches']} served send times differ from the simulator's (limit 0)"
    assert served["events_posted"] > 0, "no outcome reached the server"
    assert served["event_status"] == {"applied": served["events_posted"]}, served["event_status"]
