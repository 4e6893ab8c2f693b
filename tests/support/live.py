"""Live servers of the end-to-end tests: uvicorn processes on loopback that a test may ``kill -9``.

A small fork server imports the package once and forks one child per start, so a restart skips the
seconds of imports; each child is its own process group (``kill -9`` of the group is a real crash),
opens the state from disk, and serves the app exactly as ``uvicorn --factory sendwise.server:create_app``
would. Ports and readiness come from ``sendwise.server`` (``free_port``, ``wait_ready``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sendwise.server import free_port, wait_ready

from .app import e2e_settings

START_TIMEOUT_S = 60.0

_FORK_SERVER = r"""
import json, os, signal, sys
import uvicorn
from sendwise.server import create_app

signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps killed servers
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.environ.update(request["env"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        uvicorn.run(create_app(), host="127.0.0.1", port=request["port"], log_level="warning")
        os._exit(0)
    print(pid, flush=True)
"""


def start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (None if there is none): tells a process from a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, ProcessLookupError):
        return None


@dataclass
class LiveServer:
    """One uvicorn process serving the app on 127.0.0.1."""

    pid: int
    port: int
    log: Path
    started: str | None = None

    def __post_init__(self) -> None:
        self.started = start_time(self.pid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        """Return once the server is ready; kill it and raise, with its log, if it dies or stays unready."""
        try:
            wait_ready(self.url, alive=self.alive, output=self.log.read_text, timeout_s=START_TIMEOUT_S)
        except RuntimeError:
            self.kill()
            raise

    def alive(self) -> bool:
        return self.started is not None and start_time(self.pid) == self.started

    def kill(self, sig: signal.Signals = signal.SIGKILL, timeout_s: float = 10.0) -> None:
        """Send ``sig`` to the server's whole process group and wait until the server is gone."""
        deadline = time.monotonic() + timeout_s
        while self.alive():
            with suppress(ProcessLookupError):  # it may end between the check and the signal
                os.killpg(self.pid, sig)
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            sig, deadline = signal.SIGKILL, time.monotonic() + timeout_s

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), as a process manager would do it."""
        self.kill(signal.SIGTERM)


class ServerFactory:
    """Starts servers by forking a pre-imported Python process (see the module docstring)."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._process = subprocess.Popen([sys.executable, "-c", _FORK_SERVER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        self._started: list[LiveServer] = []

    def start(self, state_dir: Path, port: int | None = None, **overrides: Any) -> LiveServer:
        """A ready server on ``state_dir`` (a fresh loopback port unless ``port`` is given)."""
        assert self._process.stdin is not None and self._process.stdout is not None
        env = {f"SENDWISE_{name.upper()}": value for name, value in e2e_settings(state_dir, **overrides).items()}
        port = port or free_port()
        log = self._log_dir / f"server-{port}.log"
        self._process.stdin.write(json.dumps({"env": env, "port": port, "log": str(log)}) + "\n")
        self._process.stdin.flush()
        reply = self._process.stdout.readline()
        if not reply:
            raise RuntimeError("the fork server exited; its error is in the test output above")
        server = LiveServer(int(reply), port, log)
        self._started.append(server)
        server.wait_ready()
        return server

    def close(self) -> None:
        for server in self._started:
            server.kill()
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=10)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """The session's fork server; every server it started is killed at the end."""
    factory = ServerFactory(tmp_path_factory.mktemp("server-logs"))
    yield factory
    factory.close()
