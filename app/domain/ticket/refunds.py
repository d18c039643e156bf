"""Refunds on orders (DOMAIN.md §4): every refund write goes through :func:`record_refund`.

The sum refunded never exceeds the paid total: one conditional ``UPDATE`` adds the amount only
while ``refunded_amount + amount <= total`` (the row lock makes parallel refunds queue, and
PostgreSQL re-checks the condition on the row each one finds), and a CHECK backs it up.
The refund is counted in the daily report of the day it is made, and a full refund gives the
order's coupon uses and promotion budget back (its promotions' limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import RuleViolation
from app.domain.events import service as events
from app.domain.promotion import limits as promotion_limits
from app.domain.report import rollup

_ADD = sa.text(
    "UPDATE orders SET refunded_amount = refunded_amount + :amount, version = version + 1, "
    "updated_at = :at WHERE id = :id AND paid_at IS NOT NULL "
    "AND refunded_amount + :amount <= total "
    "RETURNING id, store_id, external_id, status, total, refunded_amount"
)
_STATE = sa.text("SELECT paid_at, total, refunded_amount FROM orders WHERE id = :id")


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund recorded on an order, with the order's totals after it."""

    order_id: int
    store_id: int
    status: str
    amount: Decimal
    refunded_amount: Decimal
    total: Decimal

    @property
    def is_full(self) -> bool:
        """Whether everything paid has now been refunded."""
        return self.refunded_amount >= self.total


async def record_refund(
    session: AsyncSession,
    order_id: int,
    amount: Decimal,
    at: datetime,
    *,
    ticket_id: int | None,
) -> Refund:
    """Add ``amount`` to the order's refunds and emit ``order.refunded``.

    ``422 order_not_paid`` on an unpaid order, ``422 refund_exceeds_paid`` when the amount is
    more than what is left of the paid total. Nothing is written then.
    """
    row = (await session.execute(_ADD, {"amount": amount, "at": at, "id": order_id})).one_or_none()
    if row is None:
        state = (await session.execute(_STATE, {"id": order_id})).one()
        field = {"loc": ["body", "refund_amount"], "type": "invalid"}
        if state.paid_at is None:
            raise RuleViolation(
                "order_not_paid",
                "The order has not been paid: there is nothing to refund.",
                errors=[{**field, "msg": "order not paid"}],
            )
        left = state.total - state.refunded_amount
        raise RuleViolation(
            "refund_exceeds_paid",
            f"Refund {amount:.2f} exceeds what is left of the paid amount ({left:.2f} of "
            f"{state.total:.2f}).",
            errors=[{**field, "msg": f"at most {left:.2f}"}],
            extra={"refundable": f"{left:.2f}"},
        )
    refund = Refund(
        order_id=row.id,
        store_id=row.store_id,
        status=row.status,
        amount=amount,
        refunded_amount=row.refunded_amount,
        total=row.total,
    )
    await events.append(
        session,
        "order.refunded",
        row.store_id,
        {
            "order_id": str(row.id),
            "external_id": row.external_id,
            "ticket_id": None if ticket_id is None else str(ticket_id),
            "amount": f"{amount:.2f}",
            "refunded_amount": f"{row.refunded_amount:.2f}",
            "total": f"{row.total:.2f}",
            "full": refund.is_full,
        },
    )
    await rollup.record_refund(session, row.store_id, at, amount)
    if refund.is_full:
        await promotion_limits.give_back(session, row.id)
    return refund
