"""``POST /v1/feedback``: what happened to decided messages; the response comes after the commit."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from ..deps import NowDep, ServiceDep, require_scope
from ..errors import ERROR_RESPONSES
from ..schemas import ErrorMessage, FeedbackRequest, FeedbackResponse

router = APIRouter(prefix="/v1/feedback", tags=["feedback"], dependencies=[Depends(require_scope("feedback"))],
                   responses=ERROR_RESPONSES)


# Sending the same request again (a client's retry) must change nothing: every event comes back duplicate.
RETRY_LINKS = {"RetryFeedback": {"operationId": "record_feedback_v1_feedback_post", "requestBody": "$request.body",
                                 "description": "the same events again, as a client retries after a timeout"}}


@router.post("", response_model=FeedbackResponse,
             responses={200: {"links": RETRY_LINKS},
                        409: {"model": ErrorMessage, "description": "an event_id was recorded before with different "
                                                                    "content; nothing in the request was applied"}})
def record_feedback(body: FeedbackRequest, service: ServiceDep, now: NowDep) -> Response:
    """Record 1 to 1,000 events, all or nothing; each gets applied, duplicate, unknown_decision, late or
    before_decision (see ``schemas.EventStatus``)."""
    # Serialised once from checked values, not validated again as a returned model would be (see decisions).
    return Response(service.record_feedback(body, now).model_dump_json(), media_type="application/json")
