"""``/v1/pick-list``: the next orders to pick in board order, with lines, address, SKU totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth import Principal, Role, require
from app.domain.dispatch import board as dispatch_board
from app.domain.dispatch.schemas import PickList
from app.domain.errors import RuleViolation
from app.domain.order.privacy import buyer_view
from app.domain.store import service as stores
from app.pagination import CursorParam, LimitParam, decode_cursor, encode_cursor
from app.routers._common import ClockDep, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/pick-list", tags=["orders"], route_class=TransactionalRoute)

Picker = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.WAREHOUSE))]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _US


def _instant(micros: int) -> datetime:
    try:
        return _EPOCH + micros * _US
    except OverflowError:
        raise _bad_cursor() from None


def _bad_cursor() -> RuleViolation:
    return RuleViolation(
        "invalid_cursor",
        "The cursor is malformed or belongs to another list.",
        errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "invalid_cursor"}],
    )


def _encode(position: dispatch_board.PickPosition) -> str:
    return encode_cursor(
        "pick-list",
        _micros(position.at),
        position.segment,
        _micros(position.deadline),
        _micros(position.placed_at),
        position.order_id,
    )


def _decode(cursor: str) -> dispatch_board.PickPosition:
    at, segment, deadline, placed_at, order_id = decode_cursor(cursor, "pick-list", 5)
    if not 0 <= segment < len(dispatch_board.PICK_SEGMENTS):
        raise _bad_cursor()
    return dispatch_board.PickPosition(
        _instant(at), segment, _instant(deadline), _instant(placed_at), order_id
    )


@router.get("", response_model=PickList, responses=problems(401, 403, 404, 422))
async def get_pick_list(
    principal: Picker,
    session: Session,
    clock: ClockDep,
    store_id: Annotated[
        str | None, Query(description="Only this store (default: the key's scope).")
    ] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> PickList:
    """Orders that can ship now (allocated, not on hold) in board order, and SKU totals.

    Overdue first, then urgent, then the others, each by deadline (DOMAIN.md §2). Each order
    comes with its lines and ship-to address; `skus` totals the orders of this page. Pages
    after the first keep the first page's instant to group orders by, so none is listed
    twice or skipped when it falls due meanwhile. An `operator` key sees the buyer's phone
    and street address masked (`138****8000`); the warehouse sees them in full for labels.
    """
    after = _decode(cursor) if cursor is not None else None
    store_ids = await stores.store_filter(
        session, principal, path_id(store_id, "store") if store_id is not None else None
    )
    # An operator reads ship-to addresses masked, as in every order list (API.md, Personal data).
    view = buyer_view(principal.role, many=True)
    page, following = await dispatch_board.pick_list(
        session, store_ids, clock.now(), limit, after, view=view
    )
    if following is not None:
        page.next_cursor = _encode(following)
    return page
