"""The dispatch sweep (DOMAIN.md §2, §7): at-risk and overdue notices, the fake-shipment guard
and auto-completion, in short batch transactions.

Each pass walks an index with a keyset cursor and claims up to :data:`BATCH` orders per
transaction with ``FOR NO KEY UPDATE SKIP LOCKED``: an order a request is changing right now
is left for the next sweep, and foreign-key inserts (tracking events, tickets) are not blocked.
Every event carries the dedupe key ``order:<id>:<kind>`` (``events.dedupe_key`` is UNIQUE) and
an order row changes only when its event was new, so a repeated sweep, two sweeps at once or
a crash between batches never emits or changes anything twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.dispatch import rules
from app.domain.events import service as events
from app.domain.order.lifecycle import completed_data, completed_key
from app.domain.order.read import policies
from app.domain.order.rules import dedupe_key
from app.domain.store import zones
from app.domain.store.rules import DispatchPolicy

BATCH = 500
STORE_PAGE = 1000
# rules.auto_complete_at: a delivered order completes this long after delivery.
DELIVERY_CONFIRM = timedelta(days=3)
_BEGINNING = datetime.min.replace(tzinfo=UTC)

Row = sa.Row[Any]
Handler = Callable[[AsyncSession, Sequence[Row]], Awaitable[int]]
Cursor = Callable[[Row], dict[str, Any]]

_CLAIM = "LIMIT :batch FOR NO KEY UPDATE OF o SKIP LOCKED"
# Orders already notified drop out of the scan (an index probe on events.dedupe_key);
# :suffix is ":at_risk" or ":overdue", as dedupe_key() builds it.
_NOT_NOTIFIED = (
    "NOT EXISTS (SELECT 1 FROM events e WHERE e.dedupe_key = 'order:' || o.id || :suffix)"
)
# Awaiting orders: ix_orders_board (store_id, dispatch_deadline, id), in index order.
_BOARD_AFTER = "(o.store_id, o.dispatch_deadline, o.id) > (:after_store, :after_at, :after_id)"
_BOARD_ORDER = f"ORDER BY o.store_id, o.dispatch_deadline, o.id {_CLAIM}"
# Shipped orders: ix_orders_shipped (shipped_at); the first condition bounds the index range.
_SHIPPED_AFTER = "o.shipped_at >= :after_at AND (o.shipped_at, o.id) > (:after_at, :after_id)"
_SHIPPED_ORDER = f"ORDER BY o.shipped_at, o.id {_CLAIM}"

_AT_RISK = sa.text(
    "SELECT o.id, o.store_id, o.external_id, o.dispatch_deadline, o.at_risk_at FROM orders o "
    "WHERE o.status = 'awaiting_shipment' AND o.dispatch_deadline >= :now "
    f"AND o.at_risk_at <= :now AND {_BOARD_AFTER} AND {_NOT_NOTIFIED} {_BOARD_ORDER}"
)
_OVERDUE = sa.text(
    "SELECT o.id, o.store_id, o.external_id, o.dispatch_deadline, o.total, o.penalty "
    "FROM orders o WHERE o.status = 'awaiting_shipment' AND o.dispatch_deadline < :now "
    f"AND {_BOARD_AFTER} AND {_NOT_NOTIFIED} {_BOARD_ORDER}"
)
_NO_PICKUP = sa.text(
    "SELECT o.id, o.store_id, o.external_id, o.carrier, o.tracking_number, o.shipped_at, "
    "o.picked_up_at FROM orders o "
    "WHERE o.status = 'shipped' AND o.store_id = ANY(:stores) AND NOT o.fake_shipment_risk "
    "AND o.shipped_at < :cutoff "
    "AND (o.picked_up_at IS NULL OR o.picked_up_at > o.shipped_at + :grace) "
    f"AND {_SHIPPED_AFTER} {_SHIPPED_ORDER}"
)
_DUE = sa.text(
    "SELECT o.id, o.shipped_at, o.delivered_at FROM orders o "
    "WHERE o.status IN ('shipped', 'delivered') AND o.store_id = ANY(:stores) "
    "AND NOT o.refund_pending AND o.shipped_at <= :bound "
    # DOMAIN.md §2: not while an after-sales ticket is open (ix_tickets_order_id_open).
    "AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.id AND t.status = 'open') "
    "AND (o.shipped_at <= :by_shipment OR o.delivered_at <= :by_delivery) "
    f"AND {_SHIPPED_AFTER} {_SHIPPED_ORDER}"
)

_SET_OVERDUE = sa.text(
    "UPDATE orders o SET penalty = v.penalty, version = o.version + 1, updated_at = :now "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:penalties AS numeric[])) AS v(id, penalty) "
    "WHERE o.id = v.id"
)
_SET_FAKE = sa.text(
    "UPDATE orders SET fake_shipment_risk = true, version = version + 1, updated_at = :now "
    "WHERE id = ANY(:ids)"
)
_SET_COMPLETED = sa.text(
    "UPDATE orders SET status = 'completed', completed_at = :now, version = version + 1, "
    "updated_at = :now WHERE id = ANY(:ids) AND status IN ('shipped', 'delivered') "
    "RETURNING id, store_id, external_id"
)


async def sweep_orders(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> dict[str, int]:
    """Apply the time-based dispatch rules of every store at ``now``; counts of what changed."""
    stores = await _store_policies(sessionmaker)
    return {
        "at_risk": await _notify_at_risk(sessionmaker, now),
        "overdue": await _record_overdue(sessionmaker, now),
        "fake_shipment_risk": await _flag_no_pickup(sessionmaker, stores, now),
        "completed": await _auto_complete(sessionmaker, stores, now),
    }


async def _store_policies(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[int, DispatchPolicy]:
    """The effective policy of every store (a small table, read a page at a time)."""
    out: dict[int, DispatchPolicy] = {}
    after = 0
    while True:
        async with sessionmaker() as session:
            ids = list(
                (
                    await session.execute(
                        sa.text("SELECT id FROM stores WHERE id > :after ORDER BY id LIMIT :n"),
                        {"after": after, "n": STORE_PAGE},
                    )
                ).scalars()
            )
            out.update(await policies(session, ids))
        if len(ids) < STORE_PAGE:
            return out
        after = ids[-1]


def _stores_by(
    stores: dict[int, DispatchPolicy], value: Callable[[DispatchPolicy], int]
) -> dict[int, list[int]]:
    """Store ids grouped by one policy value: one scan per distinct value, not per store."""
    groups: dict[int, list[int]] = defaultdict(list)
    for store_id, policy in stores.items():
        groups[value(policy)].append(store_id)
    return groups


async def _in_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    claim: sa.TextClause,
    params: dict[str, Any],
    handle: Handler,
    cursor: Cursor,
) -> int:
    """Claim, handle and commit one batch per transaction, moving a keyset cursor forward.

    Locked rows are skipped (``SKIP LOCKED``) and the cursor moves past them: the request
    holding them settles them, or the next sweep comes back to them.
    """
    done = 0
    while True:
        async with sessionmaker() as session:
            rows = (await session.execute(claim, {**params, "batch": BATCH})).all()
            if not rows:
                return done
            done += await handle(session, rows)
            await session.commit()
        if len(rows) < BATCH:
            return done
        params = {**params, **cursor(rows[-1])}


def _board_cursor(row: Row) -> dict[str, Any]:
    return {"after_store": row.store_id, "after_at": row.dispatch_deadline, "after_id": row.id}


def _shipped_cursor(row: Row) -> dict[str, Any]:
    return {"after_at": row.shipped_at, "after_id": row.id}


_BOARD_START = {"after_store": 0, "after_at": _BEGINNING, "after_id": 0}
_SHIPPED_START = {"after_at": _BEGINNING, "after_id": 0}


def _order_data(row: Row, **extra: Any) -> dict[str, Any]:
    return {"order_id": str(row.id), "external_id": row.external_id, **extra}


async def _notify_at_risk(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """``order.at_risk`` once per order past its at-risk instant and not yet overdue."""

    async def handle(session: AsyncSession, rows: Sequence[Row]) -> int:
        sent = 0
        await zones.zones_of(session, {r.store_id for r in rows})  # one read per batch
        for r in rows:
            data = _order_data(
                r,
                dispatch_deadline=r.dispatch_deadline,
                at_risk_at=r.at_risk_at,
                seconds_left=rules.seconds_left(r.dispatch_deadline, now),
            )
            key = dedupe_key(r.id, "at_risk")
            if await events.append(session, "order.at_risk", r.store_id, data, dedupe_key=key):
                sent += 1
        return sent

    params = {"now": now, "suffix": ":at_risk", **_BOARD_START}
    return await _in_batches(sessionmaker, _AT_RISK, params, handle, _board_cursor)


async def _record_overdue(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Past the deadline: record the late penalty once (DOMAIN.md §1), ``order.overdue``."""

    async def handle(session: AsyncSession, rows: Sequence[Row]) -> int:
        pols = await policies(session, {r.store_id for r in rows})
        ids: list[int] = []
        penalties: list[Decimal] = []
        for r in rows:
            # A penalty already on the order is kept: it is recorded once.
            amount: Decimal = r.penalty or rules.penalty(pols[r.store_id].late_penalty, r.total)
            data = _order_data(r, dispatch_deadline=r.dispatch_deadline, penalty=f"{amount:.2f}")
            key = dedupe_key(r.id, "overdue")
            if await events.append(session, "order.overdue", r.store_id, data, dedupe_key=key):
                ids.append(r.id)
                penalties.append(amount)
        if ids:
            await session.execute(_SET_OVERDUE, {"ids": ids, "penalties": penalties, "now": now})
        return len(ids)

    params = {"now": now, "suffix": ":overdue", **_BOARD_START}
    return await _in_batches(sessionmaker, _OVERDUE, params, handle, _board_cursor)


