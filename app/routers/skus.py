"""``/v1/skus``: the catalogue, with stock summaries; barcode lookup for the warehouse app."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.auth import AnyRole, Principal, Role, require
from app.domain.inventory import service as inventory
from app.domain.inventory.schemas import StockPublic
from app.domain.sku import service
from app.domain.sku.schemas import BARCODE_PATTERN, SkuCreate, SkuPublic, SkuStatus, SkuUpdate
from app.domain.types import NO_NUL
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import ClockDep, IdempotencyKeyHeader, IfMatch, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/skus", tags=["skus"], route_class=TransactionalRoute)

# Warehouse keys read SKUs but never change them (prices are not theirs to set).
SkuWriter = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]
SkuId = Annotated[str, Path(description="SKU id.", examples=["12"])]


@router.post(
    "",
    status_code=201,
    response_model=SkuPublic,
    responses=problems(401, 403, 404, 409, 422, codes={409: "duplicate_sku"}),
)
async def create_sku(
    body: SkuCreate,
    principal: SkuWriter,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> SkuPublic:
    """Create a SKU (stock starts at 0; receive stock with a stock movement)."""
    sku = await service.create(session, principal, body)
    return (await service.read_models(session, [sku], clock.now()))[0]


@router.get("", response_model=Page[SkuPublic], responses=problems(401, 404, 422))
async def list_skus(
    principal: AnyRole,
    session: Session,
    clock: ClockDep,
    store_id: Annotated[str | None, Query(description="Only this store.")] = None,
    status: SkuStatus | None = None,
    q: Annotated[
        str | None, Query(max_length=100, pattern=NO_NUL, description="SKU code or title contains.")
    ] = None,
    barcode: Annotated[
        str | None, Query(pattern=BARCODE_PATTERN, description="Exact barcode (scanning).")
    ] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[SkuPublic]:
    """SKUs in the key's scope by id; `barcode` is an exact, indexed match for scanners."""
    after = decode_cursor(cursor, "skus", 1)[0] if cursor else None
    rows = await service.list_page(
        session,
        principal,
        store_id=path_id(store_id, "store") if store_id is not None else None,
        status=status,
        q=q,
        barcode=barcode,
        after_id=after,
        limit=limit,
    )
    page = page_of(rows, limit, lambda s: encode_cursor("skus", s.id))
    items = await service.read_models(session, page.items, clock.now())
    return Page(items=items, next_cursor=page.next_cursor)


@router.get("/{sku_id}", response_model=SkuPublic, responses=problems(401, 404))
async def get_sku(
    sku_id: SkuId, principal: AnyRole, session: Session, clock: ClockDep
) -> SkuPublic:
    """One SKU with its stock summary."""
    sku = await service.get_visible(session, principal, path_id(sku_id, "sku"))
    return (await service.read_models(session, [sku], clock.now()))[0]


@router.get("/{sku_id}/stock", response_model=StockPublic, responses=problems(401, 404))
async def get_sku_stock(
    sku_id: SkuId, principal: AnyRole, session: Session, clock: ClockDep
) -> StockPublic:
    """Live stock figures: on hand, reserved, available, threshold, velocity, backorders."""
    return await inventory.stock_of(session, principal, path_id(sku_id, "sku"), clock.now())


@router.patch(
    "/{sku_id}",
    response_model=SkuPublic,
    responses=problems(401, 403, 404, 409, 412, 422, codes={409: "duplicate_sku"}),
)
async def update_sku(
    sku_id: SkuId,
    body: SkuUpdate,
    principal: SkuWriter,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
) -> SkuPublic:
    """Change a SKU; `status: delisted` by hand stays until an operator relists it."""
    sku = await service.update(
        session, principal, path_id(sku_id, "sku"), body, if_match, clock.now()
    )
    return (await service.read_models(session, [sku], clock.now()))[0]
