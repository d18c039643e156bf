"""The intake review queue: platform orders that could not be mapped, kept whole.

One open entry per (store, platform, order id — or payload hash when the id is missing):
sending the same order again updates its entry instead of queueing it twice.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db import driver
from app.domain.errors import Conflict, not_found
from app.domain.store import service as stores
from app.models import MarketplaceUnmapped

_q = MarketplaceUnmapped.__table__  # type: ignore[attr-defined]

_KEEP = """
    INSERT INTO marketplace_unmapped (store_id, platform, external_id, dedupe_key, payload, problem)
    SELECT $1, $2, v.e, v.k, v.p::jsonb, v.q::jsonb
      FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])
           WITH ORDINALITY AS v(e, k, p, q, n)
     ORDER BY v.n
    ON CONFLICT (store_id, platform, dedupe_key) WHERE status = 'open'
    DO UPDATE SET payload = excluded.payload, problem = excluded.problem,
                  external_id = excluded.external_id,
                  attempts = marketplace_unmapped.attempts + 1, updated_at = now()
    RETURNING id, dedupe_key
"""


def _dump(value: Any) -> str:
    """The payload as JSON text for the jsonb column: its Decimal numbers as the nearest
    double (shown as before; the mapping reads them from the request, not from here), one
    too large for a double as null (as orjson writes infinities)."""
    try:
        return orjson.dumps(value, default=_number).decode()
    except TypeError:  # ints beyond 64 bits: the standard library
        return json.dumps(value, default=_number, ensure_ascii=False)


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    raise TypeError(f"not JSON: {type(value).__name__}")


async def keep(
    session: AsyncSession,
    store_id: int,
    platform: str,
    entries: list[tuple[str | None, str, Any, dict[str, Any]]],
) -> list[int]:
    """Queue ``(external id, dedupe key, payload, problem)`` entries; their ids in order."""
    # Two copies of one order in a batch are one entry: the last one sent wins.
    last: dict[str, tuple[str | None, str, Any, dict[str, Any]]] = {}
    for entry in entries:
        last[entry[1]] = entry
    kept = list(last.values())
    con = await driver(session)
    rows = await con.fetch(
        _KEEP,
        store_id,
        platform,
        [e[0] for e in kept],
        [e[1] for e in kept],
        [_dump(e[2]) for e in kept],
        [orjson.dumps(e[3]).decode() for e in kept],
    )
    ids = {r["dedupe_key"]: r["id"] for r in rows}
    return [ids[e[1]] for e in entries]


async def resolve(
    session: AsyncSession, store_id: int, platform: str, done: list[tuple[str, int]]
) -> None:
    """Open entries of orders now taken are resolved (linked to their order)."""
    if not done:
        return
    con = await driver(session)
    await con.execute(
        """
        UPDATE marketplace_unmapped q SET status = 'resolved', order_id = v.o, updated_at = now()
          FROM unnest($3::text[], $4::bigint[]) AS v(k, o)
         WHERE q.store_id = $1 AND q.platform = $2 AND q.status = 'open' AND q.dedupe_key = v.k
        """,
        store_id,
        platform,
        [d[0] for d in done],
        [d[1] for d in done],
    )


async def get_visible(
    session: AsyncSession, principal: Principal, entry_id: int, *, lock: bool = False
) -> MarketplaceUnmapped:
    """A queue entry inside the key's scope, else 404."""
    entry = await session.get(
        MarketplaceUnmapped, entry_id, with_for_update=lock, populate_existing=True
    )
    if entry is None or not principal.sees_store(entry.store_id):
        raise not_found("unmapped_order", entry_id)
    return entry


async def payload_text(session: AsyncSession, entry_id: int) -> str:
    """The payload as stored JSON text (re-parsed with exact decimals by the caller)."""
    text: str = (
        await session.execute(
            sa.text("SELECT payload::text FROM marketplace_unmapped WHERE id = :id"),
            {"id": entry_id},
        )
    ).scalar_one()
    return text


def require_open(entry: MarketplaceUnmapped) -> None:
    """Only an open entry can be retried or discarded."""
    if entry.status != "open":
        raise Conflict("invalid_transition", f"The entry is {entry.status}, not open.")


async def discard(
    session: AsyncSession, principal: Principal, entry_id: int, reason: str, now: datetime
) -> MarketplaceUnmapped:
    """Discard an open entry with a reason; it stays for audit."""
    entry = await get_visible(session, principal, entry_id, lock=True)
    require_open(entry)
    await session.execute(
        sa.update(_q)
        .where(_q.c.id == entry_id)
        .values(status="discarded", discard_reason=reason, updated_at=now)
    )
    return await get_visible(session, principal, entry_id)


async def list_page(
    session: AsyncSession,
    principal: Principal,
    *,
    store_id: int | None,
    platform: str | None,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> list[MarketplaceUnmapped]:
    """Entries newest first, ``limit + 1`` rows with ids below ``before_id``."""
    stmt = sa.select(MarketplaceUnmapped).order_by(_q.c.id.desc())
    store_ids = await stores.store_filter(session, principal, store_id)
    if store_ids is not None:
        stmt = stmt.where(_q.c.store_id.in_(store_ids))
    if platform is not None:
        stmt = stmt.where(_q.c.platform == platform)
    if status is not None:
        stmt = stmt.where(_q.c.status == status)
    if before_id is not None:
        stmt = stmt.where(_q.c.id < before_id)
    return list((await session.execute(stmt.limit(limit + 1))).scalars())


async def settle(
    session: AsyncSession, entry_id: int, result: dict[str, Any], now: datetime
) -> None:
    """After a retry: a taken order resolves the entry (whatever its dedupe key)."""
    if result.get("queued") or "error" in result:
        if "error" in result and not result.get("queued"):
            await session.execute(
                sa.update(_q)
                .where(_q.c.id == entry_id, _q.c.status == "open")
                .values(problem=result["error"], attempts=_q.c.attempts + 1, updated_at=now)
            )
        return
    await session.execute(
        sa.update(_q)
        .where(_q.c.id == entry_id, _q.c.status == "open")
        .values(status="resolved", order_id=int(result["id"]), updated_at=now)
    )
