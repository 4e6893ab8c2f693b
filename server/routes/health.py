"""``GET /v1/health`` (the process answers) and ``GET /v1/ready`` (model loaded, store reachable)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ..deps import ServiceDep
from ..schemas import Health, Readiness

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(service: ServiceDep, response: Response) -> Readiness:
    """200 when ready or degraded (serving the last good model), 503 when no model or no store."""
    readiness = service.readiness()
    if readiness.status == "not_ready":
        response.status_code = 503
    return readiness
