"""``/v1/marketplace``: platform order payloads, the intake review queue and ship-back."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth import Principal, Role, require
from app.domain.errors import RuleViolation
from app.domain.marketplace import ingest, queue, shipback
from app.domain.marketplace.schemas import (
    ConfirmIn,
    ConfirmOut,
    DiscardIn,
    Platform,
    PlatformOrdersIn,
    ShipCall,
    SyncResults,
    UnmappedPublic,
)
from app.domain.store import zones
from app.models import MarketplaceUnmapped
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import ClockDep, IdempotencyKeyHeader, Session, path_id, problems
from app.routing import TransactionalRoute, batch, exact_numbers

router = APIRouter(prefix="/v1/marketplace", tags=["marketplace"], route_class=TransactionalRoute)

Syncer = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]
PlatformPath = Annotated[Platform, Path(description="The marketplace.", examples=["pdd"])]
StoreQuery = Annotated[str, Query(description="The store the orders belong to.", examples=["1"])]
EntryId = Annotated[str, Path(description="Review queue entry id.", examples=["7"])]


@router.post(
    "/{platform}/orders",
    response_model=SyncResults,
    response_model_exclude_none=True,
    responses=problems(401, 403, 404, 409, 422, codes={409: "platform_mismatch"}),
)
@exact_numbers  # money is never read through a binary float; the body is parsed once
@batch
async def post_platform_orders(
    platform: PlatformPath,
    store_id: StoreQuery,
    body: PlatformOrdersIn,
    principal: Syncer,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> Response:
    """Up to 1,000 of the platform's own order objects (as its list or detail API returns
    them), mapped to snapshots and applied: one result per order `{index, status, id?,
    error?, queued?}`. An order that cannot be mapped is kept in the review queue
    (`status` 202, `queued: true`, `id` the entry's, `error` naming the field); an
    unchanged order is 200 and writes nothing."""
    results = await ingest.ingest(
        session, principal, platform, path_id(store_id, "store"), body.orders, clock.now()
    )
    return Response(orjson.dumps({"results": results}), media_type="application/json")


async def _public(session: Session, entry: MarketplaceUnmapped) -> UnmappedPublic:
    # Shown as stored: JSON numbers as numbers (jsonb keeps them exact; the shortest form
    # of each reads back the same), ints beyond 64 bits through the standard library.
    text = await queue.payload_text(session, entry.id or 0)
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        payload = json.loads(text)
    public = UnmappedPublic(
        id=entry.id,
        store_id=entry.store_id,
        platform=entry.platform,
        external_id=entry.external_id,
        status=entry.status,
        problem=entry.problem,
        payload=payload,
        attempts=entry.attempts,
        order_id=entry.order_id,
        discard_reason=entry.discard_reason,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
    )
    return zones.localize(public, await zones.zone_of(session, entry.store_id))


@router.get(
    "/unmapped", response_model=Page[UnmappedPublic], responses=problems(401, 403, 404, 422)
)
async def list_unmapped(
    principal: Syncer,
    session: Session,
    store_id: Annotated[str | None, Query(description="Only this store.")] = None,
    platform: Platform | None = None,
    status: Literal["open", "resolved", "discarded"] | None = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[UnmappedPublic]:
    """Platform orders kept for review, newest first."""
    before = decode_cursor(cursor, "unmapped", 1)[0] if cursor else None
    rows = await queue.list_page(
        session,
        principal,
        store_id=path_id(store_id, "store") if store_id is not None else None,
        platform=platform,
        status=status,
        before_id=before,
        limit=limit,
    )
    page = page_of(rows, limit, lambda e: encode_cursor("unmapped", e.id))
    return Page(items=[await _public(session, e) for e in page.items], next_cursor=page.next_cursor)


@router.post(
    "/unmapped/{entry_id}/retry",
    response_model=UnmappedPublic,
    responses=problems(401, 403, 404, 409, codes={409: "invalid_transition"}),
)
async def retry_unmapped(
    entry_id: EntryId,
    principal: Syncer,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> UnmappedPublic:
    """Map the kept order again (after fixing the SKU mapping): `resolved` with its
    `order_id`, or still `open` with the new problem."""
    ident = path_id(entry_id, "unmapped_order")
    entry = await queue.get_visible(session, principal, ident, lock=True)
    queue.require_open(entry)
    text = await queue.payload_text(session, ident)
    results = await ingest.ingest(
        session,
        principal,
        entry.platform,
        entry.store_id,
        [json.loads(text, parse_float=Decimal)],
        clock.now(),
    )
    await queue.settle(session, ident, results[0], clock.now())
    return await _public(session, await queue.get_visible(session, principal, ident))


@router.delete(
    "/unmapped/{entry_id}",
    response_model=UnmappedPublic,
    responses=problems(401, 403, 404, 409, 422, codes={409: "invalid_transition"}),
)
async def discard_unmapped(
    entry_id: EntryId,
    body: DiscardIn,
    principal: Syncer,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> UnmappedPublic:
    """Discard an open entry with a reason; it is kept (status `discarded`) for audit."""
    entry = await queue.discard(
        session, principal, path_id(entry_id, "unmapped_order"), body.reason, clock.now()
    )
    return await _public(session, entry)


@router.get(
    "/{platform}/shipments",
    response_model=Page[ShipCall],
    responses=problems(401, 403, 404, 409, 422, codes={409: "platform_mismatch"}),
)
async def list_shipments(
    platform: PlatformPath,
    store_id: StoreQuery,
    principal: Syncer,
    session: Session,
    after: Annotated[
        str | None, Query(description="Continue after this shipment id (`next_cursor`).")
    ] = None,
    limit: LimitParam = 50,
) -> Page[ShipCall]:
    """Shipments not yet confirmed to the platform, oldest first, each as the platform's
    ship call (`api`, `params`). A carrier without a code in the store's `carrier_codes` is
    listed with `error: carrier_code_missing` and `missing` naming the setting."""
    if after is not None and not (after.isascii() and after.isdigit() and len(after) <= 18):
        raise RuleViolation(
            "invalid_cursor",
            "`after` is a shipment id from `next_cursor`.",
            errors=[{"loc": ["query", "after"], "msg": "not a shipment id", "type": "invalid"}],
        )
    after_id = int(after) if after is not None else 0
    rows = await shipback.pending(
        session, principal, platform, path_id(store_id, "store"), after_id, limit
    )
    more = len(rows) > limit
    items = rows[:limit]
    tz = await zones.zone_of(session, path_id(store_id, "store"))
    return Page(
        items=[zones.localize(i, tz) for i in items],
        next_cursor=str(items[-1].id) if more and items else None,
    )


@router.post(
    "/{platform}/shipments/confirmations",
    response_model=ConfirmOut,
    responses=problems(401, 403, 422),
)
async def confirm_shipments(
    platform: PlatformPath,
    body: ConfirmIn,
    principal: Syncer,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> ConfirmOut:
    """Mark shipments sent to the platform (again is no error); ids that are not shipments
    of this platform in the key's stores come back as `unknown`."""
    confirmed, unknown = await shipback.confirm(
        session, principal, platform, None, body.ids, clock.now()
    )
    return ConfirmOut(confirmed=confirmed, unknown=unknown)