async def _flag_no_pickup(
    sessionmaker: async_sessionmaker[AsyncSession],
    stores: dict[int, DispatchPolicy],
    now: datetime,
) -> int:
    """No pickup scan within the grace period (虚假发货): flag and ``order.fake_shipment_risk``."""
    flagged = 0
    for hours, store_ids in _stores_by(stores, lambda p: p.pickup_grace_hours).items():
        flagged += await _flag_no_pickup_within(sessionmaker, store_ids, hours, now)
    return flagged


async def _flag_no_pickup_within(
    sessionmaker: async_sessionmaker[AsyncSession],
    store_ids: list[int],
    grace_hours: int,
    now: datetime,
) -> int:
    """:func:`_flag_no_pickup` for the stores whose grace period is ``grace_hours``."""
    grace = timedelta(hours=grace_hours)

    async def handle(session: AsyncSession, rows: Sequence[Row]) -> int:
        ids: list[int] = []
        await zones.zones_of(session, {r.store_id for r in rows})  # one read per batch
        for r in rows:
            if not rules.is_fake_shipment_risk(r.shipped_at, r.picked_up_at, now, grace_hours):
                continue
            data = _order_data(
                r,
                carrier=r.carrier,
                tracking_number=r.tracking_number,
                shipped_at=r.shipped_at,
                pickup_due=r.shipped_at + grace,
                picked_up_at=r.picked_up_at,
            )
            key = dedupe_key(r.id, "fake_shipment_risk")
            if await events.append(
                session, "order.fake_shipment_risk", r.store_id, data, dedupe_key=key
            ):
                ids.append(r.id)
        if ids:
            await session.execute(_SET_FAKE, {"ids": ids, "now": now})
        return len(ids)

    params = {"stores": store_ids, "cutoff": now - grace, "grace": grace, **_SHIPPED_START}
    return await _in_batches(sessionmaker, _NO_PICKUP, params, handle, _shipped_cursor)


