"""The dispatch board and the pick list (API.md "Orders"; DOMAIN.md §2, §8).

**Counts** cover every awaiting order of the stores: 200,000 on a promotion day, too many
to classify per request (~30 ms). Triggers on ``orders`` (migration 0004) keep
``dispatch_board_counts``, a histogram of awaiting orders by 15-minute bin of the deadline
and of ``at_risk_at``, with short stock and recorded penalties. A bin wholly before ``now``
is overdue, a deadline bin after it with an at-risk bin before it is at risk; only the
orders of the bin holding ``now`` are classified one by one.

**Items** come in segments, each a short range scan of ``ix_orders_board`` (or of the small
``ix_orders_board_urgent``) in deadline order, LIMITed to what is still missing (DOMAIN.md
§2): overdue, then urgent, then all others, each by deadline then ``placed_at``; orders
without a deadline last within their group. Usually the first one or two segments fill the
page. The pick list pages through the same segments with a keyset cursor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.dispatch.schemas import (
    BoardCounts,
    DispatchBoard,
    PickLine,
    PickList,
    PickOrder,
    PickSku,
    ShipTo,
)
from app.domain.order.privacy import BuyerView, mask_address, mask_phone
from app.domain.order.read import policies, summary
from app.domain.order.rules import SHORT_URGENT_WITHIN
from app.domain.store import zones
from app.domain.store.rules import CENT, DispatchPolicy, effective_policy

# The bin width of dispatch_board_bin() (migration 0004); the SQL below spells it too.
BIN = timedelta(minutes=15)


@dataclass(frozen=True)
class PickPosition:
    """Where a pick-list page ended: the instant orders were classified at, the segment and
    the last order's sort key."""

    at: datetime
    segment: int
    deadline: datetime
    placed_at: datetime
    order_id: int


# One row per store: totals from the histogram, plus the orders of the current bin one by one.
# Bins before the store's earliest awaiting deadline hold no order (their rows sum to zero).
# "turning": orders due later whose at-risk instant falls in the current bin. "late": for a
# rate penalty, the overdue orders the sweep has not yet recorded a penalty on.
_COUNTS = sa.text(
    """
SELECT p.store_id, s.short, s.dated,
       s.overdue + e.overdue AS overdue,
       s.at_risk + e.at_risk + t.at_risk AS at_risk,
       s.penalty + e.penalty
         + CASE WHEN p.rate = 0 THEN s.unpenalized * round(least(greatest(0, p.lo), p.hi), 2)
                ELSE l.penalty END AS penalty
  FROM unnest(CAST(:ids AS bigint[]), CAST(:rates AS numeric[]),
              CAST(:mins AS numeric[]), CAST(:maxs AS numeric[])) AS p(store_id, rate, lo, hi)
 CROSS JOIN LATERAL (SELECT dispatch_board_bin(CAST(:now AS timestamptz)) AS h) AS b
 CROSS JOIN LATERAL (
    SELECT coalesce(sum(c.n) FILTER (WHERE c.short), 0) AS short,
           coalesce(sum(c.n) FILTER (WHERE c.deadline_bin < 'infinity'), 0) AS dated,
           coalesce(sum(c.n) FILTER (WHERE c.deadline_bin < b.h), 0) AS overdue,
           coalesce(sum(c.n) FILTER (WHERE c.deadline_bin > b.h AND c.deadline_bin < 'infinity'
                                       AND c.at_risk_bin < b.h), 0) AS at_risk,
           coalesce(sum(c.penalty) FILTER (WHERE c.deadline_bin < b.h), 0) AS penalty,
           coalesce(sum(c.unpenalized) FILTER (WHERE c.deadline_bin < b.h), 0) AS unpenalized
      FROM dispatch_board_counts c
     WHERE c.store_id = p.store_id
       AND c.deadline_bin >= dispatch_board_bin((
               SELECT min(o.dispatch_deadline) FROM orders o
                WHERE o.store_id = p.store_id AND o.status = 'awaiting_shipment'))
 ) AS s
 CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE o.dispatch_deadline < :now) AS overdue,
           count(*) FILTER (WHERE o.dispatch_deadline >= :now
                              AND o.at_risk_at <= :now) AS at_risk,
           coalesce(sum(CASE WHEN o.penalty > 0 THEN o.penalty
                             ELSE round(least(greatest(p.rate * o.total, p.lo), p.hi), 2) END)
                        FILTER (WHERE o.dispatch_deadline < :now), 0) AS penalty
      FROM orders o
     WHERE o.store_id = p.store_id AND o.status = 'awaiting_shipment'
       AND o.dispatch_deadline >= b.h AND o.dispatch_deadline < b.h + interval '15 minutes'
 ) AS e
 CROSS JOIN LATERAL (
    SELECT count(*) AS at_risk
      FROM (SELECT DISTINCT c.deadline_bin FROM dispatch_board_counts c
             WHERE c.store_id = p.store_id AND c.at_risk_bin = b.h AND c.deadline_bin > b.h
               AND c.deadline_bin < 'infinity') AS d
      JOIN orders o ON o.store_id = p.store_id AND o.status = 'awaiting_shipment'
       AND o.dispatch_deadline >= d.deadline_bin
       AND o.dispatch_deadline < d.deadline_bin + interval '15 minutes'
       AND o.at_risk_at >= b.h AND o.at_risk_at <= :now
 ) AS t
 CROSS JOIN LATERAL (
    SELECT coalesce(sum(round(least(greatest(p.rate * o.total, p.lo), p.hi), 2)), 0) AS penalty
      FROM (SELECT c.deadline_bin FROM dispatch_board_counts c
             WHERE p.rate <> 0 AND c.store_id = p.store_id AND c.deadline_bin < b.h
             GROUP BY c.deadline_bin HAVING sum(c.unpenalized) > 0) AS d
      JOIN orders o ON o.store_id = p.store_id AND o.status = 'awaiting_shipment'
       AND o.dispatch_deadline >= d.deadline_bin
       AND o.dispatch_deadline < d.deadline_bin + interval '15 minutes'
       AND o.penalty = 0
 ) AS l
"""
)

