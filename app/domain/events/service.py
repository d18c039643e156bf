"""Append events in the caller's transaction; read the feed in commit-safe order."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import RuleViolation
from app.domain.store import zones
from app.models import Event

EVENT_TYPES = frozenset(
    {
        "order.created",
        "order.paid",
        "order.group_formed",
        "order.allocated",
        "order.at_risk",
        "order.overdue",
        "order.shipped",
        "order.fake_shipment_risk",
        "order.delivered",
        "order.completed",
        "order.cancelled",
        "order.refunded",
        "stock.low",
        "stock.out",
        "sku.delisted",
        "sku.relisted",
        "ticket.created",
        "ticket.sla_due_soon",
        "ticket.sla_breached",
        "ticket.resolved",
        "promotion.started",
        "promotion.ended",
    }
)

_events = Event.__table__  # type: ignore[attr-defined]

# Only transactions older than every transaction still running are visible: a transaction
# that commits late has a tx_id at or above this horizon, so a reader never passes it by.
_HORIZON = sa.text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


async def append(
    session: AsyncSession,
    type_: str,
    store_id: int | None,
    data: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
) -> bool:
    """Write one event in the caller's transaction; False if ``dedupe_key`` was already used.

    Datetimes in ``data`` are written in the store's time (API.md "Time"): the payload is
    JSON, fixed when written, and the store is known now.
    """
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_}")
    payload = dict(data)
    if any(isinstance(v, datetime) for v in payload.values()):
        payload = zones.render_data(payload, await zones.zone_of(session, store_id))
    stmt = pg_insert(_events).values(
        type=type_, store_id=store_id, data=payload, dedupe_key=dedupe_key
    )
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def feed(
    session: AsyncSession,
    *,
    after: int | None,
    store_ids: list[int] | None,
    types: list[str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Events after event ``after`` in (transaction, id) order, up to ``limit + 1`` rows."""
    cond: list[Any] = [_events.c.tx_id < _HORIZON]
    if after is not None:
        anchor = (
            await session.execute(sa.select(_events.c.tx_id).where(_events.c.id == after))
        ).scalar_one_or_none()
        if anchor is None:
            raise RuleViolation(
                "invalid_cursor",
                f"No event {after}: pass the id of an event you have received.",
                errors=[{"loc": ["query", "after"], "msg": "unknown event id", "type": "invalid"}],
            )
        cond.append(sa.tuple_(_events.c.tx_id, _events.c.id) > sa.tuple_(anchor, after))
    if store_ids is not None:
        cond.append(_events.c.store_id.in_(store_ids))
    if types:
        cond.append(_events.c.type.in_(types))
    rows = await session.execute(
        sa.select(
            _events.c.id,
            _events.c.type,
            _events.c.store_id,
            _events.c.occurred_at,
            _events.c.data,
        )
        .where(*cond)
        .order_by(_events.c.tx_id, _events.c.id)
        .limit(limit + 1)
    )
    return [dict(r._mapping) for r in rows]
