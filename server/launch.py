"""Start a real decision server on a free loopback port in the background and wait until it is ready.

For the demo, the benchmarks and the end-to-end tests: ``serve_in_background`` runs ``sendwise serve``
as a child process in its own session (so a crash test can ``kill -9`` its whole process group), or
uvicorn in a thread of this process (no second start-up, no kill). Either way it returns once
``GET /v1/ready`` answers 200, and a server that dies or stays unready raises an error carrying the
server's output.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from .app import create_app
from .settings import Settings

HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
OUTPUT_TAIL = 3000  # characters of the server's output an error shows


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, *, alive: Callable[[], bool], output: Callable[[], str],
               timeout_s: float = READY_TIMEOUT_S) -> httpx.Response:
    """Poll ``{url}/v1/ready`` until it answers 200, and return that answer.

    ``alive`` tells whether the server still runs and ``output`` gives what it printed: a server that
    dies, or is not ready within ``timeout_s`` seconds, raises ``RuntimeError`` with the tail of that output.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server at {url} died while starting:\n{output()[-OUTPUT_TAIL:]}")
        with suppress(httpx.TransportError):
            response = httpx.get(f"{url}/v1/ready", timeout=1.0)
            if response.status_code == 200:
                return response
        time.sleep(0.02)
    raise RuntimeError(f"the server at {url} was not ready after {timeout_s:g} s:\n{output()[-OUTPUT_TAIL:]}")


class BackgroundServer:
    """A started decision server: its URL, and how to stop it (or crash it, when it is a process)."""

    def __init__(self, port: int, log: Path, process: subprocess.Popen[bytes] | None = None,
                 thread: _ServerThread | None = None) -> None:
        self.port = port
        self.log = log
        self.process = process
        self._thread = thread
        self.ready: dict[str, Any] = {}  # the body of the first 200 from /v1/ready

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process: the child, or this process for a server in a thread."""
        return os.getpid() if self.process is None else self.process.pid

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self._thread is not None and self._thread.is_alive()

    def output(self) -> str:
        """What the server has logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> BackgroundServer:
        """Return once ``/v1/ready`` answers 200; stop the server and raise if it dies or stays unready."""
        try:
            self.ready = wait_ready(self.url, alive=self.alive, output=self.output, timeout_s=timeout_s).json()
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the server's process group (SIGKILL: a crash) and wait until it has exited."""
        if self.process is None:
            raise RuntimeError("a server in a thread of this process cannot be killed; use stop()")
        if self.process.poll() is None:
            with suppress(ProcessLookupError):  # it may exit between the check and the signal
                os.killpg(self.process.pid, sig)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Shut down gracefully (SIGTERM to a process, as a process manager would); SIGKILL if it hangs."""
        if self._thread is not None:
            self._thread.stop()
            return
        try:
            self.kill(signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class _ServerThread(threading.Thread):
    """uvicorn serving the app of ``settings`` in a daemon thread, its log records appended to ``log``."""

    def __init__(self, settings: Mapping[str, Any], port: int, log: Path) -> None:
        super().__init__(name=f"sendwise-server-{port}", daemon=True)
        self._server = uvicorn.Server(uvicorn.Config(create_app(Settings(**settings)), host=HOST, port=port,
                                                     log_config=None, log_level="warning", lifespan="on"))
        self._handler = logging.FileHandler(log)
        self._loggers = [logging.getLogger(name) for name in ("uvicorn", "sendwise")]

    def run(self) -> None:
        for logger in self._loggers:
            logger.addHandler(self._handler)
        try:
            self._server.run()
        finally:
            for logger in self._loggers:
                logger.removeHandler(self._handler)
            self._handler.close()

    def stop(self) -> None:
        self._server.should_exit = True
        self.join(timeout=STOP_TIMEOUT_S)


def serve_in_background(settings: Mapping[str, Any] | None = None, *, thread: bool = False, workers: int = 1,
                        env: Mapping[str, str] | None = None, cwd: Path | None = None, log: Path | None = None,
                        timeout_s: float = READY_TIMEOUT_S, serve_args: Sequence[str] = ()) -> BackgroundServer:
    """A ready decision server on a free loopback port; stop it with ``stop()`` or a ``with`` block.

    Parameters
    ----------
    settings : ``Settings`` fields (name → value), as ``SENDWISE_*`` variables of the child process or as
        keyword arguments of ``Settings`` in a thread; unset fields come from the environment either way.
    thread : serve in a daemon thread of this process instead of a ``sendwise serve`` child process.
    workers, env, cwd : the child's uvicorn workers, extra environment variables and working folder
        (a process only).
    log : where the server's output goes (default: a new temporary file).
    timeout_s : how long the server may take to become ready.
    serve_args : more ``sendwise serve`` options, after the defaults so they win (e.g. ``--log-level info``;
        a process only).

    Returns
    -------
    BackgroundServer
        Its ``url``, ``port``, ``pid``, ``ready`` (the ``/v1/ready`` body) and ``output()``.
    """
    settings = dict(settings or {})
    port = free_port()
    if log is None:
        handle, name = tempfile.mkstemp(prefix=f"sendwise-server-{port}-", suffix=".log")
        os.close(handle)
        log = Path(name)
    if thread:
        if workers != 1 or env is not None or cwd is not None or serve_args:
            raise ValueError("`workers`, `env`, `cwd` and `serve_args` apply to a server process, not to a thread")
        server_thread = _ServerThread(settings, port, log)
        server_thread.start()
        return BackgroundServer(port, log, thread=server_thread).wait_ready(timeout_s)
    child_env = {**os.environ, **(env or {}), **{f"SENDWISE_{k.upper()}": str(v) for k, v in settings.items()}}
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "sendwise.cli.main", "serve", "--host", HOST, "--port", str(port),
             "--workers", str(workers), "--log-level", "warning", *serve_args],
            env=child_env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True)
    return BackgroundServer(port, log, process=process).wait_ready(timeout_s)
