"""Order read models: stored facts plus the clock, computed at read time (never stale)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain import audit
from app.domain.order import privacy, rules
from app.domain.order.privacy import BuyerView
from app.domain.order.schemas import (
    BuyerOut,
    DiscountOut,
    GroupBuyOut,
    LineOut,
    OrderPublic,
    OrderSummary,
    ShipmentOut,
    TrackingOut,
)
from app.domain.store import zones
from app.domain.store.rules import DispatchPolicy, effective_policy
from app.domain.ticket import repository as tickets
from app.models import Order


async def policies(session: AsyncSession, store_ids: Iterable[int]) -> dict[int, DispatchPolicy]:
    """Effective dispatch policies of the given stores (their zones noted on the way)."""
    ids = sorted(set(store_ids))
    if not ids:
        return {}
    rows = await session.execute(
        sa.text("SELECT id, platform, dispatch_policy, timezone FROM stores WHERE id = ANY(:ids)"),
        {"ids": ids},
    )
    out = {}
    for r in rows:
        zones.remember(session, r.id, r.timezone)
        out[r.id] = effective_policy(r.platform, r.dispatch_policy)
    return out


def facts(o: Any) -> rules.OrderFacts:
    """The stored facts of an order row or object."""
    return rules.OrderFacts(
        status=o.status,
        allocation=o.allocation,
        clock_started_at=o.clock_started_at,
        dispatch_deadline=o.dispatch_deadline,
        at_risk_at=o.at_risk_at,
        total=o.total,
        penalty=o.penalty,
        on_hold=o.on_hold,
        # Open refund tickets, or a refund in progress on the platform (marketplace sync).
        refund_pending=o.refund_pending or getattr(o, "platform_refund_pending", False),
        urgent=o.urgent,
        shipped_at=o.shipped_at,
        picked_up_at=o.picked_up_at,
        shipped_late=o.shipped_late,
        tracking_pattern_mismatch=o.tracking_pattern_mismatch,
        fake_shipment_risk=o.fake_shipment_risk,
    )


def summary(o: Any, policy: DispatchPolicy, now: datetime, tz: tzinfo) -> OrderSummary:
    """The board/pick-list form of an order row, its instants in store time ``tz``."""
    v = rules.view(facts(o), policy, now)
    out = OrderSummary(
        id=o.id,
        store_id=o.store_id,
        external_id=o.external_id,
        status=o.status,
        allocation=o.allocation,
        placed_at=o.placed_at,
        dispatch_deadline=o.dispatch_deadline,
        risk=v.risk,
        seconds_left=v.seconds_left,
        penalty=v.penalty,
        flags=v.flags,
        total=o.total,
    )
    return zones.localize(out, tz)


async def read_models(
    session: AsyncSession,
    orders: Sequence[Order],
    now: datetime,
    *,
    view: BuyerView = BuyerView.FULL,
) -> list[OrderPublic]:
    """Full read models with lines and tracking, loaded set-based; buyers shown as ``view``."""
    if not orders:
        return []
    ids = [o.id for o in orders]
    lines: dict[int, list[LineOut]] = defaultdict(list)
    for r in await session.execute(
        sa.text(
            "SELECT l.order_id, l.line_no, l.sku_id, s.sku_code, l.quantity, l.unit_price, "
            "l.line_total, l.reserved FROM order_lines l JOIN skus s ON s.id = l.sku_id "
            "WHERE l.order_id = ANY(:ids) ORDER BY l.order_id, l.line_no"
        ),
        {"ids": ids},
    ):
        lines[r.order_id].append(
            LineOut(
                line_no=r.line_no,
                sku_id=r.sku_id,
                sku_code=r.sku_code,
                quantity=r.quantity,
                unit_price=r.unit_price,
                line_total=r.line_total,
                reserved=r.reserved,
            )
        )
    scans: dict[int, list[TrackingOut]] = defaultdict(list)
    shipped_ids = [o.id for o in orders if o.shipped_at is not None]
    if shipped_ids:
        for r in await session.execute(
            sa.text(
                "SELECT order_id, event, at FROM tracking_events WHERE order_id = ANY(:ids) "
                "ORDER BY order_id, at, id"
            ),
            {"ids": shipped_ids},
        ):
            scans[r.order_id].append(TrackingOut(event=r.event, at=r.at))
    pols = await policies(session, {o.store_id for o in orders})
    tzs = await zones.zones_of(session, pols)
    models = [
        to_public(o, lines[o.id], scans[o.id], pols[o.store_id], now, tzs[o.store_id])  # type: ignore[index]
        for o in orders
    ]
    open_tickets = await tickets.open_counts(session, [m.id for m in models])
    for model in models:
        model.open_tickets = open_tickets.get(model.id, 0)
    given = await discounts_of(session, ids)
    for model in models:
        model.discounts = given.get(model.id, [])
    if view is BuyerView.MASKED:
        for model in models:
            model.buyer = privacy.mask_buyer(model.buyer)
    return models


async def list_for(
    session: AsyncSession, principal: Principal, orders: Sequence[Order], now: datetime
) -> list[OrderPublic]:
    """Read models of a list as ``principal`` may see them (buyers masked for operators)."""
    view = privacy.buyer_view(principal.role, many=True)
    return await read_models(session, orders, now, view=view)


async def one_for(
    session: AsyncSession, principal: Principal, order: Order, now: datetime
) -> OrderPublic:
    """One order as ``principal`` may see it; a full view of the buyer that privacy audits
    leaves an audit entry naming the key, in the request's transaction."""
    view = privacy.buyer_view(principal.role, many=False)
    if view is BuyerView.FULL_AUDITED:
        await audit.record(
            session,
            api_key_id=principal.key_id,
            action="order.buyer_viewed",
            resource_type="order",
            resource_id=str(order.id),
            store_id=order.store_id,
            data={"api_key_name": principal.name, "fields": ["buyer.phone", "buyer.address"]},
        )
    return (await read_models(session, [order], now, view=view))[0]


