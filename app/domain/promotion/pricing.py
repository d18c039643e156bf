"""The engine at work: quotes, and the promotions of an order at intake (DOMAIN.md §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain.errors import Conflict, RuleViolation, not_found
from app.domain.promotion import limits, repository
from app.domain.promotion.rules import CartLine, Kind, Promo, cents, money, quote, split
from app.domain.promotion.schemas import (
    AppliedOut,
    CouponOut,
    GiftOut,
    QuoteIn,
    QuoteLine,
    QuoteOut,
)
from app.domain.store import zones

_COUPON = """
SELECT p.*,
       (SELECT sum(uses_left) FROM promotion_counters c WHERE c.promotion_id = p.id) AS uses_left,
       (SELECT sum(budget_left) FROM promotion_counters c WHERE c.promotion_id = p.id)
           AS budget_left,
       EXISTS (SELECT 1 FROM promotion_counters c WHERE c.promotion_id = p.id) AS counted,
       (SELECT uses FROM promotion_buyers b WHERE b.promotion_id = p.id AND b.buyer_key = :k)
           AS buyer_uses
  FROM promotions p
 WHERE p.store_id = :s AND p.kind = 'coupon' AND p.code = :code
   AND p.starts_at <= :at AND p.ends_at > :at AND (p.ended_at IS NULL OR p.ended_at > :at)
 ORDER BY p.id LIMIT 1
"""


def _exhaustion(row: Any, amount: int) -> str | None:
    """Why a coupon cannot be redeemed for ``amount`` cents more, from a read (None: it can)."""
    if row.usage_limit is not None and (row.uses_left or 0) < 1:
        return "exhausted"
    if row.budget is not None and cents(row.budget_left or 0) < amount:
        return "exhausted"
    if row.per_buyer_limit is not None and (row.buyer_uses or 0) >= row.per_buyer_limit:
        return "per_buyer_limit"
    return None


async def quote_cart(
    session: AsyncSession, principal: Principal, data: QuoteIn, now: datetime
) -> QuoteOut:
    """The full breakdown of a cart with the store's promotions on at ``data.at``."""
    if not principal.sees_store(data.store_id):
        raise not_found("store", data.store_id)
    tz_row = (
        await session.execute(
            sa.text("SELECT timezone FROM stores WHERE id = :s"), {"s": data.store_id}
        )
    ).first()
    if tz_row is None:
        raise not_found("store", data.store_id)
    tz = zones.remember(session, data.store_id, tz_row.timezone)
    at = data.at or now
    prices = await repository.sku_prices(session, data.store_id, [i.sku_id for i in data.items])
    unknown = [n for n, i in enumerate(data.items) if i.sku_id not in prices]
    if unknown:
        raise RuleViolation(
            "unknown_sku",
            f"{len(unknown)} item(s) name SKUs unknown in store {data.store_id}.",
            errors=[
                {"loc": ["body", "items", n, "sku_id"], "msg": "unknown SKU", "type": "unknown_sku"}
                for n in unknown
            ],
        )
    cart = [
        CartLine(i.sku_id, i.quantity, prices[i.sku_id].price, prices[i.sku_id].floor)
        for i in data.items
    ]
    rows = await repository.on_at(session, data.store_id, at)
    promos = [repository.to_engine(r, tz) for r in rows if r.kind != Kind.COUPON.value]
    coupon: Promo | None = None
    coupon_row = None
    if data.coupon_code is not None:
        key = limits.buyer_key_of_id(data.buyer_id) if data.buyer_id else ""
        coupon_row = (
            await session.execute(
                sa.text(_COUPON), {"s": data.store_id, "code": data.coupon_code, "at": at, "k": key}
            )
        ).first()
        if coupon_row is not None:
            coupon = repository.to_engine(coupon_row, tz)
    result = quote(
        cart,
        promos,
        at,
        group_buy=data.group_buy,
        coupon=coupon,
        shipping_fee=cents(data.shipping_fee),
    )
    coupon_out = None
    if data.coupon_code is not None:
        reason = "unknown" if coupon_row is None else result.coupon_reason
        if coupon_row is not None and result.coupon_applied:
            reason = _exhaustion(coupon_row, result.discount_of(coupon_row.id))
            if reason is not None:
                coupon = None
                result = quote(
                    cart,
                    promos,
                    at,
                    group_buy=data.group_buy,
                    shipping_fee=cents(data.shipping_fee),
                )
        coupon_out = CouponOut(code=data.coupon_code, applied=reason is None, reason=reason)
    return QuoteOut(
        lines=[
            QuoteLine(
                sku_id=p.sku_id,
                quantity=p.quantity,
                unit_price=money(p.unit_price),
                final_unit_price=money(p.final_unit_price),
                line_total=money(p.total),
                clamped=p.clamped,
            )
            for p in result.lines
        ],
        applied=[
            AppliedOut(promotion_id=a.promotion_id, kind=a.kind.value, discount=money(a.discount))
            for a in result.applied
        ],
        subtotal=money(result.subtotal),
        discount=money(result.discount),
        shipping_fee=money(result.shipping_fee),
        total=money(result.total),
        gifts=[
            GiftOut(promotion_id=g.promotion_id, sku_id=g.sku_id, quantity=g.quantity)
            for g in result.gifts
        ],
        coupon=coupon_out,
    )


