"""End to end: a real ``sendwise serve`` process never writes a raw customer id to its output or log.

Decisions, feedback, an erasure (allowed and refused) and a dashboard request naming a customer go
to the server with the access log off (the default) and on; the server's whole output is then
searched for every raw id used.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sendwise.server import serve_in_background
from tests.support.api import decide, event, feedback, seed_customer
from tests.support.app import E2E_AUTH, e2e_settings

READY_TIMEOUT_S = 90.0
RAW_IDS = ("alice.raw-0001@example.com", "bob-raw-0002", "carol raw 0003")


@pytest.mark.parametrize("serve_args", [(), ("--access-log",)], ids=["access-log-off", "access-log-on"])
def test_no_raw_customer_id_in_the_server_output(tmp_path: Path, serve_args: tuple[str, ...]) -> None:
    env = {"NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba"))}
    log = tmp_path / "server.log"
    with serve_in_background(e2e_settings(tmp_path / "state"), env=env, log=log, timeout_s=READY_TIMEOUT_S,
                             serve_args=("--log-level", "debug", *serve_args)) as server, \
            httpx.Client(base_url=server.url, headers=E2E_AUTH, timeout=60.0) as client:
        decisions = decide(client, *(seed_customer(raw) for raw in RAW_IDS))
        now = datetime.now().astimezone() - timedelta(seconds=1)
        assert feedback(client, *(event(d, "delivered", f"ev-{n}", now) for n, d in enumerate(decisions)))
        first, second, third = (httpx.URL(f"/v1/customers/{raw}") for raw in RAW_IDS)
        assert client.delete(first).status_code == 200
        assert client.delete(second, headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 401
        assert client.get("/dashboard", params={"customer_id": RAW_IDS[2]}).status_code == 200
        assert client.get("/dashboard", params={"customer_id": RAW_IDS[1]}, headers={"X-API-Key": ""},
                          follow_redirects=False).status_code == 303
        assert client.delete(third, headers={"X-API-Key": ""}).status_code == 401
    output = log.read_text(errors="replace")
    if serve_args:
        assert "/v1/customers/<redacted>" in output and "customer_id=<redacted>" in output, output[-2000:]
    for raw in RAW_IDS:
        variants = {raw, httpx.URL(f"/{raw}").raw_path.decode()[1:], str(httpx.QueryParams({"c": raw}))[2:]}
        leaked = [v for v in variants if v in output]
        assert not leaked, f"{leaked} in the server output:\n{output[-2000:]}"