async def discounts_of(session: AsyncSession, ids: list[Any]) -> dict[int, list[DiscountOut]]:
    """What each promotion gave the orders ``ids`` (DOMAIN.md §5), by order."""
    out: dict[int, list[DiscountOut]] = defaultdict(list)
    for r in await session.execute(
        sa.text(
            "SELECT order_id, promotion_id, amount FROM order_promotions "
            "WHERE order_id = ANY(:ids) ORDER BY order_id, promotion_id"
        ),
        {"ids": ids},
    ):
        out[r.order_id].append(DiscountOut(promotion_id=r.promotion_id, amount=r.amount))
    return out


def to_public(
    o: Any,
    lines: list[LineOut],
    scans: list[TrackingOut],
    policy: DispatchPolicy,
    now: datetime,
    tz: tzinfo,
) -> OrderPublic:
    """The read model of one order, its instants in store time ``tz``."""
    v = rules.view(facts(o), policy, now)
    shipments = []
    if o.shipped_at is not None and o.carrier and o.tracking_number:
        shipments.append(
            ShipmentOut(
                carrier=o.carrier,
                tracking_number=o.tracking_number,
                shipped_at=o.shipped_at,
                picked_up_at=o.picked_up_at,
                delivered_at=o.delivered_at,
                events=scans,
            )
        )
    public = OrderPublic(
        id=o.id,
        store_id=o.store_id,
        external_id=o.external_id,
        status=rules.Status(o.status),
        allocation=rules.Allocation(o.allocation),
        placed_at=o.placed_at,
        paid_at=o.paid_at,
        group_buy=GroupBuyOut(group_id=o.group_id, formed_at=o.group_formed_at)
        if o.group_buy
        else None,
        promised_ship_by=o.promised_ship_by,
        clock_started_at=o.clock_started_at,
        dispatch_deadline=o.dispatch_deadline,
        risk=v.risk,
        seconds_left=v.seconds_left,
        penalty=v.penalty,
        flags=v.flags,
        buyer=BuyerOut(**o.buyer),
        items=lines,
        subtotal=o.subtotal,
        discount=o.discount,
        shipping_fee=o.shipping_fee,
        total=o.total,
        coupon_code=o.coupon_code,
        promotion_ids=list(o.promotion_ids or []),
        allow_backorder=o.allow_backorder,
        hold_reason=o.hold_reason,
        buyer_memo=getattr(o, "buyer_memo", None),
        # Marketplace sync keeps it in a column; an order body's buyer carries it in ``buyer``.
        platform_buyer_id=getattr(o, "platform_buyer_id", None) or o.buyer.get("platform_buyer_id"),
        shipments=shipments,
        cancelled_at=o.cancelled_at,
        cancel_reason=o.cancel_reason,
        completed_at=o.completed_at,
        refunded_amount=getattr(o, "refunded_amount", None) or Decimal("0.00"),
        version=o.version,
        created_at=o.created_at,
        updated_at=o.updated_at,
    )
    return zones.localize(public, tz)
