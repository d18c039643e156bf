"""``/v1/stocktakes``: counts (盘点) applied in one transaction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from app.auth import AnyRole, Principal, Role, require
from app.domain.inventory import service
from app.domain.inventory.schemas import StocktakeCreate, StocktakePublic
from app.routers._common import ClockDep, IdempotencyKeyHeader, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/stocktakes", tags=["inventory"], route_class=TransactionalRoute)

StockWriter = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.WAREHOUSE))]


@router.post(
    "",
    status_code=201,
    response_model=StocktakePublic,
    responses=problems(401, 403, 404, 422, codes={422: "unknown_sku"}),
)
async def create_stocktake(
    body: StocktakeCreate,
    principal: StockWriter,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> StocktakePublic:
    """Apply counted quantities as `stocktake` movements, all lines or none.

    A count under what is reserved takes stock back from the latest-deadline orders first.
    """
    return await service.take_stock(session, principal, body, clock.now())


@router.get("/{stocktake_id}", response_model=StocktakePublic, responses=problems(401, 404))
async def get_stocktake(
    stocktake_id: Annotated[str, Path(examples=["3"])], principal: AnyRole, session: Session
) -> StocktakePublic:
    """An applied stocktake with expected, counted and variance per SKU."""
    return await service.get_stocktake(session, principal, path_id(stocktake_id, "stocktake"))
