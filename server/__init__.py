"""sendwise.server: the decision server (FastAPI) — decide and learn over HTTP, durably and safely."""

from .app import create_app
from .launch import BackgroundServer, free_port, serve_in_background, wait_ready
from .settings import Settings

__all__ = ["BackgroundServer", "Settings", "create_app", "free_port", "serve_in_background", "wait_ready"]
