"""Order transitions (DOMAIN.md §2): pay, ship, cancel, tracking, complete, hold, release."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import dberrors
from app.auth import Principal
from app.domain.dispatch import rules as dispatch
from app.domain.errors import (
    Conflict,
    DomainError,
    ItemError,
    PreconditionFailed,
    RuleViolation,
    not_found,
)
from app.domain.events import service as events
from app.domain.inventory import reservations
from app.domain.order import rules
from app.domain.order.intake import dispatch_clock
from app.domain.order.read import policies
from app.domain.order.rules import Allocation, Status
from app.domain.order.schemas import PayIn, ShipBulkItem, ShipIn, TrackingIn
from app.domain.promotion import limits as promotion_limits
from app.domain.store import zones
from app.models import Order

_orders = Order.__table__  # type: ignore[attr-defined]

_LOCK = sa.text("SELECT * FROM orders WHERE id = :id FOR UPDATE")


async def lock(
    session: AsyncSession, principal: Principal, order_id: int, if_match: int | None = None
) -> Any:
    """The order row, locked; 404 outside the key's scope, 412 on a stale ``If-Match``."""
    row = (await session.execute(_LOCK, {"id": order_id})).one_or_none()
    if row is None or not principal.sees_store(row.store_id):
        raise not_found("order", order_id)
    _check_version(row, if_match)
    return row


def _check_version(row: Any, if_match: int | None) -> None:
    if if_match is not None and if_match != row.version:
        raise PreconditionFailed(
            "version_mismatch", f"Order is at version {row.version}, not {if_match}."
        )


def _require(action: str, row: Any) -> None:
    if not rules.can(action, row.status):
        raise Conflict("invalid_transition", f"Cannot {action} an order that is {row.status}.")


async def _update(session: AsyncSession, row: Any, now: datetime, **values: Any) -> None:
    await session.execute(
        sa.update(_orders)
        .where(_orders.c.id == row.id)
        .values(**values, version=row.version + 1, updated_at=now)
    )


def _event_data(row: Any, **extra: Any) -> dict[str, Any]:
    return {"order_id": str(row.id), "external_id": row.external_id, **extra}


def completed_key(order_id: int) -> str:
    """The dedupe key of ``order.completed``: by hand or by the sweep, it is emitted once."""
    return rules.dedupe_key(order_id, "completed")


def completed_data(
    order_id: int, external_id: str, completed_at: datetime, *, auto: bool
) -> dict[str, Any]:
    """The data of ``order.completed``; ``auto`` when the sweep completed it (DOMAIN.md §2)."""
    return {
        "order_id": str(order_id),
        "external_id": external_id,
        "completed_at": completed_at,
        "auto": auto,
    }


async def pay(
    session: AsyncSession,
    principal: Principal,
    order_id: int,
    data: PayIn,
    now: datetime,
    if_match: int | None,
) -> None:
    """Record payment: the dispatch clock starts (or waits for the group to form)."""
    row = await lock(session, principal, order_id, if_match)
    _require("pay", row)
    if data.paid_at < row.placed_at:
        raise RuleViolation(
            "invalid_paid_at",
            "paid_at must not be before placed_at.",
            errors=[{"loc": ["body", "paid_at"], "msg": "before placed_at", "type": "invalid"}],
        )
    policy = (await policies(session, [row.store_id]))[row.store_id]
    formed = data.group_formed_at or row.group_formed_at
    clock = dispatch_clock(data.paid_at, row.group_buy, formed, row.promised_ship_by, policy)
    await _update(
        session,
        row,
        now,
        status=Status.AWAITING_SHIPMENT.value,
        paid_at=data.paid_at,
        group_formed_at=formed,
        clock_started_at=clock.started_at,
        dispatch_deadline=clock.deadline,
        at_risk_at=clock.at_risk_at,
    )
    # Backorders are served by deadline: the order's waiting lines learn theirs now.
    await session.execute(
        sa.text("UPDATE reservations SET deadline = :d WHERE order_id = :id AND status = 'open'"),
        {"d": clock.deadline, "id": row.id},
    )
    await events.append(session, "order.paid", row.store_id, _event_data(row, paid_at=data.paid_at))


