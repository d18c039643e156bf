"""Entry points that put after-sales figures into the daily report rollups (docs/reports.md).

Orders need none of these: triggers on ``orders`` (migration 0010) keep their figures. Refunds
and tickets call these in the transaction that makes the change, so a figure is counted if
and only if the change commits. Each call appends one row to ``report_day_deltas`` (no lock,
no read of other rows); the day is the store's local day of ``at``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

_RECORD = (
    "INSERT INTO report_day_deltas (store_id, day, {columns}) "
    "SELECT s.id, (CAST(:at AS timestamptz) AT TIME ZONE s.timezone)::date, {values} "
    "FROM stores s WHERE s.id = :store_id"
)
_REFUND = sa.text(_RECORD.format(columns="refunds, refund_amount", values="1, :amount"))
_OPENED = sa.text(_RECORD.format(columns="tickets_opened", values="1"))
_RESOLVED = sa.text(
    _RECORD.format(
        columns="tickets_resolved, tickets_resolved_in_sla", values="1, CAST(:in_sla AS int)"
    )
)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a report instant needs a time zone")
    return at


async def record_refund(
    session: AsyncSession, store_id: int, at: datetime, amount: Decimal
) -> None:
    """A refund of ``amount`` made at ``at``: counted on that day (refunds, refund_amount),
    whatever day the order was paid."""
    await session.execute(
        _REFUND, {"store_id": store_id, "at": _aware(at), "amount": Decimal(amount)}
    )


async def record_ticket_opened(session: AsyncSession, store_id: int, at: datetime) -> None:
    """A ticket opened at ``at`` (its ``opened_at``): tickets_opened on that day."""
    await session.execute(_OPENED, {"store_id": store_id, "at": _aware(at)})


async def record_ticket_resolved(
    session: AsyncSession, store_id: int, at: datetime, within_sla: bool
) -> None:
    """A ticket resolved at ``at``: tickets_resolved on that day, and the share resolved
    within SLA (``within_sla``: resolved by its resolution due time). A ticket reopened and
    resolved again counts again on the day of each resolution."""
    await session.execute(
        _RESOLVED, {"store_id": store_id, "at": _aware(at), "in_sla": bool(within_sla)}
    )