async def _auto_complete(
    sessionmaker: async_sessionmaker[AsyncSession],
    stores: dict[int, DispatchPolicy],
    now: datetime,
) -> int:
    """Complete shipped and delivered orders whose confirm window has passed (DOMAIN.md §2).

    An order with ``refund_pending`` or with any open after-sales ticket is skipped.
    """
    completed = 0
    for days, store_ids in _stores_by(stores, lambda p: p.auto_complete_days).items():
        completed += await _auto_complete_after(sessionmaker, store_ids, days, now)
    return completed


async def _auto_complete_after(
    sessionmaker: async_sessionmaker[AsyncSession],
    store_ids: list[int],
    days: int,
    now: datetime,
) -> int:
    """:func:`_auto_complete` for the stores whose confirm window is ``days``."""

    async def handle(session: AsyncSession, rows: Sequence[Row]) -> int:
        due = [
            r.id for r in rows if rules.auto_complete_at(r.shipped_at, r.delivered_at, days) <= now
        ]
        if not due:
            return 0
        done = (await session.execute(_SET_COMPLETED, {"ids": due, "now": now})).all()
        await zones.zones_of(session, {r.store_id for r in done})  # one read per batch
        for r in done:
            data = completed_data(r.id, r.external_id, now, auto=True)
            await events.append(
                session, "order.completed", r.store_id, data, dedupe_key=completed_key(r.id)
            )
        return len(done)

    by_shipment = now - timedelta(days=days)
    by_delivery = now - DELIVERY_CONFIRM
    params = {
        "stores": store_ids,
        # Delivery follows shipment, so a due order has shipped_at <= the later of the two.
        "bound": max(by_shipment, by_delivery),
        "by_shipment": by_shipment,
        "by_delivery": by_delivery,
        **_SHIPPED_START,
    }
    return await _in_batches(sessionmaker, _DUE, params, handle, _shipped_cursor)


