"""``DELETE /v1/customers/{customer_id}``: erase what the server holds about one customer (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from ..deps import ServiceDep, require_scope
from ..errors import ERROR_RESPONSES
from ..schemas import Erasure, Text

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[Depends(require_scope("admin"))],
                   responses=ERROR_RESPONSES)


@router.delete("/{customer_id:path}", response_model=Erasure)  # an id may hold a "/" (sent as %2F)
def erase_customer(customer_id: Annotated[Text, Path()], service: ServiceDep) -> Erasure:
    """Delete the customer's decisions, events and channel states; learned aggregates stay."""
    return service.erase_customer(customer_id)
