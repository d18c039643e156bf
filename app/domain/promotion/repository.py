"""Promotion rows → engine objects; the store's live promotions and SKU prices."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.promotion.floor import SkuPrice
from app.domain.promotion.rules import Kind, Promo, cents, engine_rules
from app.domain.promotion.schedule import Timing, Weekly
from app.models import Promotion

_promotions = Promotion.__table__  # type: ignore[attr-defined]

# Advisory-lock class of "a store's promotions and floors": the floor check of a new or
# changed promotion and of a SKU's price change see each other (DOMAIN.md §5).
FLOOR_LOCK_CLASS = 0x50524D  # "PRM"


async def lock_floors(session: AsyncSession, store_id: int) -> None:
    """Serialise floor checks of one store until the transaction ends."""
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(:c, :s)"),
        {"c": FLOOR_LOCK_CLASS, "s": store_id % 2**31},
    )


def weekly(schedule: dict[str, Any] | None) -> Weekly | None:
    """A stored schedule (``{weekdays, start_time, end_time}``) as the engine's."""
    if schedule is None:
        return None
    return Weekly(
        frozenset(int(d) for d in schedule["weekdays"]),
        time.fromisoformat(schedule["start_time"]),
        time.fromisoformat(schedule["end_time"]),
    )


def timing(row: Any, tz: tzinfo) -> Timing:
    """When a stored promotion applies (an early end cuts its window)."""
    ends = row.ends_at if row.ended_at is None else min(row.ends_at, row.ended_at)
    return Timing(row.starts_at, ends, weekly(row.schedule), tz)


_cache: dict[tuple[int, int, Any, Any], Promo] = {}
_CACHE_MAX = 10_000


def to_engine(row: Any, tz: tzinfo, *, cache: bool = True) -> Promo:
    """A stored promotion as the engine sees it (cached per id and version: quotes and
    intake convert the same live promotions over and over; ``cache=False`` for values not
    stored yet)."""
    if not cache:
        return _to_engine(row, tz)
    key = (row.id, row.version, row.ended_at, tz)
    promo = _cache.get(key)
    if promo is None:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        promo = _cache[key] = _to_engine(row, tz)
    return promo


def _to_engine(row: Any, tz: tzinfo) -> Promo:
    kind = Kind(row.kind)
    return Promo(
        id=row.id,
        kind=kind,
        rules=engine_rules(kind, row.rules),
        sku_ids=None if row.sku_ids is None else frozenset(row.sku_ids),
        timing=timing(row, tz),
        stackable=row.stackable,
    )


async def live(
    session: AsyncSession, store_id: int, now: datetime, *, exclude: int | None = None
) -> list[Any]:
    """The store's promotions not ended at ``now`` (running or still to come)."""
    stmt = sa.select(_promotions).where(
        _promotions.c.store_id == store_id,
        _promotions.c.ended_at.is_(None),
        _promotions.c.ends_at > now,
    )
    if exclude is not None:
        stmt = stmt.where(_promotions.c.id != exclude)
    return list((await session.execute(stmt.order_by(_promotions.c.id))).all())


async def on_at(session: AsyncSession, store_id: int, at: datetime) -> list[Any]:
    """The store's promotions whose window holds ``at`` (schedules checked by the engine)."""
    stmt = sa.select(_promotions).where(
        _promotions.c.store_id == store_id,
        _promotions.c.starts_at <= at,
        _promotions.c.ends_at > at,
        sa.or_(_promotions.c.ended_at.is_(None), _promotions.c.ended_at > at),
    )
    return list((await session.execute(stmt.order_by(_promotions.c.id))).all())


async def sku_prices(
    session: AsyncSession, store_id: int, sku_ids: Iterable[int] | None
) -> dict[int, SkuPrice]:
    """Price and effective floor (floor, else cost) of the store's SKUs (None: all)."""
    sql = (
        "SELECT id, price, coalesce(floor_price, cost_price) AS floor FROM skus WHERE store_id = :s"
    )
    params: dict[str, Any] = {"s": store_id}
    if sku_ids is not None:
        sql += " AND id = ANY(:ids)"
        params["ids"] = sorted(set(sku_ids))
    rows = await session.execute(sa.text(sql), params)
    return {
        r.id: SkuPrice(r.id, cents(r.price), None if r.floor is None else cents(r.floor))
        for r in rows
    }