async def ship(
    session: AsyncSession,
    principal: Principal,
    order_id: int,
    data: ShipIn,
    now: datetime,
    if_match: int | None = None,
) -> None:
    """Ship a fully allocated order: reservations become ``ship`` movements.

    The same shipment again (carrier and tracking number) to an order it shipped changes
    nothing and is no error: a phone that lost the first answer retries safely.
    """
    row = await lock(session, principal, order_id)
    if _is_same_shipment(row, data):
        return  # before If-Match: the retry carries the version the first request changed
    _check_version(row, if_match)
    _require("ship", row)
    # platform_refund_pending: a refund in progress on the marketplace (marketplace sync).
    if row.on_hold or row.refund_pending or row.platform_refund_pending:
        raise Conflict("order_on_hold", "The order is on hold or has a refund pending.")
    if row.group_buy and row.group_formed_at is None:
        raise Conflict("group_not_formed", "The group has not formed yet; it cannot ship.")
    if row.allocation != Allocation.FULL:
        raise Conflict("not_allocated", "The order is not fully allocated (waiting for stock).")
    number = data.tracking_number.strip()
    if not dispatch.is_valid_tracking_number(number):
        raise RuleViolation(
            "invalid_tracking_number",
            "A tracking number is 8–30 letters and digits.",
            errors=[
                {
                    "loc": ["body", "tracking_number"],
                    "msg": "8–30 letters and digits",
                    "type": "invalid",
                }
            ],
        )
    number = number.upper()
    clash = await session.execute(
        sa.text(
            "SELECT id FROM orders WHERE store_id = :store AND tracking_number = :n AND id <> :id"
        ),
        {"store": row.store_id, "n": number, "id": row.id},
    )
    if clash.first() is not None:
        raise Conflict("duplicate_tracking", f"Tracking number {number} is on another order.")
    if data.shipped_at is not None:
        await _check_device_time(
            session, data.shipped_at, row, now, "shipped_at", "invalid_shipped_at"
        )
    shipped_at = data.shipped_at or now
    late = row.dispatch_deadline is not None and shipped_at > row.dispatch_deadline
    penalty = row.penalty
    if late:
        penalty = await _record_overdue(session, row)
    try:
        async with session.begin_nested():
            await _update(
                session,
                row,
                now,
                status=Status.SHIPPED.value,
                carrier=data.carrier,
                tracking_number=number,
                tracking_pattern_mismatch=not dispatch.tracking_matches_carrier(
                    data.carrier, number
                ),
                shipped_at=shipped_at,
                shipped_late=late,
                penalty=penalty,
            )
    except IntegrityError as exc:  # a parallel shipment took the number first
        raise Conflict(
            "duplicate_tracking", f"Tracking number {number} is on another order."
        ) from exc
    refs = [
        r.line_ref
        for r in await session.execute(
            sa.text("SELECT line_ref FROM reservations WHERE order_id = :id AND status = 'open'"),
            {"id": row.id},
        )
    ]
    await reservations.consume(
        session, refs, at=shipped_at, reference=f"order:{row.id}", api_key_id=principal.key_id
    )
    await events.append(
        session,
        "order.shipped",
        row.store_id,
        _event_data(
            row,
            carrier=data.carrier,
            tracking_number=number,
            shipped_at=shipped_at,
            late=late,
            penalty=f"{penalty:.2f}",
        ),
    )


async def _record_overdue(session: AsyncSession, row: Any) -> Decimal:
    """A late shipment the sweep has not yet seen overdue records its penalty now (§1).

    Whichever comes first, the sweep or this, records the penalty and emits ``order.overdue``
    with it; the other finds the event's dedupe key taken (``events.dedupe_key`` is UNIQUE,
    and the order row is locked) and keeps what is on the order. Returns the order's penalty.
    """
    policy = (await policies(session, [row.store_id]))[row.store_id]
    amount: Decimal = row.penalty or dispatch.penalty(policy.late_penalty, row.total)
    data = _event_data(row, dispatch_deadline=row.dispatch_deadline, penalty=f"{amount:.2f}")
    key = rules.dedupe_key(row.id, "overdue")
    if await events.append(session, "order.overdue", row.store_id, data, dedupe_key=key):
        return amount
    return Decimal(row.penalty)


