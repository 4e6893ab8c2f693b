"""Errors the service raises on purpose, and the handlers that turn every error into a clean response.

A client's mistake is always a 4xx that says what was wrong; anything unexpected is a 500 with a
generic body (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .deadline import DeadlineExceededError
from .log_privacy import redact_target
from .schemas import ErrorMessage
from .store import StoreUnavailableError

log = logging.getLogger("sendwise.server")
RETRY_AFTER_SECONDS = "5"
# Documented on every authenticated route, so the OpenAPI schema lists each status a client can get.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorMessage, "description": description} for status, description in (
        (400, "the body could not be parsed (not UTF-8, or nested too deeply)"),
        (401, "missing or invalid API key"),
        (403, "the API key lacks the route's scope"),
        (408, "the request body did not arrive within the body timeout"),
        (413, "request body larger than the configured cap"),
        (415, "Content-Type is not application/json"),
        (429, "over the API key's request or decision rate; retry after Retry-After seconds"),
        (503, "no model loaded yet, the store busy past the request's deadline, or the worker at its concurrency "
              "limit; retry after Retry-After seconds"),
    )
}


class InputError(ValueError):
    """Request values the schema could not judge (e.g. names unknown to the served model's catalog)."""

    def __init__(self, errors: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(msg for _, msg in errors))
        self.errors = [{"loc": list(loc), "msg": msg, "type": "value_error"} for loc, msg in errors]


class ConflictError(ValueError):
    """An event id was sent before with different content; nothing of the request was applied."""


class ModelUnavailableError(RuntimeError):
    """No model could be loaded yet; the request may be retried."""


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers: 422 with ``loc``/``msg``/``type`` only, 409, 503 with Retry-After, generic 500."""

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
        return JSONResponse({"detail": detail}, status_code=422)

    async def input_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": exc.errors if isinstance(exc, InputError) else []}, status_code=422)

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS})

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, redact_target(request.url.path), exc_info=exc)
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(ConflictError, conflict)
    app.add_exception_handler(StoreUnavailableError, unavailable)
    app.add_exception_handler(DeadlineExceededError, unavailable)
    app.add_exception_handler(ModelUnavailableError, unavailable)
    app.add_exception_handler(Exception, unexpected)