# Groups of DOMAIN.md §2 on stored columns: overdue after the deadline; a deadline-less order
# (group not formed) last within its group. ``risk`` is a label, not a sort key.
_OVERDUE = "o.dispatch_deadline < :now"
_DUE_LATER = "o.dispatch_deadline >= :now"
_UNDATED = "o.dispatch_deadline IS NULL"
# Urgent: a shipping chase (stored flag) or short stock within 12 h of the deadline
# (rules.is_short_near_deadline). The first conjunct is ix_orders_board_urgent's predicate.
_URGENT = "(o.urgent OR o.allocation <> 'full') AND (o.urgent OR o.dispatch_deadline <= :soon)"
_NOT_URGENT = (
    "NOT o.urgent AND (o.allocation = 'full' OR o.dispatch_deadline IS NULL "
    "OR o.dispatch_deadline > :soon)"
)
# Pickable: can ship now (lifecycle.ship): allocated, no hold, no refund, group formed.
_PICKABLE = (
    "o.allocation = 'full' AND NOT o.on_hold AND NOT o.refund_pending "
    "AND NOT o.platform_refund_pending AND o.dispatch_deadline IS NOT NULL"
)
_PICK_URGENT = "(o.urgent OR o.allocation <> 'full') AND o.urgent"
_PICK_NOT_URGENT = "NOT o.urgent"
_COLUMNS = (
    "o.id, o.store_id, o.external_id, o.status, o.allocation, o.placed_at, o.clock_started_at, "
    "o.dispatch_deadline, o.at_risk_at, o.total, o.penalty, o.on_hold, "
    "(o.refund_pending OR o.platform_refund_pending) AS refund_pending, "
    "o.urgent, o.shipped_at, o.picked_up_at, o.shipped_late, o.tracking_pattern_mismatch, "
    "o.fake_shipment_risk"
)
# Pick-list pages resume after the last order of a segment (its deadline, placed_at, id); the
# first conjunct bounds the index range, the row comparison breaks ties.
_AFTER = (
    " AND o.dispatch_deadline >= :after_deadline AND (o.dispatch_deadline, o.placed_at, o.id) "
    "> (:after_deadline, :after_placed, :after_id)"
)
_SKU_TOTALS = sa.text(
    "SELECT l.sku_id, s.sku_code, s.title, s.barcode, sum(l.quantity) AS quantity "
    "FROM order_lines l JOIN skus s ON s.id = l.sku_id "
    "WHERE l.order_id = ANY(:ids) "
    "GROUP BY l.sku_id, s.sku_code, s.title, s.barcode ORDER BY s.sku_code, l.sku_id"
)
_PICK_LINES = sa.text(
    "SELECT l.order_id, l.line_no, l.sku_id, s.sku_code, s.title, s.barcode, l.quantity "
    "FROM order_lines l JOIN skus s ON s.id = l.sku_id "
    "WHERE l.order_id = ANY(:ids) ORDER BY l.order_id, l.line_no"
)