@dataclass(slots=True)
class OrderPromotions:
    """What intake does with an order's promotions: the coupon to redeem (its discount is
    part of the order's ``discount``) and the discounts attributed to ``promotion_ids``."""

    coupon_id: int | None = None
    coupon_code: str = ""
    coupon_amount: Decimal = Decimal("0.00")
    per_buyer_limit: int | None = None
    counted: bool = False
    attributed: dict[int, Decimal] = field(default_factory=dict)

    @property
    def discounts(self) -> dict[int, Decimal]:
        """Every discount row of the order, by promotion."""
        out = dict(self.attributed)
        if self.coupon_id is not None:
            out[self.coupon_id] = self.coupon_amount
        return out


# The order's promotions (those it names, and the coupon by code) and its SKUs' prices and
# floors, in one round trip: the SKU arrays on every row, one row with null promotion
# columns when no promotion matched.
_ORDER_PROMOTIONS = """
SELECT k.cart_skus, k.cart_prices, k.cart_floors, p.*,
       EXISTS (SELECT 1 FROM promotion_counters c WHERE c.promotion_id = p.id) AS counted
  FROM (SELECT array_agg(id) AS cart_skus, array_agg(price) AS cart_prices,
               array_agg(coalesce(floor_price, cost_price)) AS cart_floors
          FROM skus WHERE id = ANY($5::bigint[])) k
  LEFT JOIN promotions p
    ON p.store_id = $1
   AND (p.id = ANY($2::bigint[])
        OR (p.kind = 'coupon' AND p.code = $3 AND p.starts_at <= $4 AND p.ends_at > $4
            AND (p.ended_at IS NULL OR p.ended_at > $4)))
 ORDER BY p.id
"""


async def plan_order(
    con: Any,
    store_id: int,
    tz_name: str,
    lines: list[tuple[int, int, Decimal]],
    manual_discount: Decimal,
    coupon_code: str | None,
    promotion_ids: list[int] | None,
    at: datetime,
) -> OrderPromotions:
    """The coupon discount and attributed discounts of an order (``lines``: SKU id,
    quantity, charged unit price), priced by the engine; ``409 coupon_unavailable`` for a
    coupon unknown, not on at ``at``, or whose ``min_spend`` is not met."""
    tz = zones.zone(tz_name)
    found = await con.fetch(
        _ORDER_PROMOTIONS,
        store_id,
        promotion_ids or [],
        coupon_code,
        at,
        sorted({s for s, _, _ in lines}),
    )
    first = found[0]
    floors = {
        sku: (cents(price), None if floor is None else cents(floor))
        for sku, price, floor in zip(
            first["cart_skus"] or [],
            first["cart_prices"] or [],
            first["cart_floors"] or [],
            strict=True,
        )
    }
    rows = [r for r in found if r["id"] is not None]
    plan = OrderPromotions()
    coupon_row = None
    if coupon_code is not None:
        coupon_row = next(
            (
                r
                for r in rows
                if r["kind"] == "coupon"
                and r["code"] == coupon_code
                and r["starts_at"] <= at < r["ends_at"]
            ),
            None,
        )
        if coupon_row is None:
            raise Conflict("coupon_unavailable", f"Coupon '{coupon_code}' is not available.")
    if coupon_row is not None:
        coupon = repository.to_engine(_Row(coupon_row), tz)
        # The coupon on what the buyer was charged: the order's own prices, less its
        # discount, spread like any order discount, never under a floor.
        cart = [CartLine(s, q, cents(p), floors[s][1]) for s, q, p in lines]
        charged = quote(cart, [], at, coupon=coupon)
        base = charged.total - cents(manual_discount)
        if not charged.coupon_applied or base < coupon.rules["min_spend"]:
            raise Conflict(
                "coupon_unavailable",
                f"Coupon '{coupon_code}' is not available (min_spend not met).",
            )
        amount = min(charged.discount_of(coupon.id), max(0, base))
        plan.coupon_id = coupon.id
        plan.coupon_code = coupon_code or ""
        plan.coupon_amount = money(amount)
        plan.per_buyer_limit = coupon_row["per_buyer_limit"]
        plan.counted = coupon_row["counted"]
    named = [r for r in rows if r["id"] in set(promotion_ids or []) and r["id"] != plan.coupon_id]
    if named:
        promos = [repository.to_engine(_Row(r), tz) for r in named]
        listed = [CartLine(s, q, floors[s][0], floors[s][1]) for s, q, _ in lines]
        engine = quote(listed, [p for p in promos if p.kind != Kind.COUPON], at)
        charged_total = sum(cents(p) * q for _, q, p in lines) - cents(manual_discount)
        gap = max(0, sum(line.unit_price * line.quantity for line in listed) - charged_total)
        shares = split(gap, [engine.discount_of(p.id) for p in promos])
        plan.attributed = {p.id: money(s) for p, s in zip(promos, shares, strict=True)}
    return plan


class _Row:
    """Attribute access to an asyncpg record (the repository reads rows by attribute)."""

    def __init__(self, record: Any) -> None:
        self._r = record

    def __getattr__(self, name: str) -> Any:
        return self._r[name]


async def redeem(con: Any, order_id: int, plan: OrderPromotions, key: str) -> None:
    """Claim the coupon and write every discount row, in the intake transaction."""
    if plan.coupon_id is not None:
        await limits.claim(
            con,
            order_id,
            plan.coupon_id,
            plan.coupon_code,
            plan.coupon_amount,
            key,
            plan.per_buyer_limit,
            plan.counted,
        )
    await limits.record(con, order_id, plan.attributed)
