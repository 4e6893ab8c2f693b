"""The one line every command prints to stderr first: the sendwise home and what it reads and writes there."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sendwise.models import sendwise_home


def add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri``, the same on every command that reads or writes MLflow."""
    parser.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///<home>/mlflow.db)")


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
