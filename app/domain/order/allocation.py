"""Orders follow their reservations: backorders filled, stocktake shortfalls taken back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.events import service as events
from app.domain.inventory.hooks import AllocationChange
from app.domain.order import rules
from app.domain.order.intake import parse_line_ref
from app.domain.order.rules import Allocation


async def follow(session: AsyncSession, changes: Sequence[AllocationChange]) -> None:
    """Copy reserved quantities to order lines, recompute allocation, emit ``order.allocated``."""
    per_order: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for change in changes:
        parsed = parse_line_ref(change.line_ref)
        if parsed is not None:
            per_order[parsed[0]].append((parsed[1], change.reserved))
    for order_id in sorted(per_order):
        updates = per_order[order_id]
        await session.execute(
            sa.text(
                "UPDATE order_lines l SET reserved = v.reserved FROM unnest("
                "CAST(:nos AS int[]), CAST(:reserved AS int[])) AS v(line_no, reserved) "
                "WHERE l.order_id = :id AND l.line_no = v.line_no"
            ),
            {"id": order_id, "nos": [u[0] for u in updates], "reserved": [u[1] for u in updates]},
        )
        lines = (
            await session.execute(
                sa.text(
                    "SELECT quantity, reserved FROM order_lines WHERE order_id = :id "
                    "ORDER BY line_no"
                ),
                {"id": order_id},
            )
        ).all()
        allocation = rules.allocation([r.quantity for r in lines], [r.reserved for r in lines])
        row = (
            await session.execute(
                sa.text(
                    "UPDATE orders o SET allocation = :a, version = o.version + 1, "
                    "updated_at = now() FROM (SELECT id, allocation AS before FROM orders "
                    "WHERE id = :id FOR UPDATE) b WHERE o.id = b.id "
                    "RETURNING o.store_id, o.external_id, b.before"
                ),
                {"a": allocation.value, "id": order_id},
            )
        ).one()
        if allocation == Allocation.FULL and row.before != Allocation.FULL:
            await events.append(
                session,
                "order.allocated",
                row.store_id,
                {"order_id": str(order_id), "external_id": row.external_id, "allocation": "full"},
            )
