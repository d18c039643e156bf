"""Pure order rules: transitions, allocation, totals and the time-based read model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from app.domain.dispatch import rules as dispatch
from app.domain.dispatch.rules import Risk
from app.domain.store.rules import DispatchPolicy


class Status(StrEnum):
    """Order states (DOMAIN.md §2)."""

    PENDING_PAYMENT = "pending_payment"
    AWAITING_SHIPMENT = "awaiting_shipment"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Allocation(StrEnum):
    """How much of the order's stock is reserved."""

    FULL = "full"
    PARTIAL = "partial"
    SHORT = "short"


class Flag(StrEnum):
    """Flags of the order read model."""

    STOCK_SHORT = "stock_short"
    ON_HOLD = "on_hold"
    REFUND_PENDING = "refund_pending"
    URGENT = "urgent"
    FAKE_SHIPMENT_RISK = "fake_shipment_risk"
    TRACKING_PATTERN_MISMATCH = "tracking_pattern_mismatch"
    SHIPPED_LATE = "shipped_late"


# Every allowed transition; anything else is 409 invalid_transition.
TRANSITIONS: dict[str, frozenset[Status]] = {
    "pay": frozenset({Status.PENDING_PAYMENT}),
    "ship": frozenset({Status.AWAITING_SHIPMENT}),
    "cancel": frozenset({Status.PENDING_PAYMENT, Status.AWAITING_SHIPMENT}),
    "deliver": frozenset({Status.SHIPPED}),
    "complete": frozenset({Status.DELIVERED, Status.SHIPPED}),
    "hold": frozenset({Status.PENDING_PAYMENT, Status.AWAITING_SHIPMENT}),
    "release": frozenset({Status.PENDING_PAYMENT, Status.AWAITING_SHIPMENT}),
    "track": frozenset({Status.SHIPPED, Status.DELIVERED}),
}

# A short allocation this close to the deadline makes the order urgent (DOMAIN.md §2).
SHORT_URGENT_WITHIN = timedelta(hours=12)
CENT = Decimal("0.01")


def can(action: str, status: str) -> bool:
    """Whether ``action`` is allowed from ``status``."""
    return Status(status) in TRANSITIONS[action]


def allocation(requested: list[int], reserved: list[int]) -> Allocation:
    """``full`` when every line is reserved, ``short`` when nothing is, else ``partial``."""
    if all(r >= q for q, r in zip(requested, reserved, strict=True)):
        return Allocation.FULL
    if sum(reserved) == 0:
        return Allocation.SHORT
    return Allocation.PARTIAL


@dataclass(frozen=True, slots=True)
class Totals:
    """Server-computed order totals."""

    subtotal: Decimal
    discount: Decimal
    shipping_fee: Decimal
    total: Decimal


def totals(lines: list[tuple[int, Decimal]], discount: Decimal, shipping_fee: Decimal) -> Totals:
    """``total = Σ quantity × unit_price − discount + shipping_fee``."""
    subtotal = CENT * 0
    for quantity, price in lines:
        subtotal += price * quantity
    subtotal = subtotal.quantize(CENT)
    return Totals(subtotal, discount, shipping_fee, subtotal - discount + shipping_fee)


@dataclass(frozen=True, slots=True)
class TimeView:
    """What an order shows at ``now``: computed at read time, never stale."""

    risk: Risk | None
    seconds_left: int | None
    penalty: Decimal
    flags: list[Flag]


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """The stored facts the read model is computed from."""

    status: str
    allocation: str
    clock_started_at: datetime | None
    dispatch_deadline: datetime | None
    at_risk_at: datetime | None
    total: Decimal
    penalty: Decimal
    on_hold: bool
    refund_pending: bool
    urgent: bool
    shipped_at: datetime | None
    picked_up_at: datetime | None
    shipped_late: bool
    tracking_pattern_mismatch: bool
    fake_shipment_risk: bool


def view(o: OrderFacts, policy: DispatchPolicy, now: datetime) -> TimeView:
    """Risk, seconds left, accrued penalty and flags of an order at ``now``."""
    flags: list[Flag] = []
    awaiting = o.status == Status.AWAITING_SHIPMENT
    open_ = o.status in (Status.PENDING_PAYMENT, Status.AWAITING_SHIPMENT)
    risk: Risk | None = None
    left: int | None = None
    penalty = o.penalty
    if awaiting and o.clock_started_at is not None and o.dispatch_deadline is not None:
        # The at-risk instant stored at payment keeps reads, board and sweeps in agreement
        # even if the store's policy changes later.
        risk = dispatch.risk_at(
            o.dispatch_deadline,
            o.at_risk_at or dispatch.at_risk_from(o.clock_started_at, o.dispatch_deadline, policy),
            now,
        )
        left = dispatch.seconds_left(o.dispatch_deadline, now)
        if penalty == 0:
            penalty = dispatch.accrued_penalty(
                o.dispatch_deadline, now, policy.late_penalty, o.total
            )
    short = open_ and o.allocation != Allocation.FULL
    if short:
        flags.append(Flag.STOCK_SHORT)
    if o.on_hold:
        flags.append(Flag.ON_HOLD)
    if o.refund_pending:
        flags.append(Flag.REFUND_PENDING)
    if open_ and (o.urgent or is_short_near_deadline(short, o.dispatch_deadline, now)):
        flags.append(Flag.URGENT)
    if o.fake_shipment_risk or (
        o.status == Status.SHIPPED
        and o.shipped_at is not None
        and dispatch.is_fake_shipment_risk(
            o.shipped_at, o.picked_up_at, now, policy.pickup_grace_hours
        )
    ):
        flags.append(Flag.FAKE_SHIPMENT_RISK)
    if o.tracking_pattern_mismatch:
        flags.append(Flag.TRACKING_PATTERN_MISMATCH)
    if o.shipped_late:
        flags.append(Flag.SHIPPED_LATE)
    return TimeView(risk=risk, seconds_left=left, penalty=penalty, flags=flags)


def is_short_near_deadline(short: bool, deadline: datetime | None, now: datetime) -> bool:
    """A short allocation within :data:`SHORT_URGENT_WITHIN` of the deadline is urgent."""
    return short and deadline is not None and deadline - now <= SHORT_URGENT_WITHIN


def dedupe_key(order_id: int, kind: str) -> str:
    """The dedupe key of an order event emitted once (``order:<id>:overdue`` …)."""
    return f"order:{order_id}:{kind}"
