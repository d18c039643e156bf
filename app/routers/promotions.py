"""``/v1/promotions``: promotions, quotes, ad spend and performance (DOMAIN.md §5)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from app.auth import Principal, Role, require
from app.domain.promotion import performance, pricing, service
from app.domain.promotion.rules import Kind
from app.domain.promotion.schemas import (
    PerformanceOut,
    PromotionCreate,
    PromotionPublic,
    PromotionStatus,
    PromotionUpdate,
    QuoteIn,
    QuoteOut,
    SpendIn,
    SpendOut,
)
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import (
    ClockDep,
    IdempotencyKeyHeader,
    IfMatch,
    IsoInstant,
    Session,
    path_id,
    problems,
)
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/promotions", tags=["promotions"], route_class=TransactionalRoute)

# Operators and admins write; integrations read and quote; warehouse keys see nothing here.
Writer = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR))]
Reader = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]
PromotionId = Annotated[str, Path(description="Promotion id.", examples=["7"])]


@router.post(
    "",
    status_code=201,
    response_model=PromotionPublic,
    responses=problems(
        401, 403, 404, 409, 422, codes={409: "duplicate_coupon_code", 422: "below_floor_price"}
    ),
)
async def create_promotion(
    body: PromotionCreate,
    principal: Writer,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> PromotionPublic:
    """Create a promotion; refused (`422 below_floor_price`, naming the SKUs) if it could,
    alone or with promotions on at the same time, price a SKU under its floor."""
    now = clock.now()
    row = await service.create(session, principal, body.root, now)
    return (await service.read_models(session, [row], now))[0]


@router.post(
    "/quote",
    response_model=QuoteOut,
    responses=problems(401, 403, 404, 422, codes={422: "unknown_sku"}),
)
async def quote(
    body: QuoteIn,
    principal: Reader,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> QuoteOut:
    """Price a cart with the store's promotions on at `at` (default now): every line, every
    promotion applied, gifts, shipping and the coupon's fate. Changes nothing."""
    return await pricing.quote_cart(session, principal, body, clock.now())


@router.get("", response_model=Page[PromotionPublic], responses=problems(401, 403, 404, 422))
async def list_promotions(
    principal: Reader,
    session: Session,
    clock: ClockDep,
    store_id: Annotated[str | None, Query(description="Only this store.")] = None,
    kind: Kind | None = None,
    status: PromotionStatus | None = None,
    active_at: Annotated[
        IsoInstant | None, Query(description="On at this instant (weekly schedule included).")
    ] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[PromotionPublic]:
    """Promotions in the key's scope by id."""
    now = clock.now()
    after = decode_cursor(cursor, "promotions", 1)[0] if cursor else None
    rows = await service.list_page(
        session,
        principal,
        store_id=path_id(store_id, "store") if store_id is not None else None,
        kind=kind.value if kind else None,
        status=status,
        active_at=active_at,
        after_id=after,
        limit=limit,
        now=now,
    )
    page = page_of(rows, limit, lambda r: encode_cursor("promotions", r.id))
    return Page(
        items=await service.read_models(session, page.items, now), next_cursor=page.next_cursor
    )


@router.get("/{promotion_id}", response_model=PromotionPublic, responses=problems(401, 403, 404))
async def get_promotion(
    promotion_id: PromotionId, principal: Reader, session: Session, clock: ClockDep
) -> PromotionPublic:
    """One promotion with its status now."""
    now = clock.now()
    row = await service.get_visible(session, principal, path_id(promotion_id, "promotion"))
    return (await service.read_models(session, [row], now))[0]


@router.patch(
    "/{promotion_id}",
    response_model=PromotionPublic,
    responses=problems(
        401, 403, 404, 409, 412, 422, codes={409: "promotion_ended", 422: "below_floor_price"}
    ),
)
async def update_promotion(
    promotion_id: PromotionId,
    body: PromotionUpdate,
    principal: Writer,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
) -> PromotionPublic:
    """Change a promotion (`If-Match`); every check runs again on the result."""
    now = clock.now()
    row = await service.update(
        session, principal, path_id(promotion_id, "promotion"), body, if_match, now
    )
    return (await service.read_models(session, [row], now))[0]


@router.post(
    "/{promotion_id}/end",
    response_model=PromotionPublic,
    responses=problems(401, 403, 404, 409, codes={409: "promotion_ended"}),
)
async def end_promotion(
    promotion_id: PromotionId,
    principal: Writer,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> PromotionPublic:
    """End a promotion now (`promotion.ended` if one of its windows was open)."""
    now = clock.now()
    row = await service.end(session, principal, path_id(promotion_id, "promotion"), now)
    return (await service.read_models(session, [row], now))[0]


@router.post("/{promotion_id}/spend", response_model=SpendOut, responses=problems(401, 403, 404))
async def post_spend(
    promotion_id: PromotionId,
    body: SpendIn,
    principal: Writer,
    session: Session,
    _: IdempotencyKeyHeader = None,
) -> SpendOut:
    """Ad spend of one day attributed to the promotion; a second post for the date replaces it."""
    ident = path_id(promotion_id, "promotion")
    await performance.put_spend(session, principal, ident, body.date, body.amount)
    return SpendOut(promotion_id=ident, date=body.date, amount=body.amount)


@router.get(
    "/{promotion_id}/performance",
    response_model=PerformanceOut,
    responses=problems(401, 403, 404),
)
async def get_performance(
    promotion_id: PromotionId, principal: Reader, session: Session
) -> PerformanceOut:
    """Orders, units, GMV (paid totals of orders that used it), discount cost, ad spend,
    ROI and its grade (DOMAIN.md §5)."""
    data: dict[str, Any] = await performance.performance(
        session, principal, path_id(promotion_id, "promotion")
    )
    return PerformanceOut(**data)
