"""``/v1/stock-movements``: the stock ledger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth import AnyRole, Principal, Role, require
from app.domain.errors import RuleViolation
from app.domain.inventory import service
from app.domain.inventory.schemas import LEDGER_KINDS, MovementCreate, MovementPublic
from app.domain.store import zones
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import ClockDep, IdempotencyKeyHeader, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/stock-movements", tags=["inventory"], route_class=TransactionalRoute)

StockWriter = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.WAREHOUSE))]


@router.post(
    "",
    status_code=201,
    response_model=MovementPublic,
    responses=problems(401, 403, 404, 409, 422, codes={409: "insufficient_stock"}),
)
async def create_movement(
    body: MovementCreate,
    principal: StockWriter,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> MovementPublic:
    """Record a receipt, return, damage or signed adjustment (never below `reserved`)."""
    row = await service.post_movement(session, principal, body, clock.now())
    return (await zones.in_store_time(session, [MovementPublic.model_validate(row)]))[0]


@router.get("", response_model=Page[MovementPublic], responses=problems(401, 404, 422))
async def list_movements(
    principal: AnyRole,
    session: Session,
    sku_id: Annotated[str | None, Query(description="Only this SKU.")] = None,
    store_id: Annotated[str | None, Query(description="Only this store.")] = None,
    kind: Annotated[
        list[str] | None, Query(description=f"Only these kinds: {', '.join(LEDGER_KINDS)}.")
    ] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[MovementPublic]:
    """The ledger, newest first; `on_hand` always equals the sum of a SKU's movements."""
    kinds = sorted({k for raw in kind or [] for k in raw.split(",") if k}) or None
    if kinds and not set(kinds) <= set(LEDGER_KINDS):
        raise RuleViolation(
            "validation_error",
            f"Unknown movement kinds; use {', '.join(LEDGER_KINDS)}.",
            errors=[{"loc": ["query", "kind"], "msg": "unknown kind", "type": "enum"}],
        )
    after = decode_cursor(cursor, "stock-movements", 1)[0] if cursor else None
    rows = await service.list_movements(
        session,
        principal,
        sku_id=path_id(sku_id, "sku") if sku_id is not None else None,
        store_id=path_id(store_id, "store") if store_id is not None else None,
        kinds=kinds,
        after_id=after,
        limit=limit,
    )
    page = page_of(rows, limit, lambda r: encode_cursor("stock-movements", r["id"]))
    items = [MovementPublic.model_validate(r) for r in page.items]
    return Page(items=await zones.in_store_time(session, items), next_cursor=page.next_cursor)
