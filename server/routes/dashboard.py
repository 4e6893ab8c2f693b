"""The operator's dashboard (``/dashboard``, HTML) and a segment's posterior (``/v1/segments/…``, JSON).

Pages admit an API key with the admin scope in a header, or the session cookie that ``POST
/dashboard/login`` gives for one; they only read. What they show is built in ``server.dashboard``, and
the page and the JSON take the posterior from the same function.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, Security
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from ..auth import ApiKeys
from ..dashboard import (
    ASSETS,
    SCOPE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    NoPosteriorError,
    PageQuery,
    SegmentPosterior,
    Sessions,
    render_dashboard,
    render_login,
    segment_posterior,
)
from ..deps import UNAUTHORIZED, NowDep, RateLimiterDep, ServiceDep, get_api_keys, require_scope
from ..errors import ERROR_RESPONSES
from ..schemas import ErrorMessage, Name, StrictModel

LOGIN_PATH = "/dashboard/login"
ASSET_TYPES = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

_bearer = HTTPBearer(auto_error=False)
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_admin_key = require_scope(SCOPE)


def get_sessions(request: Request) -> Sessions:
    """The app's session signer, made on first use (its secret file is created only when needed)."""
    state = request.app.state
    if not hasattr(state, "dashboard_sessions"):
        state.dashboard_sessions = Sessions.from_settings(state.settings)
    sessions: Sessions = state.dashboard_sessions
    return sessions


KeysDep = Annotated[ApiKeys, Depends(get_api_keys)]
SessionsDep = Annotated[Sessions, Depends(get_sessions)]


async def dashboard_access(
    request: Request,
    keys: KeysDep,
    sessions: SessionsDep,
    service: ServiceDep,
    now: NowDep,
    limiter: RateLimiterDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_api_key_header)],
) -> None:
    """Admit an admin key in a header or a valid session cookie that was not signed out; send anyone else to
    the sign-in page."""
    if bearer is None and header_key is None:
        ticket = sessions.verify(request.cookies.get(SESSION_COOKIE), keys, now)
        if ticket is not None and not service.store.session_revoked(ticket.key):
            return
        raise HTTPException(303, f"sign in at {LOGIN_PATH}", headers={"Location": LOGIN_PATH})
    await _admin_key(keys=keys, limiter=limiter, now=now, bearer=bearer, header_key=header_key)


class SignIn(StrictModel):
    api_key: str = Field(min_length=1, max_length=512)


pages = APIRouter(prefix="/dashboard", include_in_schema=False)


@pages.get("", response_class=HTMLResponse, dependencies=[Depends(dashboard_access)])
def dashboard(query: Annotated[PageQuery, Query()], service: ServiceDep, now: NowDep) -> HTMLResponse:
    """The whole dashboard for the segment, window and customer in the query string."""
    return HTMLResponse(render_dashboard(service, query, now), headers=PAGE_HEADERS)


@pages.get("/login", response_class=HTMLResponse)
def login_page() -> HTMLResponse:
    return HTMLResponse(render_login(), headers=PAGE_HEADERS)


@pages.post("/login", status_code=204, response_class=Response)
def sign_in(body: SignIn, keys: KeysDep, sessions: SessionsDep, now: NowDep, limiter: RateLimiterDep,
            request: Request) -> Response:
    """Exchange an admin key for an HttpOnly, SameSite=Strict session cookie; 401 or 403 otherwise, and 429
    once the client address has failed too often (``SENDWISE_RATE_LIMIT_SIGN_IN_*``)."""
    address = request.client.host if request.client else ""
    limiter.refuse_at_limit(limiter.sign_in_failures, address, now)
    scopes = keys.scopes_of(body.api_key)
    if scopes is None:
        limiter.charge(limiter.sign_in_failures, address, 1, now)
        raise HTTPException(401, UNAUTHORIZED)
    if SCOPE not in scopes:
        raise HTTPException(403, f"this API key lacks the {SCOPE!r} scope")
    response = Response(status_code=204)
    response.set_cookie(SESSION_COOKIE, sessions.issue(body.api_key, now), max_age=SESSION_SECONDS, path="/dashboard",
                        secure=request.url.scheme == "https", httponly=True, samesite="strict")
    return response


@pages.post("/logout", status_code=204, response_class=Response)
def sign_out(request: Request, keys: KeysDep, sessions: SessionsDep, service: ServiceDep, now: NowDep) -> Response:
    """Drop the cookie and revoke its session on every worker (only a valid cookie is written down)."""
    ticket = sessions.verify(request.cookies.get(SESSION_COOKIE), keys, now)
    if ticket is not None:
        service.store.revoke_session(ticket.key, float(ticket.expires_at), now.timestamp())
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/dashboard", httponly=True, samesite="strict")
    return response


@pages.get("/assets/{name}")
def asset(name: str) -> Response:
    """The page's stylesheet and script (public: they hold nothing secret)."""
    if name not in ASSET_TYPES:
        raise HTTPException(404, f"no dashboard asset {name!r}")
    return Response((ASSETS / name).read_bytes(), media_type=ASSET_TYPES[name],
                    headers={"X-Content-Type-Options": "nosniff"})


api = APIRouter(prefix="/v1/segments", tags=["segments"], dependencies=[Depends(require_scope(SCOPE))],
                responses=ERROR_RESPONSES)


@api.get("/{region}/{industry}/{campaign_type}/posterior", response_model=SegmentPosterior,
         responses={404: {"model": ErrorMessage, "description": "the served policy keeps no Beta posterior"}})
def posterior(region: Annotated[Name, Path()], industry: Annotated[Name, Path()],
              campaign_type: Annotated[Name, Path()], service: ServiceDep) -> SegmentPosterior:
    """Posterior mean net value and credible interval of every channel × hour option of one segment (admin)."""
    try:
        return segment_posterior(service, region, industry, campaign_type)
    except NoPosteriorError as exc:
        raise HTTPException(404, str(exc)) from None


router = APIRouter()
router.include_router(pages)
router.include_router(api)
