"""Customer ids never reach the store: they become HMAC-SHA256 pseudonyms keyed by a secret pepper.

The same pepper keys the suppression list, which keeps a customer's opt-outs after erasure.

A plain hash of an id can be reversed by hashing candidate ids; a keyed hash cannot without the
pepper. The pepper comes from ``SENDWISE_PEPPER`` or, by default, a random file created once under
the state folder, readable by its owner only.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from .settings import Settings

PEPPER_FILE = "pepper"


def read_or_create_private(path: Path, make: str) -> tuple[str, bool]:
    """Content of ``path``, creating it (mode 0600, atomically) with ``make`` if absent; and whether it was made.

    ``O_EXCL`` makes concurrent first starts (several workers) agree on one file.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    with os.fdopen(fd, "w") as fh:
        fh.write(make + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return make, True


class Pseudonymizer:
    """Maps a customer id to its pseudonym: hex HMAC-SHA256(pepper, id)."""

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 16:
            raise ValueError("the pepper must be at least 16 bytes long")
        self._pepper = pepper

    @classmethod
    def from_settings(cls, settings: Settings) -> Pseudonymizer:
        if settings.pepper is not None:
            return cls(settings.pepper.get_secret_value().encode())
        pepper, _ = read_or_create_private(settings.state_dir / PEPPER_FILE, secrets.token_hex(32))
        return cls(bytes.fromhex(pepper))

    def __call__(self, customer_id: str) -> str:
        return hmac.digest(self._pepper, customer_id.encode("utf-8"), "sha256").hex()  # one-shot: the fast path

    def suppression_key(self, customer: str, channel: str) -> str:
        """Key of the suppression list's entry for pseudonym ``customer`` and ``channel``: hex HMAC-SHA256.

        Keyed by the pepper over ``suppression``, the pseudonym and the channel (NUL-separated, which
        neither may contain), so the list can be checked for a given customer and channel but not read
        back: it names neither, nor links one customer's channels.
        """
        message = "\0".join(("suppression", customer, channel)).encode("utf-8")
        return hmac.digest(self._pepper, message, "sha256").hex()
