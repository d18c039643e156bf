"""``/v1/stores``: stores, their policies, monthly targets and daily traffic."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.auth import Admin, AnyRole, Principal, Role, require
from app.domain.errors import Forbidden, RuleViolation
from app.domain.store import service, zones
from app.domain.store.schemas import (
    Platform,
    StoreCreate,
    StorePublic,
    StoreUpdate,
    TargetIn,
    TargetPublic,
    TrafficIn,
    TrafficPublic,
    parse_month,
)
from app.domain.types import NO_NUL
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import IdempotencyKeyHeader, IfMatch, IsoDate, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/stores", tags=["stores"], route_class=TransactionalRoute)

StoreId = Annotated[str, Path(description="Store id.", examples=["1"])]
# The format is documented; a malformed month is answered by _month as `invalid_month`.
Month = Annotated[
    str,
    Path(
        description="YYYY-MM",
        examples=["2026-11"],
        json_schema_extra={"pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"},
    ),
]
StoreWriter = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR))]
TrafficWriter = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]


def _store_id(raw: str) -> int:
    return path_id(raw, "store")


@router.post(
    "",
    status_code=201,
    response_model=StorePublic,
    responses=problems(401, 403, 409, 422, codes={409: "duplicate_store_code"}),
)
async def create_store(
    body: StoreCreate, principal: Admin, session: Session, _: IdempotencyKeyHeader = None
) -> StorePublic:
    """Create a store (admin); omitted dispatch policy fields take the platform defaults."""
    if not principal.all_stores:
        raise Forbidden("forbidden_scope", "Only an all-stores admin key may create stores.")
    return service.to_public(await service.create(session, principal, body))


@router.get("", response_model=Page[StorePublic], responses=problems(401, 422))
async def list_stores(
    principal: AnyRole,
    session: Session,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    platform: Platform | None = None,
    q: Annotated[
        str | None, Query(max_length=100, pattern=NO_NUL, description="Code or name contains.")
    ] = None,
) -> Page[StorePublic]:
    """Stores in the key's scope, by id."""
    after = decode_cursor(cursor, "stores", 1)[0] if cursor else None
    rows = await service.list_page(
        session, principal, after_id=after, limit=limit, platform=platform, q=q
    )
    page = page_of(rows, limit, lambda s: encode_cursor("stores", s.id))
    return Page(items=[service.to_public(s) for s in page.items], next_cursor=page.next_cursor)


@router.get("/{store_id}", response_model=StorePublic, responses=problems(401, 404))
async def get_store(store_id: StoreId, principal: AnyRole, session: Session) -> StorePublic:
    """One store with its effective dispatch policy."""
    return service.to_public(await service.get_visible(session, principal, _store_id(store_id)))


@router.patch(
    "/{store_id}",
    response_model=StorePublic,
    responses=problems(401, 403, 404, 412, 422),
)
async def update_store(
    store_id: StoreId,
    body: StoreUpdate,
    principal: StoreWriter,
    session: Session,
    if_match: IfMatch,
) -> StorePublic:
    """Change name, platform, time zone or dispatch policy overrides (`If-Match` optional)."""
    store = await service.update(session, principal, _store_id(store_id), body, if_match)
    return service.to_public(store)


def _month(raw: str) -> date:
    try:
        return parse_month(raw)
    except ValueError:
        raise RuleViolation(
            "invalid_month",
            "Month must be YYYY-MM.",
            errors=[{"loc": ["path", "month"], "msg": "month must be YYYY-MM", "type": "invalid"}],
        ) from None


@router.put(
    "/{store_id}/targets/{month}",
    response_model=TargetPublic,
    responses=problems(401, 403, 404, 422),
)
async def put_target(
    store_id: StoreId,
    month: Month,
    body: TargetIn,
    principal: StoreWriter,
    session: Session,
) -> TargetPublic:
    """Set the monthly sales target (used by the daily report's target progress)."""
    target = await service.put_target(
        session, principal, _store_id(store_id), _month(month), body.sales_target
    )
    return await zones.one_in_store_time(session, target)


@router.get(
    "/{store_id}/targets/{month}", response_model=TargetPublic, responses=problems(401, 404, 422)
)
async def get_target(
    store_id: StoreId,
    month: Month,
    principal: AnyRole,
    session: Session,
) -> TargetPublic:
    """The monthly sales target."""
    target = await service.get_target(session, principal, _store_id(store_id), _month(month))
    return await zones.one_in_store_time(session, target)


@router.put(
    "/{store_id}/traffic/{day}",
    response_model=TrafficPublic,
    responses=problems(401, 403, 404, 422),
)
async def put_traffic(
    store_id: StoreId,
    day: Annotated[IsoDate, Path(description="YYYY-MM-DD (store time)", examples=["2026-11-11"])],
    body: TrafficIn,
    principal: TrafficWriter,
    session: Session,
) -> TrafficPublic:
    """Set a day's visitors and ad spend (pushed by the ERP from the marketplace export)."""
    traffic = await service.put_traffic(
        session, principal, _store_id(store_id), day, body.visitors, body.ad_spend
    )
    return await zones.one_in_store_time(session, traffic)


@router.get(
    "/{store_id}/traffic/{day}", response_model=TrafficPublic, responses=problems(401, 404, 422)
)
async def get_traffic(
    store_id: StoreId,
    day: Annotated[IsoDate, Path(description="YYYY-MM-DD (store time)", examples=["2026-11-11"])],
    principal: AnyRole,
    session: Session,
) -> TrafficPublic:
    """A day's traffic figures."""
    traffic = await service.get_traffic(session, principal, _store_id(store_id), day)
    return await zones.one_in_store_time(session, traffic)
