"""``/v1/events``: the durable event feed, in commit order, each event exactly once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import WithJsonSchema

from app.auth import Principal, Role, require
from app.domain.errors import RuleViolation
from app.domain.events import service
from app.domain.events.schemas import EventPage, EventPublic
from app.domain.store import service as stores
from app.domain.store import zones
from app.domain.types import parse_id
from app.pagination import LimitParam
from app.routers._common import Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=TransactionalRoute)

FeedReader = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]


def _after(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_id(raw)
    except ValueError:
        raise RuleViolation(
            "invalid_cursor",
            "after must be an event id.",
            errors=[{"loc": ["query", "after"], "msg": "not an event id", "type": "invalid"}],
        ) from None


@router.get("", response_model=EventPage, responses=problems(401, 403, 404, 422))
async def list_events(
    principal: FeedReader,
    session: Session,
    after: Annotated[
        str | None, Query(description="Id of the last event you processed.", examples=["1200"])
    ] = None,
    cursor: Annotated[str | None, Query(description="Same as `after`.")] = None,
    store_id: Annotated[str | None, Query(description="Only this store.")] = None,
    type: Annotated[
        list[str] | None,
        # The schema enumerates the types (a comma-separated list is accepted as well).
        WithJsonSchema(
            {"type": "array", "items": {"type": "string", "enum": sorted(service.EVENT_TYPES)}}
        ),
        Query(
            description="Only these types (repeat or comma-separate).", examples=["order.created"]
        ),
    ] = None,
    limit: LimitParam = 50,
) -> EventPage:
    """Events after `after`, oldest first; `next_cursor` is null once caught up.

    Events appear only once every transaction that started before them has finished, so
    a consumer that pages with `after` never skips an event that committed late.
    """
    types = sorted({t for raw in type or [] for t in raw.split(",") if t}) or None
    if types:
        unknown = [t for t in types if t not in service.EVENT_TYPES]
        if unknown:
            raise RuleViolation(
                "unknown_event_type",
                f"Unknown event types: {', '.join(unknown)}. "
                f"Valid types: {', '.join(sorted(service.EVENT_TYPES))}.",
                errors=[{"loc": ["query", "type"], "msg": "unknown type", "type": "invalid"}],
            )
    store_ids = await stores.store_filter(
        session, principal, path_id(store_id, "store") if store_id is not None else None
    )
    rows = await service.feed(
        session, after=_after(after or cursor), store_ids=store_ids, types=types, limit=limit
    )
    # The envelope's instant in store time; ``data`` was written in it (events.append).
    items = await zones.in_store_time(session, [EventPublic(**r) for r in rows[:limit]])
    more = len(rows) > limit
    return EventPage(items=items, next_cursor=str(items[-1].id) if more else None)
