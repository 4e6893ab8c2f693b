"""A client trickling a request body over a real socket gets 408 at the body timeout; others are served meanwhile."""

from __future__ import annotations

import os
import select
import socket
import time
from pathlib import Path

import httpx

from sendwise.server import serve_in_background
from tests.support.app import E2E_API_KEY, E2E_AUTH, e2e_settings

BODY_TIMEOUT_S = 1.0


def test_a_trickled_body_gets_408_and_holds_nobody_up(tmp_path: Path) -> None:
    env = {"NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba"))}
    settings = e2e_settings(tmp_path / "state", body_timeout_seconds=BODY_TIMEOUT_S)
    with serve_in_background(settings, env=env) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10.0) as trickle, \
            httpx.Client(base_url=server.url, headers=E2E_AUTH, timeout=10.0) as client:
        trickle.sendall(f"POST /v1/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {E2E_API_KEY}\r\n"
                        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode())
        started = time.monotonic()
        for byte in b'{"events": [':  # a byte every 0.2 s: it would take 200 s to send the whole body
            if select.select([trickle], [], [], 0.2)[0]:
                break  # the server has answered: stop sending into a closed connection
            trickle.sendall(bytes([byte]))
            assert client.get("/v1/health").status_code == 200  # the worker serves others meanwhile
        received = [trickle.recv(4096)]
        answered_after = time.monotonic() - started
        trickle.settimeout(5.0)
        while received[-1]:  # head and body may come in separate segments; then the server closes
            received.append(trickle.recv(4096))
        answer = b"".join(received).decode()
        assert answer.startswith("HTTP/1.1 408"), answer
        assert f"did not arrive within {BODY_TIMEOUT_S:g} s" in answer
        assert answered_after < BODY_TIMEOUT_S + 2.0
