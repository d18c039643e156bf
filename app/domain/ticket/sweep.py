"""The ticket sweep (DOMAIN.md §4, §7): escalation to urgent and SLA notices, exactly once.

Each pass walks a partial index of open tickets by due instant with a keyset cursor, up to
:data:`BATCH` tickets per transaction. Escalation claims its tickets with ``FOR NO KEY
UPDATE SKIP LOCKED`` and changes them with a conditional update; SLA notices write no ticket
at all: each event carries a dedupe key (``events.dedupe_key`` is UNIQUE, ``ON CONFLICT DO
NOTHING``) and tickets whose notice exists drop out of the scan, so repeated or parallel
sweeps never emit twice. Events and updates are written set-based: one statement per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.store import zones
from app.domain.ticket import repository as repo
from app.domain.ticket import rules
from app.domain.ticket.rules import Priority, TicketType

BATCH = 1000
_BEGINNING = datetime.min.replace(tzinfo=UTC)
Row = sa.Row[Any]

_CLAIM = "LIMIT :batch FOR NO KEY UPDATE SKIP LOCKED"
_COLUMNS = (
    "id, store_id, order_id, external_id, type, priority, opened_at, resolution_started_at, "
    "first_response_due, first_response_at, resolution_due, reopen_count"
)
_ESCALATE = sa.text(
    f"SELECT {_COLUMNS} FROM tickets WHERE status = 'open' AND priority <> 'urgent' "
    "AND type IN ('refund', 'return_refund', 'complaint') AND resolution_started_at <= :cutoff "
    "AND (resolution_started_at, id) > (:after_at, :after_id) "
    f"ORDER BY resolution_started_at, id {_CLAIM}"
)
_SET_URGENT = sa.text(
    "UPDATE tickets t SET priority = 'urgent', first_response_due = v.fr, resolution_due = v.rd, "
    "escalated_at = :now, version = t.version + 1, updated_at = :now "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:frs AS timestamptz[]), "
    "CAST(:rds AS timestamptz[])) AS v(id, fr, rd) "
    "WHERE t.id = v.id AND t.priority <> 'urgent' AND t.status = 'open' RETURNING t.id"
)
_AUDIT = sa.text(
    "INSERT INTO audit_entries (api_key_id, action, resource_type, resource_id, store_id, data) "
    "SELECT NULL, 'ticket.escalated', 'ticket', v.id::text, v.store_id, "
    "jsonb_build_object('priority', 'urgent', 'previous', v.previous) "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:stores AS bigint[]), CAST(:previous AS text[])) "
    "AS v(id, store_id, previous)"
)
# Pending due instants before :soon, in index order, leaving out those whose notice for the
# current level (breached once due, else due soon) exists: an index probe on the event's
# dedupe key, so tickets already notified cost no write, only that probe.
_NOT_NOTIFIED = (
    "NOT EXISTS (SELECT 1 FROM events e WHERE e.dedupe_key = {key} || "
    "CASE WHEN {due} < :now THEN 'sla_breached' ELSE 'sla_due_soon' END)"
)
_FIRST_RESPONSE = sa.text(
    f"SELECT {_COLUMNS}, first_response_due AS due FROM tickets t "
    "WHERE status = 'open' AND first_response_at IS NULL AND first_response_due < :soon "
    "AND (first_response_due, id) > (:after_at, :after_id) AND "
    + _NOT_NOTIFIED.format(
        key="'ticket:' || t.id || ':first_response:'", due="t.first_response_due"
    )
    + " ORDER BY first_response_due, id LIMIT :batch"
)
_RESOLUTION = sa.text(
    f"SELECT {_COLUMNS}, resolution_due AS due FROM tickets t "
    "WHERE status = 'open' AND resolution_due < :soon "
    "AND (resolution_due, id) > (:after_at, :after_id) AND "
    + _NOT_NOTIFIED.format(
        key="'ticket:' || t.id || ':resolution:' || t.reopen_count || ':'",
        due="t.resolution_due",
    )
    + " ORDER BY resolution_due, id LIMIT :batch"
)
_EVENTS = sa.text(
    "INSERT INTO events (type, store_id, data, dedupe_key) "
    "SELECT v.type, v.store_id, v.data::jsonb, v.key FROM unnest(CAST(:types AS text[]), "
    "CAST(:stores AS bigint[]), CAST(:datas AS text[]), CAST(:keys AS text[])) "
    "AS v(type, store_id, data, key) ON CONFLICT (dedupe_key) DO NOTHING RETURNING type"
)


async def sweep_tickets(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> dict[str, int]:
    """Escalate, then send the SLA notices due at ``now``; counts of what changed."""
    escalated = await _escalate(sessionmaker, now)
    soon_fr, breached_fr = await _notify(sessionmaker, now, "first_response", _FIRST_RESPONSE)
    soon_res, breached_res = await _notify(sessionmaker, now, "resolution", _RESOLUTION)
    return {
        "escalated": escalated,
        "sla_due_soon": soon_fr + soon_res,
        "sla_breached": breached_fr + breached_res,
    }


async def _escalate(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """refund, return_refund, complaint open 12 h → urgent, dues recomputed (§4)."""
    done = 0
    cursor: dict[str, Any] = {"after_at": _BEGINNING, "after_id": 0}
    while True:
        async with sessionmaker() as session:
            rows = (
                await session.execute(
                    _ESCALATE, {"cutoff": now - rules.ESCALATE_AFTER, "batch": BATCH, **cursor}
                )
            ).all()
            if not rows:
                return done
            hours = await repo.service_hours(session, {r.store_id for r in rows})
            urgent = Priority.URGENT
            # An answered ticket keeps its first-response due: the reply was judged by it.
            frs = [
                r.first_response_due
                if r.first_response_at is not None
                else rules.first_response_due(r.opened_at, urgent, hours[r.store_id])
                for r in rows
            ]
            rds = [
                rules.resolution_due(r.resolution_started_at, TicketType(r.type), urgent)
                for r in rows
            ]
            changed = {
                i
                for (i,) in await session.execute(
                    _SET_URGENT, {"ids": [r.id for r in rows], "frs": frs, "rds": rds, "now": now}
                )
            }
            mine = [r for r in rows if r.id in changed]
            if mine:
                await session.execute(
                    _AUDIT,
                    {
                        "ids": [r.id for r in mine],
                        "stores": [r.store_id for r in mine],
                        "previous": [r.priority for r in mine],
                    },
                )
            await session.commit()
        done += len(mine)
        if len(rows) < BATCH:
            return done
        cursor = {"after_at": rows[-1].resolution_started_at, "after_id": rows[-1].id}


async def _notify(
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime,
    due_kind: str,
    claim: sa.TextClause,
) -> tuple[int, int]:
    """``ticket.sla_due_soon`` / ``ticket.sla_breached`` for one due kind, once each.

    A ticket that went from ok to breached between two sweeps gets only ``sla_breached``.
    Nothing is locked or updated: the events' dedupe keys decide, so of two sweeps at once
    one inserts each event and the other's insert does nothing (and is not counted).
    """
    soon_sent = breached_sent = 0
    cursor: dict[str, Any] = {"after_at": _BEGINNING, "after_id": 0}
    params = {"soon": now + rules.DUE_SOON, "now": now, "batch": BATCH}
    while True:
        async with sessionmaker() as session:
            rows = (await session.execute(claim, {**params, **cursor})).all()
            if not rows:
                return soon_sent, breached_sent
            tzs = await zones.zones_of(session, {r.store_id for r in rows})
            raised = [(r, rules.notice_level(r.due, now)) for r in rows]
            sent = await _send(session, raised, due_kind, tzs, now)
            await session.commit()
        soon_sent += sent.count("ticket.sla_due_soon")
        breached_sent += sent.count("ticket.sla_breached")
        if len(rows) < BATCH:
            return soon_sent, breached_sent
        cursor = {"after_at": rows[-1].due, "after_id": rows[-1].id}


def _cycle_key(row: Row, due_kind: str, level: int) -> str:
    what = "sla_breached" if level == 2 else "sla_due_soon"
    if due_kind == "resolution":
        # A reopen starts a new resolution clock, which gets its own notices.
        return rules.dedupe_key(row.id, f"resolution:{row.reopen_count}:{what}")
    return rules.dedupe_key(row.id, f"first_response:{what}")


async def _send(
    session: AsyncSession,
    raised: Sequence[tuple[Row, int]],
    due_kind: str,
    tzs: dict[int, Any],
    now: datetime,
) -> list[str]:
    """One statement for a batch's events (dedupe keys make a repeat a no-op); the types
    of the events this call inserted."""
    types, stores, datas, keys = [], [], [], []
    for r, level in raised:
        tz = tzs[r.store_id]
        data = {
            "ticket_id": str(r.id),
            "order_id": None if r.order_id is None else str(r.order_id),
            "external_id": r.external_id,
            "type": r.type,
            "priority": r.priority,
            "due": due_kind,
            "due_at": zones.render(r.due, tz),
            "seconds_left": int((r.due - now).total_seconds()),
        }
        types.append("ticket.sla_breached" if level == 2 else "ticket.sla_due_soon")
        stores.append(r.store_id)
        datas.append(orjson.dumps(data).decode())
        keys.append(_cycle_key(r, due_kind, level))
    params = {"types": types, "stores": stores, "datas": datas, "keys": keys}
    return [r.type for r in await session.execute(_EVENTS, params)]
