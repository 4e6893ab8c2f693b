"""Rate limits per API key and per client address, counted in the store so that every worker shares them.

Fixed windows aligned to the epoch: one counter per limit and caller for the current window, kept
by the store's ``add_hits`` (one SQLite statement, or one Redis script). The caller is a keyed hash
(HMAC with the pepper) of its API key or address, never the raw value. Past a limit the answer is
429 with ``Retry-After``, the seconds until the window ends; refused requests count too. A store
that cannot count (busy, Redis away) lets the request through: an outage of the counter must not
become an outage of the API.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import HTTPException

from .privacy import Pseudonymizer
from .settings import Settings
from .store import Store, StoreUnavailableError


@dataclass(frozen=True)
class Limit:
    """At most ``per_window`` of ``name`` per caller and window of ``window_seconds`` (None: unlimited)."""

    name: str
    per_window: int | None
    window_seconds: float


class RateLimiter:
    """The server's limits and the store that counts them: API requests and decided customers per key
    per minute, failed dashboard sign-ins per client address."""

    def __init__(self, settings: Settings, store: Store, pseudonymize: Pseudonymizer) -> None:
        self.requests = Limit("requests", settings.rate_limit_requests_per_minute, 60.0)
        self.decisions = Limit("decisions", settings.rate_limit_decisions_per_minute, 60.0)
        self.sign_in_failures = Limit("failed sign-ins", settings.rate_limit_sign_in_failures,
                                      settings.rate_limit_sign_in_window_seconds)
        self._store = store
        self._pseudonymize = pseudonymize

    def charge(self, limit: Limit, caller: str, amount: int, now: datetime) -> None:
        """Count ``amount`` for ``caller`` (an API key or address); 429 once the window's total exceeds the limit."""
        self._enforce(limit, caller, amount, now, lambda hits, allowed: hits > allowed)

    def refuse_at_limit(self, limit: Limit, caller: str, now: datetime) -> None:
        """429 if ``caller`` already reached the limit in this window, counting nothing (a gate for failures
        that are counted only once they happen)."""
        self._enforce(limit, caller, 0, now, lambda hits, allowed: hits >= allowed)

    def _enforce(self, limit: Limit, caller: str, amount: int, now: datetime,
                 over: Callable[[int, int], bool]) -> None:
        if limit.per_window is None:
            return
        at = now.timestamp()
        start = math.floor(at / limit.window_seconds) * limit.window_seconds
        key = self._pseudonymize(f"{limit.name}\0{caller}")
        try:
            hits = self._store.add_hits(key, amount, start, limit.window_seconds)
        except StoreUnavailableError:
            return
        if over(hits, limit.per_window):
            retry_after = max(1, math.ceil(start + limit.window_seconds - at))
            raise HTTPException(429, f"more than {limit.per_window} {limit.name} per {limit.window_seconds:g} s; "
                                     f"retry after {retry_after} s", headers={"Retry-After": str(retry_after)})
