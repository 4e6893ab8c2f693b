"""How much the libraries under sendwise print: quiet by default, everything on ``--verbose``.

MLflow logs INFO lines (database set-up, model saving) and draws a "Downloading artifacts" bar per file it
fetches, e.g. every time a server loads a registered model. :func:`configure_verbosity` turns both off
unless ``SENDWISE_LOG_LEVEL=debug`` (or ``--verbose``) asks for them. It works through MLflow's own
environment variables, so worker processes started afterwards (uvicorn workers, simulation processes)
inherit the choice, and a variable the user set explicitly is left alone.
"""

from __future__ import annotations

import logging
import os

LOG_LEVEL_ENV = "SENDWISE_LOG_LEVEL"
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LOG_LEVEL = "warning"
MLFLOW_LEVEL_ENV = "MLFLOW_LOGGING_LEVEL"  # read by MLflow when it is imported
MLFLOW_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # read by MLflow at every download


def log_level(verbose: bool = False) -> str:
    """``debug`` when ``verbose``, else ``$SENDWISE_LOG_LEVEL`` (default ``warning``); rejects unknown names."""
    if verbose:
        return "debug"
    level = os.environ.get(LOG_LEVEL_ENV, "").strip().lower() or DEFAULT_LOG_LEVEL
    if level not in LOG_LEVELS:
        raise ValueError(f"{LOG_LEVEL_ENV} must be one of {', '.join(LOG_LEVELS)}; got {os.environ[LOG_LEVEL_ENV]!r}")
    return level


def configure_verbosity(verbose: bool = False) -> str:
    """Set MLflow's log level to :func:`log_level` and hide its download bars below ``debug``; returns the level.

    At ``debug`` MLflow prints what it prints by default; ``verbose`` is kept in ``SENDWISE_LOG_LEVEL``
    so that later calls (the server's model loader) and child processes see it too.
    """
    level = log_level(verbose)
    if level == "debug":
        os.environ[LOG_LEVEL_ENV] = level
        return level
    os.environ.setdefault(MLFLOW_LEVEL_ENV, level.upper())
    os.environ.setdefault(MLFLOW_BAR_ENV, "false")
    logging.getLogger("mlflow").setLevel(os.environ[MLFLOW_LEVEL_ENV].upper())  # if MLflow is already imported
    return level
