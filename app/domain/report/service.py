"""Daily and range reports of a store (DOMAIN.md §6, docs/reports.md).

One statement reads every day of the range: the compacted rollup rows plus the deltas not
folded yet, the traffic and the month's targets, and, live, the orders still awaiting
shipment whose deadline has passed (overdue now, and their penalty estimate until the
sweep records it). Nothing loops over orders in Python; 366 days are 366 rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain.report import rules
from app.domain.report.rules import Counts
from app.domain.report.schemas import DailyReport, DayFigures, RangeReport
from app.domain.store import zones
from app.domain.store.rules import effective_policy
from app.domain.store.service import get_visible
from app.models.report import FIGURES

_SUMS = ", ".join(f"sum(x.{c}) AS {c}" for c in FIGURES)
_COLUMNS = ", ".join(FIGURES)
# Days travel as day numbers: asyncpg sends date.min and date.max as -infinity and
# infinity, and a date parsed from text is not folded into a constant (date_in is stable).
_EPOCH = date(2000, 1, 1)
_START = "(DATE '2000-01-01' + CAST(:start AS int))"
_END = "(DATE '2000-01-01' + CAST(:end AS int))"
_RANGE = sa.text(
    f"""
    WITH b AS (
        SELECT ({_START}::timestamp AT TIME ZONE :tz) AS lo,
               (({_END} + 1)::timestamp AT TIME ZONE :tz) AS hi
    ), r AS (
        SELECT x.day, {_SUMS}
          FROM (SELECT day, {_COLUMNS} FROM report_days
                 WHERE store_id = :store_id AND day BETWEEN {_START} AND {_END}
                UNION ALL
                SELECT day, {_COLUMNS} FROM report_day_deltas
                 WHERE store_id = :store_id AND day BETWEEN {_START} AND {_END}) AS x
         GROUP BY x.day
    ), live AS (
        -- Awaiting orders past their deadline: overdue on the deadline's day (ix_orders_board).
        SELECT (o.dispatch_deadline AT TIME ZONE :tz)::date AS day, count(*) AS overdue,
               sum(CASE WHEN o.penalty <> 0 THEN 0
                        ELSE round(least(greatest(CAST(:rate AS numeric) * o.total,
                                                  CAST(:lo AS numeric)),
                                         CAST(:hi AS numeric)), 2) END) AS penalties
          FROM orders o, b
         WHERE o.store_id = :store_id AND o.status = 'awaiting_shipment'
           AND o.dispatch_deadline >= b.lo AND o.dispatch_deadline < b.hi
           AND o.dispatch_deadline < :now
         GROUP BY 1
    )
    SELECT d.day, coalesce(r.placed, 0)::bigint, coalesce(r.paid, 0)::bigint,
           coalesce(r.gmv, 0), coalesce(r.buyers, 0)::bigint, coalesce(t.visitors, 0),
           coalesce(t.ad_spend, 0), coalesce(r.shipped, 0)::bigint,
           coalesce(r.shipped_on_time, 0)::bigint,
           (coalesce(r.overdue, 0) + coalesce(l.overdue, 0))::bigint,
           coalesce(r.penalties, 0) + coalesce(l.penalties, 0),
           coalesce(r.refunds, 0)::bigint, coalesce(r.refund_amount, 0),
           coalesce(r.tickets_opened, 0)::bigint, coalesce(r.tickets_resolved, 0)::bigint,
           coalesce(r.tickets_resolved_in_sla, 0)::bigint, g.sales_target
      FROM generate_series({_START}::timestamp, {_END}::timestamp, interval '1 day') AS s(d)
     CROSS JOIN LATERAL (SELECT s.d::date AS day) AS d
      LEFT JOIN r ON r.day = d.day
      LEFT JOIN live l ON l.day = d.day
      LEFT JOIN store_traffic t ON t.store_id = :store_id AND t.day = d.day
      LEFT JOIN store_targets g
             ON g.store_id = :store_id AND g.month = date_trunc('month', d.day)::date
     ORDER BY d.day
    """
)


def _counts(row: Any) -> Counts:
    """A day's row: the figures in :class:`Counts` order, then the month's target."""
    day: date = row[0]
    return Counts(
        placed=row[1],
        paid=row[2],
        gmv=row[3],
        buyers=row[4],
        visitors=row[5],
        ad_spend=row[6],
        shipped=row[7],
        shipped_on_time=row[8],
        overdue=row[9],
        penalties=row[10],
        refunds=row[11],
        refund_amount=row[12],
        tickets_opened=row[13],
        tickets_resolved=row[14],
        tickets_resolved_in_sla=row[15],
        target=rules.daily_target(row[16], day),
    )


async def _days(
    session: AsyncSession,
    principal: Principal,
    store_id: int,
    start: date,
    end: date,
    now: datetime,
) -> tuple[str, list[tuple[date, Counts]]]:
    """The store's zone name and the counts of every day from ``start`` to ``end``."""
    store = await get_visible(session, principal, store_id)
    penalty = effective_policy(store.platform, store.dispatch_policy).late_penalty
    rows = await session.execute(
        _RANGE,
        {
            "store_id": store_id,
            "start": (start - _EPOCH).days,
            "end": (end - _EPOCH).days,
            "tz": store.timezone,
            "now": now,
            "rate": penalty.rate,
            "lo": penalty.min,
            "hi": penalty.max,
        },
    )
    return store.timezone, [(r[0], _counts(r)) for r in rows]


async def daily(
    session: AsyncSession, principal: Principal, store_id: int, day: date | None, now: datetime
) -> DailyReport:
    """Every figure of one local day of a store (default: the store's today)."""
    if day is None:
        store = await get_visible(session, principal, store_id)
        day = now.astimezone(zones.zone(store.timezone)).date()
    tz, days = await _days(session, principal, store_id, day, day, now)
    ((_, counts),) = days
    figures = DayFigures.of(day.isoformat(), rules.figures(counts))
    return DailyReport(store_id=store_id, timezone=tz, **figures.model_dump())


async def date_range(
    session: AsyncSession,
    principal: Principal,
    store_id: int,
    start: date,
    end: date,
    now: datetime,
) -> RangeReport:
    """Every local day from ``start`` to ``end`` (at most 366) and their totals."""
    rules.check_range(start, end)
    tz, days = await _days(session, principal, store_id, start, end, now)
    return RangeReport(
        store_id=store_id,
        timezone=tz,
        from_=start,
        to=end,
        days=[DayFigures.of(d.isoformat(), rules.figures(c)) for d, c in days],
        totals=DayFigures.of("total", rules.figures(rules.total([c for _, c in days]))),
    )