_SHIPPED = frozenset({Status.SHIPPED, Status.DELIVERED, Status.COMPLETED})


def _is_same_shipment(row: Any, data: ShipIn) -> bool:
    """Whether ``data`` repeats the shipment the order already has (a retry)."""
    return (
        row.status in _SHIPPED
        and row.carrier == data.carrier
        and row.tracking_number == data.tracking_number.strip().upper()
    )


async def _check_device_time(
    session: AsyncSession, at: datetime, row: Any, now: datetime, field: str, code: str
) -> None:
    """An instant from a device's clock: not before payment, at most CLOCK_SKEW ahead (422)."""
    if row.paid_at is not None and at < row.paid_at:
        paid_at = zones.render(row.paid_at, await zones.zone_of(session, row.store_id))
        raise RuleViolation(
            code,
            f"{field} cannot be before the payment ({paid_at}).",
            errors=[{"loc": ["body", field], "msg": "before paid_at", "type": "invalid"}],
        )
    if at > now + dispatch.CLOCK_SKEW:
        raise RuleViolation(
            code,
            f"{field} is more than 5 minutes in the future; check the device's clock.",
            errors=[{"loc": ["body", field], "msg": "in the future", "type": "invalid"}],
        )


async def cancel(
    session: AsyncSession,
    principal: Principal,
    order_id: int,
    reason: str,
    now: datetime,
    if_match: int | None,
) -> None:
    """Cancel before shipment; reserved stock goes back (to waiting orders first)."""
    row = await lock(session, principal, order_id, if_match)
    _require("cancel", row)
    await cancel_locked(session, row, reason, now)


async def cancel_locked(
    session: AsyncSession, row: Any, reason: str, now: datetime, **event: Any
) -> None:
    """Cancel the locked order ``row``: release its stock, ``order.cancelled`` (+ ``event``)."""
    await _update(
        session, row, now, status=Status.CANCELLED.value, cancelled_at=now, cancel_reason=reason
    )
    refs = [
        r.line_ref
        for r in await session.execute(
            sa.text("SELECT line_ref FROM reservations WHERE order_id = :id AND status = 'open'"),
            {"id": row.id},
        )
    ]
    await reservations.release(session, refs, now)
    await session.execute(
        sa.text("UPDATE order_lines SET reserved = 0 WHERE order_id = :id"), {"id": row.id}
    )
    # Its coupon uses, per-buyer use and budget go back (DOMAIN.md §5).
    await promotion_limits.give_back(session, row.id)
    await events.append(
        session, "order.cancelled", row.store_id, _event_data(row, reason=reason, **event)
    )


async def track(
    session: AsyncSession, principal: Principal, order_id: int, data: TrackingIn, now: datetime
) -> None:
    """Record a carrier scan; ``delivered`` moves the order to delivered."""
    row = await lock(session, principal, order_id)
    _require("track", row)
    # Bounded by payment, not by the recorded shipment: the carrier may scan the parcel
    # before the packer's phone records it shipped, and that pickup scan must count.
    await _check_device_time(session, data.at, row, now, "at", "invalid_tracking_time")
    await session.execute(
        sa.text("INSERT INTO tracking_events (order_id, event, at) VALUES (:id, :e, :at)"),
        {"id": row.id, "e": data.event, "at": data.at},
    )
    values: dict[str, Any] = {}
    if data.event == "picked_up" and row.picked_up_at is None:
        values["picked_up_at"] = data.at
    elif data.event == "returned" and row.returned_at is None:
        values["returned_at"] = data.at
    elif data.event == "delivered" and row.status == Status.SHIPPED:
        values.update(status=Status.DELIVERED.value, delivered_at=data.at)
        if row.picked_up_at is None:
            values["picked_up_at"] = data.at
    await _update(session, row, now, **values)
    if values.get("status") == Status.DELIVERED.value:
        await events.append(
            session,
            "order.delivered",
            row.store_id,
            _event_data(row, delivered_at=data.at),
        )