def _segment(condition: str, columns: str = _COLUMNS, after: str = "") -> sa.TextClause:
    """Awaiting orders of one segment, per store by (deadline, placed_at, id), merged.

    Each store's part is a range scan of ``ix_orders_board`` (or ``ix_orders_board_urgent``)
    in deadline order; an incremental sort breaks deadline ties by ``placed_at``.
    """
    return sa.text(
        "SELECT x.* FROM unnest(CAST(:ids AS bigint[])) AS s(id) CROSS JOIN LATERAL ("
        f"SELECT {columns} FROM orders o "
        f"WHERE o.store_id = s.id AND o.status = 'awaiting_shipment' AND {condition}{after} "
        "ORDER BY o.dispatch_deadline, o.placed_at, o.id LIMIT :n) AS x "
        "ORDER BY x.dispatch_deadline, x.placed_at, x.id LIMIT :n"
    )


# DOMAIN.md §2: overdue first, then urgent, then all others; each segment runs only while the
# page is not full. Within a group, deadline-less orders (no clock yet) come last.
BOARD_SEGMENTS = (
    _segment(_OVERDUE),
    _segment(f"{_DUE_LATER} AND {_URGENT}"),
    _segment(f"{_UNDATED} AND {_URGENT}"),
    _segment(f"{_DUE_LATER} AND {_NOT_URGENT}"),
    _segment(f"{_UNDATED} AND {_NOT_URGENT}"),
)
_PICK_GROUPS = (
    _OVERDUE,
    f"{_DUE_LATER} AND {_PICK_URGENT}",
    f"{_DUE_LATER} AND {_PICK_NOT_URGENT}",
)
_PICK_COLUMNS = f"{_COLUMNS}, o.buyer"
PICK_SEGMENTS = tuple(_segment(f"{g} AND {_PICKABLE}", _PICK_COLUMNS) for g in _PICK_GROUPS)
PICK_RESUME = tuple(_segment(f"{g} AND {_PICKABLE}", _PICK_COLUMNS, _AFTER) for g in _PICK_GROUPS)


async def _open(session: AsyncSession, store_ids: list[int] | None) -> dict[int, DispatchPolicy]:
    """Set this transaction up for the board's statements; the policies of the stores in scope."""
    # The statements below run in a millisecond or two. Planning them anew each time cost
    # about as much (their plans do not depend on the values), and their cost estimates can
    # pass jit_above_cost, where compiling would take tens of milliseconds.
    await session.execute(
        sa.text(
            "SELECT set_config('plan_cache_mode', 'force_generic_plan', true), "
            "set_config('jit', 'off', true)"
        )
    )
    if store_ids is not None:
        return await policies(session, store_ids)
    rows = await session.execute(
        sa.text("SELECT id, platform, dispatch_policy, timezone FROM stores")
    )
    out = {}
    for r in rows:
        zones.remember(session, r.id, r.timezone)
        out[r.id] = effective_policy(r.platform, r.dispatch_policy)
    return out


async def _next_orders(
    session: AsyncSession,
    ids: list[int],
    now: datetime,
    limit: int,
    segments: tuple[sa.TextClause, ...],
    after: PickPosition | None = None,
) -> list[SimpleNamespace]:
    """The first ``limit`` orders over the segments in order, as plain attribute objects.

    Each carries ``segment``, the index of the segment it came from. ``after`` resumes in
    its segment (with the :data:`PICK_RESUME` statement) after its order.
    """
    rows: list[SimpleNamespace] = []
    seen: set[int] = set()
    params: dict[str, Any] = {"ids": ids, "now": now, "soon": now + SHORT_URGENT_WITHIN}
    first = 0 if after is None else after.segment
    for index in range(first, len(segments)):
        if len(rows) >= limit or not ids:
            break
        statement = segments[index]
        extra: dict[str, Any] = {}
        if after is not None and index == after.segment:
            statement = PICK_RESUME[index]
            extra = {
                "after_deadline": after.deadline,
                "after_placed": after.placed_at,
                "after_id": after.order_id,
            }
        result = await session.execute(statement, {**params, **extra, "n": limit - len(rows)})
        # Each segment is its own statement: an order a concurrent write moves between two
        # of them is listed once. (Attribute reads on a Row cost ~0.5 µs; summary() makes 16.)
        for row in result.mappings():
            if row["id"] not in seen:
                seen.add(row["id"])
                rows.append(SimpleNamespace(**row, segment=index))
    return rows


