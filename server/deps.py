"""Annotated dependencies shared by the routes: the service, the clock, the rate limits and API-key scopes.

They are ``async``: each is a few attribute reads, and FastAPI runs a plain function on a worker
thread, a hand-off that costs more than the work. The one that may touch the store (a rate limit's
counter) does that on a worker thread itself, and only when a limit is set.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .auth import ApiKeys
from .rate_limits import RateLimiter
from .service import SendwiseService

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: <API key>")
UNAUTHORIZED = "missing or invalid API key"


async def get_service(request: Request) -> SendwiseService:
    service: SendwiseService = request.app.state.service
    return service


async def get_api_keys(request: Request) -> ApiKeys:
    keys: ApiKeys = request.app.state.api_keys
    return keys


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def utc_now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


async def get_now() -> datetime:
    """The routes' clock, ``utc_now``; tests override this dependency to drive the clock."""
    return utc_now()


ServiceDep = Annotated[SendwiseService, Depends(get_service)]
NowDep = Annotated[datetime, Depends(get_now)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


@cache
def require_scope(scope: str) -> Callable[..., str]:
    """A dependency that admits a request only with a valid API key holding ``scope`` (header only) and
    within the key's request rate, and gives the key to a route that asks for it.

    One function per scope, so a route naming it beside its router runs it (and counts the request) once.
    """

    async def check(
        keys: Annotated[ApiKeys, Depends(get_api_keys)],
        limiter: RateLimiterDep,
        now: NowDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header_key: Annotated[str | None, Security(_api_key_header)],
    ) -> str:
        presented = bearer.credentials if bearer is not None else header_key
        scopes = keys.scopes_of(presented)
        if presented is None or scopes is None:
            raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
        if scope not in scopes:
            raise HTTPException(403, f"this API key lacks the {scope!r} scope")
        if limiter.requests.per_window is not None:
            await to_thread.run_sync(limiter.charge, limiter.requests, presented, 1, now)
        return presented

    return check
