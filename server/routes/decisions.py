"""``POST /v1/decisions``: channel × local send hour (or no message) per customer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ..deps import NowDep, RateLimiterDep, ServiceDep, require_scope
from ..errors import ERROR_RESPONSES
from ..schemas import DecisionRequest, DecisionResponse

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], dependencies=[Depends(require_scope("decide"))],
                   responses=ERROR_RESPONSES)


@router.post("", response_model=DecisionResponse)
def decide(body: DecisionRequest, service: ServiceDep, now: NowDep, limiter: RateLimiterDep,
           api_key: Annotated[str, Depends(require_scope("decide"))]) -> DecisionResponse:
    """Decide for 1 to 1,000 customers; every decision is logged before the response is sent."""
    limiter.charge(limiter.decisions, api_key, len(body.customers), now)
    return service.decide(body, now)
