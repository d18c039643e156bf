"""``/v1/orders``: intake, reads and the order lifecycle."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from app.auth import AnyRole, Principal, Role, require
from app.db import get_session
from app.domain.dispatch.rules import Risk
from app.domain.order import bulk, group_buy, intake, lifecycle, queries, read
from app.domain.order.rules import Allocation, Status
from app.domain.order.schemas import (
    BulkItemResult,
    BulkResults,
    GroupFailedIn,
    GroupFormedIn,
    OrderBulkIn,
    OrderCreate,
    OrderPublic,
    PayIn,
    ReasonIn,
    ShipBulkIn,
    ShipIn,
    TrackingIn,
)
from app.domain.types import NO_NUL
from app.errors import item_problem
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import (
    ClockDep,
    IdempotencyKeyHeader,
    IfMatch,
    IsoInstant,
    Session,
    get_clock,
    path_id,
    problems,
)
from app.routing import TransactionalRoute, batch

router = APIRouter(prefix="/v1/orders", tags=["orders"], route_class=TransactionalRoute)

OrderId = Annotated[str, Path(description="Order id.", examples=["981"])]
Intaker = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]
Shipper = Annotated[
    Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.WAREHOUSE, Role.INTEGRATION))
]
Staff = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR))]

_ORDER_ERRORS = problems(401, 403, 404, 409, 412, 422, codes={409: "invalid_transition"})


async def _read_one(
    session: Session, principal: Principal, order_id: int, clock: ClockDep
) -> OrderPublic:
    order = await queries.get_visible(session, principal, order_id)
    return (await read.read_models(session, [order], clock.now()))[0]


@router.post(
    "",
    status_code=201,
    response_model=OrderPublic,
    responses={
        200: {"description": "The same order was taken before (retry): the existing order."},
        **problems(401, 403, 404, 409, 422, codes={409: "duplicate_order", 422: "unknown_sku"}),
    },
)
async def create_order(
    body: OrderCreate,
    principal: Intaker,
    response: Response,
    request: Request,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """Take an order and reserve its stock (idempotent on `store_id` + `external_id`).

    With `allow_backorder: false` a short order is `409 insufficient_stock` and nothing is
    created; otherwise it waits for stock with `allocation` `partial` or `short`.
    """
    # Read from the request, not declared as dependencies: the hottest route of the
    # service, and FastAPI resolves each declared dependency anew per request.
    session = await get_session(request)
    clock = await get_clock(request)
    # The request transaction is retried when its stock taken at commit was gone (or it
    # lost a deadlock); the retry takes the stock on the exact path, under the balance
    # lock, so it cannot fail at commit again and a backorder order becomes a backorder.
    exact = getattr(request.state, "intake_attempted", False)
    request.state.intake_attempted = True
    result = await intake.take(session, principal, body, clock.now(), exact=exact)
    if result.public is not None:
        return result.public
    response.status_code = 200
    return await _read_one(session, principal, result.order_id, clock)


@router.post(
    "/bulk",
    response_model=BulkResults,
    response_model_exclude_none=True,
    responses=problems(401, 403, 422),
)
@batch
async def create_orders_bulk(
    body: OrderBulkIn,
    principal: Intaker,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> Response:
    """Take up to 1,000 orders at once: one result per order, in input order.

    Each order behaves like `POST /v1/orders` (201 created, 200 same order again, 409/422
    refused); one bad order never fails the others. Results of taken orders carry their
    `allocation`, so short orders show without a second query.
    """
    outcomes = await bulk.take_bulk(session, principal, body.orders, clock.now())
    # Built by hand with orjson (documented by BulkResults): a thousand results through
    # pydantic cost more than the rest of the response.
    results = [
        {"index": o.index, "status": o.status, "id": str(o.order_id), "allocation": o.allocation}
        if o.error is None
        else {"index": o.index, "status": o.status, "error": item_problem(o.error)}
        for o in outcomes
    ]
    return Response(orjson.dumps({"results": results}), media_type="application/json")


@router.post(
    "/ship-bulk",
    response_model=BulkResults,
    response_model_exclude_none=True,
    responses=problems(401, 403, 422),
)
@batch
async def ship_orders_bulk(
    body: ShipBulkIn,
    principal: Shipper,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> BulkResults:
    """Ship up to 1,000 orders (warehouse scan-and-ship): one result per item, in order."""
    outcomes = await lifecycle.ship_many(session, principal, body.items, clock.now())
    return BulkResults(
        results=[
            BulkItemResult(
                index=n,
                status=status,
                id=order_id,
                error=None if error is None else item_problem(error),
            )
            for n, (status, order_id, error) in enumerate(outcomes)
        ]
    )


@router.get("", response_model=Page[OrderPublic], responses=problems(401, 404, 422))
async def list_orders(
    principal: AnyRole,
    session: Session,
    clock: ClockDep,
    store_id: Annotated[str | None, Query(description="Only this store.")] = None,
    status: Status | None = None,
    risk: Risk | None = None,
    allocation: Allocation | None = None,
    placed_from: Annotated[IsoInstant | None, Query(description="placed_at ≥ this.")] = None,
    placed_to: Annotated[IsoInstant | None, Query(description="placed_at < this.")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=NO_NUL,
            description="Exact external id, buyer phone or tracking number.",
        ),
    ] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[OrderPublic]:
    """Orders newest first, filtered; risk is computed from the clock at read time.

    Read with an `operator` key, buyers' phones and street addresses are masked
    (`138****8000`, `西湖区****`); `GET /v1/orders/{id}` shows them in full.
    """
    before = decode_cursor(cursor, "orders", 1)[0] if cursor else None
    now = clock.now()
    rows = await queries.list_page(
        session,
        principal,
        now=now,
        store_id=path_id(store_id, "store") if store_id is not None else None,
        status=status,
        risk=risk,
        allocation=allocation,
        placed_from=placed_from,
        placed_to=placed_to,
        q=q,
        before_id=before,
        limit=limit,
    )
    page = page_of(rows, limit, lambda o: encode_cursor("orders", o.id))
    return Page(
        items=await read.list_for(session, principal, page.items, now),
        next_cursor=page.next_cursor,
    )


@router.get("/{order_id}", response_model=OrderPublic, responses=problems(401, 404))
async def get_order(
    order_id: OrderId, principal: AnyRole, session: Session, clock: ClockDep
) -> OrderPublic:
    """One order with its dispatch deadline, risk, penalty and flags as of now.

    The buyer's phone and address are in full; read with an `operator` key, the read leaves
    an audit entry (`order.buyer_viewed`) naming the key.
    """
    order = await queries.get_visible(session, principal, path_id(order_id, "order"))
    return await read.one_for(session, principal, order, clock.now())


@router.post("/{order_id}/pay", response_model=OrderPublic, responses=_ORDER_ERRORS)
async def pay_order(
    order_id: OrderId,
    body: PayIn,
    principal: Intaker,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """Record payment of an order taken in unpaid; the dispatch clock starts."""
    oid = path_id(order_id, "order")
    await lifecycle.pay(session, principal, oid, body, clock.now(), if_match)
    return await _read_one(session, principal, oid, clock)


@router.post(
    "/{order_id}/ship",
    response_model=OrderPublic,
    responses=problems(
        401,
        403,
        404,
        409,
        412,
        422,
        codes={409: "duplicate_tracking", 422: "invalid_tracking_number"},
    ),
)
async def ship_order(
    order_id: OrderId,
    body: ShipIn,
    principal: Shipper,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """Ship with a carrier and a tracking number unique in the store (fake-shipment guard).

    The same carrier and tracking number again, to an order they shipped, answers `200` with
    the order and changes nothing (a retry needs no `Idempotency-Key`); another shipment is
    `409 invalid_transition`. `shipped_at` (default now) may not be before payment or more
    than 5 minutes in the future (`422 invalid_shipped_at`).
    """
    oid = path_id(order_id, "order")
    await lifecycle.ship(session, principal, oid, body, clock.now(), if_match)
    return await _read_one(session, principal, oid, clock)


@router.post(
    "/{order_id}/group-formed",
    response_model=OrderPublic,
    responses=problems(
        401, 403, 404, 409, 412, 422, codes={409: "invalid_transition", 422: "invalid_formed_at"}
    ),
)
async def group_formed(
    order_id: OrderId,
    body: GroupFormedIn,
    principal: Intaker,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """A group buy's group formed (拼团成功): the dispatch clock starts at the later of
    `paid_at` and `formed_at` (event `order.group_formed`).

    The same `formed_at` again is a harmless retry; a different one is `409`. A `formed_at`
    more than 5 minutes in the future is `422 invalid_formed_at`.
    """
    oid = path_id(order_id, "order")
    await group_buy.formed(session, principal, oid, body.formed_at, clock.now(), if_match)
    return await _read_one(session, principal, oid, clock)


@router.post("/{order_id}/group-failed", response_model=OrderPublic, responses=_ORDER_ERRORS)
async def group_failed(
    order_id: OrderId,
    principal: Intaker,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    # Optional (no body is a failed group without a reason), yet documented by its model.
    body: GroupFailedIn = Body(default=None),
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """A group buy's group failed (拼团失败): the order is cancelled and its stock released.

    The platform refunds failed groups itself. Event `order.cancelled` with
    `group_failed: true`. Only before the group formed (`409 invalid_transition` after).
    """
    oid = path_id(order_id, "order")
    reason = body.reason if body is not None else None
    await group_buy.failed(session, principal, oid, reason, clock.now(), if_match)
    return await _read_one(session, principal, oid, clock)


@router.post("/{order_id}/cancel", response_model=OrderPublic, responses=_ORDER_ERRORS)
async def cancel_order(
    order_id: OrderId,
    body: ReasonIn,
    principal: Intaker,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """Cancel before shipment; reserved stock is released (waiting orders get it first)."""
    oid = path_id(order_id, "order")
    await lifecycle.cancel(session, principal, oid, body.reason, clock.now(), if_match)
    return await _read_one(session, principal, oid, clock)


@router.post("/{order_id}/tracking-events", response_model=OrderPublic, responses=_ORDER_ERRORS)
async def add_tracking_event(
    order_id: OrderId,
    body: TrackingIn,
    principal: Shipper,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """Record a carrier scan (`picked_up`, `in_transit`, `delivered`, `returned`)."""
    oid = path_id(order_id, "order")
    await lifecycle.track(session, principal, oid, body, clock.now())
    return await _read_one(session, principal, oid, clock)


@router.post("/{order_id}/complete", response_model=OrderPublic, responses=_ORDER_ERRORS)
async def complete_order(
    order_id: OrderId,
    principal: Staff,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """Complete a delivered order."""
    oid = path_id(order_id, "order")
    await lifecycle.complete(session, principal, oid, clock.now(), if_match)
    return await _read_one(session, principal, oid, clock)


@router.post("/{order_id}/hold", response_model=OrderPublic, responses=_ORDER_ERRORS)
async def hold_order(
    order_id: OrderId,
    body: ReasonIn,
    principal: Staff,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """Put an unshipped order on hold: it cannot ship, and its clock keeps running."""
    oid = path_id(order_id, "order")
    await lifecycle.hold(session, principal, oid, body.reason, clock.now(), if_match)
    return await _read_one(session, principal, oid, clock)


@router.post("/{order_id}/release", response_model=OrderPublic, responses=_ORDER_ERRORS)
async def release_order(
    order_id: OrderId,
    principal: Staff,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """Take an order off hold."""
    oid = path_id(order_id, "order")
    await lifecycle.release(session, principal, oid, clock.now(), if_match)
    return await _read_one(session, principal, oid, clock)