async def complete(
    session: AsyncSession, principal: Principal, order_id: int, now: datetime, if_match: int | None
) -> None:
    """Complete a delivered order (the sweeper completes the rest after the confirm window)."""
    row = await lock(session, principal, order_id, if_match)
    if row.status != Status.DELIVERED:
        raise Conflict(
            "invalid_transition", f"Only a delivered order can be completed, not {row.status}."
        )
    await _update(session, row, now, status=Status.COMPLETED.value, completed_at=now)
    await events.append(
        session,
        "order.completed",
        row.store_id,
        completed_data(row.id, row.external_id, now, auto=False),
        dedupe_key=completed_key(row.id),
    )


async def hold(
    session: AsyncSession,
    principal: Principal,
    order_id: int,
    reason: str,
    now: datetime,
    if_match: int | None,
) -> None:
    """Put an unshipped order on hold: it cannot ship; its clock keeps running."""
    row = await lock(session, principal, order_id, if_match)
    _require("hold", row)
    await _update(session, row, now, on_hold=True, hold_reason=reason)


async def release(
    session: AsyncSession, principal: Principal, order_id: int, now: datetime, if_match: int | None
) -> None:
    """Take an order off hold."""
    row = await lock(session, principal, order_id, if_match)
    _require("release", row)
    if not row.on_hold:
        raise Conflict("invalid_transition", "The order is not on hold.")
    await _update(session, row, now, on_hold=False, hold_reason=None)


_LOCK_BATCH_ORDERS = sa.text("SELECT id FROM orders WHERE id = ANY(:ids) ORDER BY id FOR UPDATE")
_LOCK_BATCH_BALANCES = sa.text(
    "SELECT sku_id FROM stock_levels WHERE sku_id IN "
    "(SELECT sku_id FROM reservations WHERE order_id = ANY(:ids) AND status = 'open') "
    "ORDER BY sku_id FOR UPDATE"
)


async def _lock_batch(session: AsyncSession, order_ids: list[int]) -> None:
    """Lock a batch's orders in id order, then every balance they will settle in SKU-id order.

    Each shipment locks its order and then its balances; done item by item, a batch would
    hold the balances of earlier items while waiting for later ones, crossing an intake that
    locks the same balances in SKU-id order (a deadlock). Taken all up front, in the same
    orders-then-balances order as a single shipment, no two paths wait on each other in a cycle.
    """
    if not order_ids:
        return
    ids = sorted(set(order_ids))
    await session.execute(_LOCK_BATCH_ORDERS, {"ids": ids})
    await session.execute(_LOCK_BATCH_BALANCES, {"ids": ids})


async def ship_many(
    session: AsyncSession, principal: Principal, raw: list[Any], now: datetime
) -> list[tuple[int, int | None, ItemError | None]]:
    """Ship up to 1,000 orders, each alone: ``(status, order_id, error)`` in input order."""
    results: dict[int, tuple[int, int | None, ItemError | None]] = {}
    valid: dict[int, ShipBulkItem] = {}
    for n, value in enumerate(raw):
        try:
            valid[n] = ShipBulkItem.model_validate(value)
        except ValidationError as exc:
            results[n] = (422, None, exc)
    await _lock_batch(session, [item.order_id for item in valid.values()])
    for n in sorted(valid, key=lambda i: (valid[i].order_id, i)):
        item = valid[n]
        try:
            async with session.begin_nested():
                await ship(session, principal, item.order_id, item, now)
        except DomainError as exc:
            results[n] = (exc.status, item.order_id, exc)
        except Exception as exc:
            # A value PostgreSQL refused fails this item alone (its savepoint is gone).
            typed = dberrors.item_error(exc)
            if typed is None:
                raise
            results[n] = (typed.status, item.order_id, typed)
        else:
            results[n] = (200, item.order_id, None)
    return [results[n] for n in range(len(raw))]
