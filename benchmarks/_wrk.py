"""Closed-loop load from ``wrk`` (Debian package ``wrk``), an established HTTP load generator in C.

Each scenario is a Lua script generated here: its ``request()`` makes every request new (customers
never decided for before, event ids never seen), and its ``done()`` prints one JSON line with the
counts and latency percentiles, which ``run_wrk`` reads back in the shape of ``server.Run.summary``.
One wrk thread drives all connections, so the load generator takes as little of the second core as it can.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

WRK = shutil.which("wrk")

_COMMON = """
wrk.headers["X-API-Key"] = "{api_key}"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d, '
    .. '"max_us": %d}}\\n', summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""

_DECISIONS = """
local head = '{{"customer_id": "{prefix}-'
local tail = '", "timezone": "Europe/Berlin", "region": "EU", "industry": "ecommerce", '
  .. '"campaign_type": "cart_reminder", "channels": ["email", "push", "sms"]}}'
function request()
  local parts = {{}}
  for k = 1, {n_customers} do
    counter = counter + 1
    parts[k] = head .. counter .. tail
  end
  return wrk.format("POST", "/v1/decisions", nil, '{{"customers": [' .. table.concat(parts, ", ") .. ']}}')
end
"""

_FEEDBACK = """
local ids = {{{decision_ids}}}
local types = {{"delivered", "opened", "clicked"}}
function request()
  local parts = {{}}
  for k = 1, {n_events} do
    counter = counter + 1
    parts[k] = '{{"event_id": "{prefix}-' .. counter .. '", "decision_id": "' .. ids[counter % #ids + 1]
      .. '", "type": "' .. types[counter % 3 + 1] .. '", "timestamp": "{timestamp}"}}'
  end
  return wrk.format("POST", "/v1/feedback", nil, '{{"events": [' .. table.concat(parts, ", ") .. ']}}')
end
"""

_GET = """
function request()
  return wrk.format("GET", "{path}")
end
"""


def get_script(api_key: str, path: str) -> str:
    """A wrk script that GETs ``path``."""
    return _COMMON.format(api_key=api_key) + _GET.format(path=path)


def decisions_script(api_key: str, prefix: str, n_customers: int) -> str:
    """A wrk script of decision requests for ``n_customers`` new customers each (ids ``prefix``-1, -2, …)."""
    return _COMMON.format(api_key=api_key) + _DECISIONS.format(prefix=prefix, n_customers=n_customers)


def feedback_script(api_key: str, prefix: str, decision_ids: list[str], n_events: int, timestamp: str) -> str:
    """A wrk script of feedback requests of ``n_events`` new events each on ``decision_ids``, stamped ``timestamp``."""
    quoted = ", ".join(f'"{d}"' for d in decision_ids)
    return _COMMON.format(api_key=api_key) + _FEEDBACK.format(decision_ids=quoted, prefix=prefix, n_events=n_events,
                                                              timestamp=timestamp)


def run_wrk(port: int, script: str, folder: Path, connections: int, seconds: float,
            items_per_request: int = 1) -> dict[str, float]:
    """Run ``script`` against 127.0.0.1:``port`` for ``seconds`` over ``connections`` keep-alive connections.

    Returns requests, errors (connect, read, write, timeout, non-2xx), requests/s, items/s and the
    p50, p99 and max latency in ms, as wrk measured them.
    """
    if WRK is None:
        raise RuntimeError("wrk not found (Debian/Ubuntu: apt-get install wrk)")
    path = folder / f"wrk-{abs(hash(script))}.lua"
    path.write_text(script)
    duration = max(1, round(seconds))
    out = subprocess.run([WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "-s", str(path),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True,
                         timeout=duration + 60).stdout
    line = next((line for line in out.splitlines() if line.startswith('{"requests"')), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    raw = json.loads(line)
    wall = raw["duration_us"] / 1e6
    ok = raw["requests"] - raw["errors"]
    return {"requests": raw["requests"], "errors": raw["errors"], "requests_per_s": ok / wall,
            "items_per_s": ok * items_per_request / wall, "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000}
