"""Where sendwise keeps its files: one home folder, ``$SENDWISE_HOME`` or else ``./.sendwise``.

Every default path of every command lives under it: the MLflow store (``mlflow.db``, with its artifacts in
``mlartifacts/`` beside it), the server's state (``state.db``, ``pepper``, ``api_keys``), simulation runs
(``runs/``), tuning output (``tune/``) and the comparison plot (``compare.png``). Explicit arguments and the
variables of one part (``MLFLOW_TRACKING_URI``, ``SENDWISE_STATE_DIR``, ``SENDWISE_STATE_URL``) still win.
The home is read from the environment on every call, so a process that changes the variable moves it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "SENDWISE_HOME"
DEFAULT_HOME = Path(".sendwise")
TRACKING_ENV = "MLFLOW_TRACKING_URI"


@dataclass(frozen=True)
class Home:
    """The home folder (absolute) and where it came from (``SENDWISE_HOME`` or ``default``)."""

    root: Path
    source: str

    @property
    def mlflow_db(self) -> Path:
        """The default MLflow store, a SQLite file; its artifacts go to ``mlartifacts/`` beside it."""
        return self.root / "mlflow.db"

    @property
    def state_dir(self) -> Path:
        """The server's state folder (``state.db``, ``pepper``, ``api_keys``)."""
        return self.root

    @property
    def runs(self) -> Path:
        """Parent folder of ``sendwise simulate``'s per-run folders."""
        return self.root / "runs"

    @property
    def tune(self) -> Path:
        """Parent folder of ``sendwise tune``'s per-run folders."""
        return self.root / "tune"

    @property
    def compare_plot(self) -> Path:
        """Where ``sendwise compare`` draws its plot."""
        return self.root / "compare.png"

    @property
    def tracking_uri(self) -> str:
        """``sqlite:///<home>/mlflow.db``: a file store needs no server and no opt-in."""
        return f"sqlite:///{self.mlflow_db}"

    def describe(self) -> str:
        """``home: /abs/path (SENDWISE_HOME)``, the line a command prints about where it works."""
        return f"home: {self.root} ({self.source})"


def sendwise_home() -> Home:
    """The home from ``$SENDWISE_HOME`` (``~`` expanded, made absolute), else ``./.sendwise`` of the cwd."""
    value = os.environ.get(HOME_ENV, "").strip()
    if value:
        return Home(Path(value).expanduser().absolute(), HOME_ENV)
    return Home(DEFAULT_HOME.absolute(), "default")


def tracking_uri(explicit: str | None = None, home: Home | None = None) -> str:
    """The MLflow URI: ``explicit``, else ``$MLFLOW_TRACKING_URI``, else the SQLite store of ``home``
    (default :func:`sendwise_home`)."""
    return explicit or os.environ.get(TRACKING_ENV) or (home or sendwise_home()).tracking_uri