# Board histogram groups (migration 0004) still holding delta rows: more than one row per
# (at_risk_bin, short) key. The triggers compact one statement in 8, so a bin whose orders
# have all shipped keeps its last deltas (summing to zero) until this sweep folds them.
_LOOSE_GROUPS = sa.text(
    "SELECT store_id, deadline_bin FROM dispatch_board_counts "
    "WHERE (store_id, deadline_bin) > (:after_store, :after_bin) "
    "GROUP BY store_id, deadline_bin HAVING count(*) > count(DISTINCT (at_risk_bin, short)) "
    "ORDER BY store_id, deadline_bin LIMIT :batch"
)
# dispatch_board_compact() skips a group another transaction is compacting; taking the same
# transaction lock first (its key, as migration 0004 spells it) tells which groups it will do.
# The lock is re-entrant within the transaction, so the function's own try still succeeds.
_CLAIM_GROUPS = sa.text(
    "SELECT g.s AS store_id, g.b AS deadline_bin "
    "FROM unnest(CAST(:stores AS bigint[]), CAST(:bins AS timestamptz[])) AS g(s, b) "
    "WHERE pg_try_advisory_xact_lock("
    "1684632420, hashtext(g.s::text || '@' || extract(epoch FROM g.b)::text))"
)
_COMPACT_GROUPS = sa.text(
    "SELECT dispatch_board_compact(g.s, g.b) "
    "FROM unnest(CAST(:stores AS bigint[]), CAST(:bins AS timestamptz[])) AS g(s, b)"
)


async def compact_board(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Fold the dispatch board's delta rows into one row per key; the sums stay as they were.

    One transaction per batch of groups, under READ COMMITTED as ``dispatch_board_compact``
    requires; a group another compactor holds is left for the next sweep. Returns the number
    of groups compacted.
    """
    compacted = 0
    cursor: dict[str, Any] = {"after_store": 0, "after_bin": _BEGINNING}
    while True:
        async with sessionmaker() as session:
            groups = (await session.execute(_LOOSE_GROUPS, {**cursor, "batch": BATCH})).all()
            if not groups:
                return compacted
            claimed = (
                await session.execute(
                    _CLAIM_GROUPS,
                    {
                        "stores": [g.store_id for g in groups],
                        "bins": [g.deadline_bin for g in groups],
                    },
                )
            ).all()
            if claimed:
                await session.execute(
                    _COMPACT_GROUPS,
                    {
                        "stores": [g.store_id for g in claimed],
                        "bins": [g.deadline_bin for g in claimed],
                    },
                )
            await session.commit()
        compacted += len(claimed)
        if len(groups) < BATCH:
            return compacted
        cursor = {"after_store": groups[-1].store_id, "after_bin": groups[-1].deadline_bin}