async def counts(
    session: AsyncSession, pols: dict[int, DispatchPolicy], now: datetime
) -> tuple[BoardCounts, Decimal]:
    """Risk counts and accrued penalty over every awaiting order of the stores."""
    ids = sorted(pols)
    totals = {"on_track": 0, "at_risk": 0, "overdue": 0, "short": 0}
    accrued = Decimal("0.00")
    if not ids:
        return BoardCounts(**totals), accrued
    rows = await session.execute(
        _COUNTS,
        {
            "ids": ids,
            "rates": [pols[i].late_penalty.rate for i in ids],
            "mins": [pols[i].late_penalty.min for i in ids],
            "maxs": [pols[i].late_penalty.max for i in ids],
            "now": now,
        },
    )
    for r in rows:
        totals["overdue"] += r.overdue
        totals["at_risk"] += r.at_risk
        totals["on_track"] += r.dated - r.overdue - r.at_risk
        totals["short"] += r.short
        accrued += r.penalty
    return BoardCounts(**totals), accrued.quantize(CENT)


async def board(
    session: AsyncSession, store_ids: list[int] | None, now: datetime, limit: int
) -> DispatchBoard:
    """Awaiting-shipment orders, most urgent first, with counts and accrued penalty."""
    pols = await _open(session, store_ids)
    totals, accrued = await counts(session, pols, now)
    rows = await _next_orders(session, sorted(pols), now, limit, BOARD_SEGMENTS)
    tzs = await zones.zones_of(session, pols)
    return DispatchBoard(
        counts=totals,
        penalty_accrued=accrued,
        items=[summary(r, pols[r.store_id], now, tzs[r.store_id]) for r in rows],
    )


def _ship_to(buyer: dict[str, Any], view: BuyerView) -> ShipTo:
    ship_to = ShipTo(**buyer)
    if view is not BuyerView.MASKED:
        return ship_to
    return ship_to.model_copy(
        update={"phone": mask_phone(ship_to.phone), "address": mask_address(ship_to.address)}
    )


async def pick_list(
    session: AsyncSession,
    store_ids: list[int] | None,
    now: datetime,
    limit: int,
    after: PickPosition | None = None,
    *,
    view: BuyerView = BuyerView.FULL,
) -> tuple[PickList, PickPosition | None]:
    """The next orders to pick (can ship now) in board order, with lines, address, SKU totals.

    ``view`` is how the reader may see buyers (an operator key reads the list masked).

    Pages after the first classify orders at the first page's instant (``after.at``), so an
    order that falls due while a packer pages is neither listed twice nor skipped. Returns
    the page and the position to resume after, if there is more.
    """
    pols = await _open(session, store_ids)
    at = now if after is None else after.at
    rows = await _next_orders(session, sorted(pols), at, limit + 1, PICK_SEGMENTS, after)
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        following = PickPosition(at, last.segment, last.dispatch_deadline, last.placed_at, last.id)
    skus: Sequence[sa.Row[Any]] = []
    lines: dict[int, list[PickLine]] = defaultdict(list)
    if rows:
        order_ids = [r.id for r in rows]
        skus = (await session.execute(_SKU_TOTALS, {"ids": order_ids})).all()
        for line in await session.execute(_PICK_LINES, {"ids": order_ids}):
            lines[line.order_id].append(
                PickLine(
                    line_no=line.line_no,
                    sku_id=line.sku_id,
                    sku_code=line.sku_code,
                    title=line.title,
                    barcode=line.barcode,
                    quantity=line.quantity,
                )
            )
    tzs = await zones.zones_of(session, pols)
    page = PickList(
        orders=[
            PickOrder(
                **summary(r, pols[r.store_id], now, tzs[r.store_id]).model_dump(),
                ship_to=_ship_to(r.buyer, view),
                items=lines[r.id],
            )
            for r in rows
        ],
        skus=[
            PickSku(
                sku_id=s.sku_id,
                sku_code=s.sku_code,
                title=s.title,
                barcode=s.barcode,
                quantity=s.quantity,
            )
            for s in skus
        ],
    )
    return page, following
