"""API keys: who may call which route.

Keys arrive in a header (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``), never in the URL.
Only their SHA-256 digests are kept and compared in constant time; every failure gets the same
401. Each key carries scopes (``decide``, ``feedback``, ``admin``); ``SENDWISE_API_KEYS`` lists keys
as ``KEY`` (all scopes) or ``KEY:scope+scope``, comma-separated, so two keys can live side by side
during a rotation. Without it a key is generated at first start, logged once, and only its digest
is written to the state folder.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from .privacy import read_or_create_private
from .settings import Settings

SCOPES = ("decide", "feedback", "admin")
KEY_FILE = "api_keys"
MIN_KEY_LENGTH = 16

log = logging.getLogger("sendwise.server")


@dataclass(frozen=True)
class ApiKeys:
    """Digests of the accepted keys with the scopes of each."""

    entries: tuple[tuple[bytes, frozenset[str]], ...]

    def scopes_of(self, presented: str | None) -> frozenset[str] | None:
        """Scopes of the presented key, or None if it is missing or unknown (no early exit on a match)."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found: frozenset[str] | None = None
        for known, scopes in self.entries:
            if hmac.compare_digest(digest, known):
                found = scopes
        return found

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """Keys from ``SENDWISE_API_KEYS``, else the digest file, else a new key (logged once)."""
        if settings.api_keys is not None:
            return cls.parse(settings.api_keys.get_secret_value())
        new_key = "sw_" + secrets.token_urlsafe(32)
        line = f"{hashlib.sha256(new_key.encode()).hexdigest()} {'+'.join(SCOPES)}"
        content, created = read_or_create_private(settings.state_dir / KEY_FILE, line)
        if created:
            log.warning("generated an API key with scopes %s; it is shown only now, store it: %s",
                        ", ".join(SCOPES), new_key)
        entries = []
        for digest_hex, scopes in (row.split() for row in content.splitlines() if row.strip()):
            entries.append((bytes.fromhex(digest_hex), _scopes(scopes.split("+"), "the API key file")))
        return cls(tuple(entries))

    @classmethod
    def parse(cls, spec: str) -> ApiKeys:
        """Parse ``KEY[:scope+scope],...``; keys shorter than 16 characters are refused."""
        entries = []
        for n, item in enumerate(part.strip() for part in spec.split(",") if part.strip()):
            key, _, scope_list = item.partition(":")
            if len(key) < MIN_KEY_LENGTH:
                raise ValueError(f"SENDWISE_API_KEYS entry {n} is shorter than {MIN_KEY_LENGTH} characters; "
                                 "use a random key, e.g. from Python's secrets.token_urlsafe()")
            scopes = _scopes(scope_list.split("+"), f"SENDWISE_API_KEYS entry {n}") if scope_list else frozenset(SCOPES)
            entries.append((hashlib.sha256(key.encode()).digest(), scopes))
        if not entries:
            raise ValueError("SENDWISE_API_KEYS names no key; unset it to have one generated")
        return cls(tuple(entries))


def _scopes(names: list[str], where: str) -> frozenset[str]:
    unknown = sorted(set(names) - set(SCOPES))
    if unknown:
        raise ValueError(f"{where} names unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
    return frozenset(names)
