"""A real ``redis-server`` of the tests' own: a free loopback port, its AOF in a temporary folder, stopped by pid.

Started with ``--save ''`` and ``--appendonly yes --appendfsync always``. Every test that needs it is
skipped, saying what to install, when ``redis-server`` or the ``redis`` client is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sendwise.server import free_port
from sendwise.server.store import Store

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT_S = 10.0


def skip_without_redis() -> None:
    """Skip the calling test, saying what to install, unless both redis-server and the redis client exist."""
    if not Path(REDIS_SERVER).is_file():
        pytest.skip("redis-server not found (Debian/Ubuntu: apt-get install redis-server)")
    pytest.importorskip("redis", reason="the redis client is missing (pip install 'sendwise[redis]')")


@dataclass
class RedisServer:
    """A redis-server of the tests on a free 127.0.0.1 port, with its AOF in ``folder``; stopped by pid."""

    folder: Path
    appendfsync: str = "always"
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start on ``folder`` (again, after a kill: it replays its AOF) and wait until it answers."""
        self.port = self.port or free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync,
             "--logfile", str(self.folder / "redis.log")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if self.client().ping():
                    return self
            except Exception:  # noqa: BLE001 - not up yet (refused, or still loading its AOF)
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = (self.folder / "redis.log").read_text()
                    raise RuntimeError(f"redis-server did not start:\n{log}") from None
                time.sleep(0.02)

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    def kill(self) -> None:
        """SIGKILL (a crash) and wait until it is gone."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if Redis will not exit (it refuses while writing its first AOF)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


def redis_store(url: str, folder: Path, **options: Any) -> Store:
    """A Redis store on ``url`` that fsyncs every commit, spooling into ``folder``."""
    from sendwise.server.redis_store import RedisStore

    return RedisStore(url, durability="always", spool_dir=folder / "spool", **options)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's redis-server (skipped, saying why, without redis-server or the client)."""
    skip_without_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may kill and restart."""
    skip_without_redis()
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
