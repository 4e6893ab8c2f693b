"""The one line every command prints to stderr first: the sendwise home and what it reads and writes there."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from sendwise.models import sendwise_home

if TYPE_CHECKING:
    from sendwise.server.settings import Settings
    from sendwise.server.store import Store


def add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri``, the same on every command that reads or writes MLflow."""
    parser.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///<home>/mlflow.db)")


def add_state_url(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--state-url``, the same on every command that reads the server's state."""
    parser.add_argument("--state-url", default=None,
                        help="sqlite:///path or redis://host:port/db of the state (default: SENDWISE_STATE_URL, "
                             "else <state_dir>/state.db, the state folder defaulting to the sendwise home)")


@contextmanager
def server_state(state_url: str | None, **places: str | Path | None) -> Iterator[tuple[Settings, Store]]:
    """The server's settings (``state_url`` overriding SENDWISE_STATE_URL) and its store, closed on exit.

    Announces the state and ``places``; a SQLite state that does not exist is an error, not a new file.
    """
    from sendwise.server.app import open_store
    from sendwise.server.settings import Settings

    settings = Settings() if state_url is None else Settings(state_url=state_url)
    announce(state=settings.redis_url or settings.state_path, **places)
    if settings.redis_url is None and not settings.state_path.is_file():
        raise FileNotFoundError(f"state DB {str(settings.state_path)!r} does not exist; has the server run here?")
    store = open_store(settings)
    try:
        yield settings, store
    finally:
        store.close()


def announce(**places: str | Path | None) -> None:
    """Print ``home: /abs (source); <name>: <place>; ...`` to stderr, leaving out places that are None.

    Passwords in URIs (``postgresql://user:secret@host/db``, ``redis://:secret@host``) are shown as ``***``.
    """
    parts = [sendwise_home().describe()]
    parts += [f"{name.replace('_', ' ')}: {_shown(place)}" for name, place in places.items() if place is not None]
    print("; ".join(parts), file=sys.stderr)


def _shown(place: str | Path) -> str:
    """A path made absolute, or a URI without its password."""
    if isinstance(place, Path):
        return str(place.absolute())
    parts = urlsplit(place)
    if parts.password is None:
        return place
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))
