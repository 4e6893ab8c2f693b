"""``POST /v1/decisions``: channel × local send hour (or no message) per customer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from ..deps import NowDep, RateLimiterDep, ServiceDep, require_scope
from ..errors import ERROR_RESPONSES
from ..schemas import DecisionRequest, DecisionResponse

# OpenAPI links (what a client, or a stateful test, does next with a decision): report what happened to
# it, or erase its customer. The operation ids are FastAPI's defaults for the target routes.
DECISION_LINKS = {
    "RecordFeedback": {
        "operationId": "record_feedback_v1_feedback_post",
        "requestBody": {"events": [{"decision_id": "$response.body#/decisions/0/decision_id"}]},
        "description": "an event about the first decision (its timestamp is the caller's: when it happened)",
    },
    "EraseCustomer": {
        "operationId": "erase_customer_v1_customers__customer_id__delete",
        "parameters": {"path.customer_id": "$request.body#/customers/0/customer_id"},
        "description": "erase the first customer asked about",
    },
}

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], dependencies=[Depends(require_scope("decide"))],
                   responses=ERROR_RESPONSES)


@router.post("", response_model=DecisionResponse, responses={200: {"links": DECISION_LINKS}})
def decide(body: DecisionRequest, service: ServiceDep, now: NowDep, limiter: RateLimiterDep,
           api_key: Annotated[str, Depends(require_scope("decide"))]) -> Response:
    """Decide for 1 to 1,000 customers; every decision is logged before the response is sent."""
    limiter.charge(limiter.decisions, api_key, len(body.customers), now)
    # The service built the response from checked values: serialised once, in pydantic's core, not
    # validated again and converted twice as a returned model would be.
    return Response(service.decide(body, now).json(), media_type="application/json")
