"""``/v1/stock-levels``: absolute levels pushed by the ERP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.auth import Principal, Role, require
from app.domain.errors import item_status
from app.domain.inventory import service
from app.domain.inventory.schemas import BulkResult, BulkResults, StockLevelsSync
from app.errors import item_problem
from app.routers._common import ClockDep, IdempotencyKeyHeader, Session, problems
from app.routing import TransactionalRoute, batch

router = APIRouter(prefix="/v1/stock-levels", tags=["inventory"], route_class=TransactionalRoute)

LevelWriter = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]


@router.put(
    "",
    response_model=BulkResults,
    response_model_exclude_none=True,
    responses=problems(401, 403, 422),
)
@batch
async def sync_stock_levels(
    body: StockLevelsSync,
    principal: LevelWriter,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> BulkResults:
    """Set absolute `on_hand` per `(store_id, sku_code)`; unchanged levels write nothing.

    Up to 1,000 items; one result per item in input order, and one bad item never fails
    the others (404 unknown SKU, 409 below what is reserved, 422 invalid item).
    """
    outcomes = await service.sync_levels(session, principal, body.items, clock.now())
    return BulkResults(
        results=[
            BulkResult(index=o.index, status=item_status(o.error), error=item_problem(o.error))
            if isinstance(o, service.LevelFailure)
            else o
            for o in outcomes
        ]
    )
