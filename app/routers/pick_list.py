"""``/v1/pick-list``: the next orders to pick, most urgent first, with SKU totals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth import Principal, Role, require
from app.domain.dispatch import board as dispatch_board
from app.domain.dispatch.schemas import PickList
from app.domain.store import service as stores
from app.pagination import LimitParam
from app.routers._common import ClockDep, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/pick-list", tags=["orders"], route_class=TransactionalRoute)

Picker = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.WAREHOUSE))]


@router.get("", response_model=PickList, responses=problems(401, 403, 404, 422))
async def get_pick_list(
    principal: Picker,
    session: Session,
    clock: ClockDep,
    store_id: Annotated[
        str | None, Query(description="Only this store (default: the key's scope).")
    ] = None,
    limit: LimitParam = 50,
) -> PickList:
    """Orders that can ship now (allocated, not on hold), most urgent first, and SKU totals."""
    store_ids = await stores.store_filter(
        session, principal, path_id(store_id, "store") if store_id is not None else None
    )
    return await dispatch_board.pick_list(session, store_ids, clock.now(), limit)
