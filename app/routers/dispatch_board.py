"""``/v1/dispatch-board``: awaiting-shipment orders in DOMAIN.md §2 order, with risk counts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth import Principal, Role, require
from app.domain.dispatch import board as dispatch_board
from app.domain.dispatch.schemas import DispatchBoard
from app.domain.store import service as stores
from app.pagination import MAX_LIMIT
from app.routers._common import ClockDep, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/dispatch-board", tags=["orders"], route_class=TransactionalRoute)

BoardReader = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.WAREHOUSE))]
DEFAULT_LIMIT = 100


@router.get("", response_model=DispatchBoard, responses=problems(401, 403, 404, 422))
async def get_dispatch_board(
    principal: BoardReader,
    session: Session,
    clock: ClockDep,
    store_id: Annotated[
        str | None, Query(description="Only this store (default: the key's scope).")
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_LIMIT,
            description=f"Items to return (default {DEFAULT_LIMIT}, max {MAX_LIMIT}).",
        ),
    ] = DEFAULT_LIMIT,
) -> DispatchBoard:
    """Awaiting orders with risk counts: overdue first, then urgent, then the others.

    Within each group by dispatch deadline, then `placed_at` (DOMAIN.md §2); orders whose
    group has not formed (no deadline) last. `risk` labels each order; it is not the sort key.
    """
    store_ids = await stores.store_filter(
        session, principal, path_id(store_id, "store") if store_id is not None else None
    )
    return await dispatch_board.board(session, store_ids, clock.now(), limit)
