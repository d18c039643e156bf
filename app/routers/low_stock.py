"""``/v1/low-stock``: SKUs at or under their low-stock threshold (库存预警)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth import AnyRole
from app.domain.inventory import reports
from app.domain.inventory.report_schemas import LowStockItem
from app.domain.store import service as stores
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import ClockDep, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/low-stock", tags=["inventory"], route_class=TransactionalRoute)

CURSOR_KIND = "low-stock"


@router.get("", response_model=Page[LowStockItem], responses=problems(401, 403, 404, 422))
async def list_low_stock(
    principal: AnyRole,
    session: Session,
    clock: ClockDep,
    store_id: Annotated[
        str | None, Query(description="Only this store (default: the key's scope).")
    ] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[LowStockItem]:
    """SKUs whose available stock is at or under their live threshold, by SKU id.

    The SKUs of `/v1/replenishment` (active, or delisted automatically when they ran out;
    not those delisted by hand). `suggested_reorder` equals the SKU's `suggested_qty` in
    the replenishment table and is always positive.
    """
    after = decode_cursor(cursor, CURSOR_KIND, 1)[0] if cursor else None
    store_ids = await stores.store_filter(
        session, principal, path_id(store_id, "store") if store_id is not None else None
    )
    items = await reports.low_stock(session, store_ids, clock.now(), after, limit)
    return page_of(items, limit, lambda item: encode_cursor(CURSOR_KIND, item.sku_id))
