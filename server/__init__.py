"""sendwise.server: the decision server (FastAPI) — decide and learn over HTTP, durably and safely."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
