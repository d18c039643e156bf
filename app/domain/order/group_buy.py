"""The group-buy (拼团) lifecycle (DOMAIN.md §2): a paid group order has no dispatch clock
until its group forms; a failed group cancels the order and releases its stock (the platform
refunds failed groups itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain.dispatch import rules as dispatch
from app.domain.errors import Conflict, RuleViolation
from app.domain.events import service as events
from app.domain.order.intake import dispatch_clock
from app.domain.order.lifecycle import _event_data, _update, cancel_locked, lock
from app.domain.order.read import policies
from app.domain.order.rules import Status
from app.domain.store import zones

FAILED_REASON = "group_failed"
# A group forms or fails before the order ships; unpaid orders may learn it before payment.
_OPEN = (Status.PENDING_PAYMENT.value, Status.AWAITING_SHIPMENT.value)


def _require_open_group(row: Any, action: str) -> None:
    if not row.group_buy:
        raise Conflict("invalid_transition", "The order is not a group buy.")
    if row.status not in _OPEN:
        raise Conflict(
            "invalid_transition", f"A group cannot be {action} for an order that is {row.status}."
        )


async def formed(
    session: AsyncSession,
    principal: Principal,
    order_id: int,
    formed_at: datetime,
    now: datetime,
    if_match: int | None,
) -> None:
    """The group formed: the clock starts at ``max(paid_at, formed_at)`` (``order.group_formed``).

    The same ``formed_at`` again changes nothing (a retry); another one is a conflict.
    """
    row = await lock(session, principal, order_id, if_match)
    _require_open_group(row, "formed")
    if row.group_formed_at is not None:
        if row.group_formed_at == formed_at:
            return
        tz = await zones.zone_of(session, row.store_id)
        raise Conflict(
            "invalid_transition",
            f"The group already formed at {zones.render(row.group_formed_at, tz)}.",
        )
    if formed_at > now + dispatch.CLOCK_SKEW:
        raise RuleViolation(
            "invalid_formed_at",
            "formed_at is more than 5 minutes in the future; check the sender's clock.",
            errors=[{"loc": ["body", "formed_at"], "msg": "in the future", "type": "invalid"}],
        )
    policy = (await policies(session, [row.store_id]))[row.store_id]
    clock = dispatch_clock(row.paid_at, True, formed_at, row.promised_ship_by, policy)
    await _update(
        session,
        row,
        now,
        group_formed_at=formed_at,
        clock_started_at=clock.started_at,
        dispatch_deadline=clock.deadline,
        at_risk_at=clock.at_risk_at,
    )
    if clock.deadline is not None:
        # Backorders are served by deadline: the order's waiting lines learn theirs now.
        await session.execute(
            sa.text(
                "UPDATE reservations SET deadline = :d WHERE order_id = :id AND status = 'open'"
            ),
            {"d": clock.deadline, "id": row.id},
        )
    await events.append(
        session,
        "order.group_formed",
        row.store_id,
        _event_data(
            row,
            group_id=row.group_id,
            formed_at=formed_at,
            clock_started_at=clock.started_at,
            dispatch_deadline=clock.deadline,
        ),
    )


async def failed(
    session: AsyncSession,
    principal: Principal,
    order_id: int,
    reason: str | None,
    now: datetime,
    if_match: int | None,
) -> None:
    """The group failed: the order is cancelled and its stock released (``order.cancelled``)."""
    row = await lock(session, principal, order_id, if_match)
    _require_open_group(row, "failed")
    if row.group_formed_at is not None:
        raise Conflict("invalid_transition", "The group already formed; cancel the order instead.")
    await cancel_locked(
        session, row, reason or FAILED_REASON, now, group_id=row.group_id, group_failed=True
    )
