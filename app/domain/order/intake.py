"""Order intake: idempotent on (store, external id), totals, reservation in one transaction."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db import connection_of, driver
from app.domain.dispatch import rules as dispatch
from app.domain.errors import Conflict, RuleViolation, not_found
from app.domain.events import service as events
from app.domain.inventory import reservations
from app.domain.inventory.reservations import Line
from app.domain.order import read, rules
from app.domain.order.rules import Allocation, Status
from app.domain.order.schemas import DiscountOut, LineOut, OrderCreate, OrderPublic
from app.domain.order.typed import OrderData
from app.domain.promotion import limits as promo_limits
from app.domain.promotion import pricing as promo_pricing
from app.domain.store import zones
from app.domain.store.rules import DispatchPolicy, effective_policy
from app.models import Order

_orders = Order.__table__  # type: ignore[attr-defined]


def line_ref(order_id: int, line_no: int) -> str:
    """The reservation reference of an order line."""
    return f"order:{order_id}:{line_no}"


def parse_line_ref(ref: str) -> tuple[int, int] | None:
    """``(order_id, line_no)`` of an order-line reference, else None."""
    kind, _, rest = ref.partition(":")
    order_id, _, line_no = rest.partition(":")
    if kind != "order" or not order_id.isdigit() or not line_no.isdigit():
        return None
    return int(order_id), int(line_no)


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def content_hash(data: OrderData) -> str:
    """What makes two intakes of one external id "the same order": every field, normalised
    (money to two places, times to UTC), in a fixed order."""
    b, g = data.buyer, data.group_buy
    canonical = (
        data.store_id,
        data.external_id,
        _instant(data.placed_at),
        _instant(data.paid_at),
        (b.name, b.phone, b.province, b.city, b.address)
        + (() if b.platform_buyer_id is None else (b.platform_buyer_id,)),
        [(i.sku_code, i.sku_id, i.quantity, str(i.unit_price)) for i in data.items],
        str(data.shipping_fee),
        str(data.discount),
        data.coupon_code,
        data.promotion_ids,
        None if g is None else (g.group_id, _instant(g.formed_at)),
        _instant(data.promised_ship_by),
        data.allow_backorder,
    )
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


@dataclass(frozen=True, slots=True)
class Clock:
    """Clock start, deadline and the at-risk instant of an order."""

    started_at: datetime | None
    deadline: datetime | None
    at_risk_at: datetime | None


def dispatch_clock(
    paid_at: datetime | None,
    group_buy: bool,
    group_formed_at: datetime | None,
    promised_ship_by: datetime | None,
    policy: DispatchPolicy,
) -> Clock:
    """The stored clock of an order (DOMAIN.md §2)."""
    start = dispatch.clock_start(paid_at, group_buy, group_formed_at)
    due = dispatch.deadline(start, promised_ship_by, policy)
    if start is None or due is None:
        return Clock(start, due, None)
    return Clock(start, due, dispatch.at_risk_from(start, due, policy))


_STORE_AND_SKUS = """
    SELECT s.platform, s.dispatch_policy, s.timezone, k.ids, k.codes
      FROM stores s
      LEFT JOIN LATERAL (
            SELECT array_agg(id) AS ids, array_agg(sku_code) AS codes FROM skus
             WHERE store_id = s.id AND (sku_code = ANY($2::text[]) OR id = ANY($3::bigint[]))
      ) k ON true
     WHERE s.id = $1
"""


def match_skus(
    store_id: int, data: OrderCreate, ids: list[int], codes: list[str]
) -> list[tuple[int, str]]:
    """(sku_id, sku_code) per item; ``422 unknown_sku`` naming every unknown item."""
    by_code = dict(zip(codes, ids, strict=True))
    by_id = dict(zip(ids, codes, strict=True))
    out: list[tuple[int, str]] = []
    errors: list[dict[str, Any]] = []
    for n, item in enumerate(data.items):
        if item.sku_code is not None and item.sku_code in by_code:
            out.append((by_code[item.sku_code], item.sku_code))
        elif item.sku_id is not None and item.sku_id in by_id:
            out.append((item.sku_id, by_id[item.sku_id]))
        else:
            field = "sku_code" if item.sku_code is not None else "sku_id"
            errors.append(
                {"loc": ["body", "items", n, field], "msg": "unknown SKU", "type": "unknown_sku"}
            )
    if errors:
        raise RuleViolation(
            "unknown_sku",
            f"{len(errors)} item(s) name SKUs unknown in store {store_id}.",
            errors=errors,
        )
    return out


@dataclass(frozen=True, slots=True)
class Intake:
    """The outcome: the order id, whether this call created it, and (if so) its read model."""

    order_id: int
    created: bool
    public: OrderPublic | None = None


_INSERT_ORDER = """
    INSERT INTO orders (store_id, external_id, status, allocation, placed_at, paid_at,
           group_buy, group_id, group_formed_at, promised_ship_by, clock_started_at,
           dispatch_deadline, at_risk_at, buyer, buyer_phone, subtotal, discount, shipping_fee,
           total, coupon_code, promotion_ids, allow_backorder, content_hash, version,
           created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
            $19, $20, $21, $22, $23, 1, $24, $24)
    ON CONFLICT (store_id, external_id) DO NOTHING
    RETURNING id
"""
# The lines and the order.created event in one round trip.
_INSERT_LINES_AND_EVENT = """
    WITH l AS (
        INSERT INTO order_lines
               (order_id, line_no, sku_id, quantity, unit_price, line_total, reserved)
        SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::int[], $5::numeric[],
                                 $6::numeric[], $7::int[])
    )
    INSERT INTO events (type, store_id, data) VALUES ('order.created', $8, $9)
"""
# The whole intake of an order whose SKUs all have plenty left, in one round trip: the
# balances read without locking (as reservations._HOLD_MANY reads them; $25/$26 the units
# wanted per SKU), and only if every SKU qualifies the order, its reservations (taken at
# commit by the deferred trigger, inserted in SKU-id order so the trigger takes the
# balances in that order like every other path), its lines and its order.created event.
# Nothing is written otherwise (``go`` false: the caller takes the step-by-step path),
# nor when the (store, external id) exists (``order_id`` null).
_INTAKE_AT_COMMIT = """
    WITH s AS (
        SELECT l.sku_id, l.store_id,
               l.on_hand - l.reserved - w.need > l.threshold
               AND NOT l.low_notified AND NOT l.out_notified AS later
          FROM unnest($25::bigint[], $26::int[]) AS w(sku_id, need)
          JOIN stock_levels l ON l.sku_id = w.sku_id
    ), go AS (
        SELECT count(*) = cardinality($25::bigint[]) AND coalesce(bool_and(later), false) AS go
          FROM s
    ), o AS (
        INSERT INTO orders (store_id, external_id, status, allocation, placed_at, paid_at,
               group_buy, group_id, group_formed_at, promised_ship_by, clock_started_at,
               dispatch_deadline, at_risk_at, buyer, buyer_phone, subtotal, discount,
               shipping_fee, total, coupon_code, promotion_ids, allow_backorder, content_hash,
               version, created_at, updated_at)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
               $18, $19, $20, $21, $22, $23, 1, $24, $24
          FROM go WHERE go.go
        ON CONFLICT (store_id, external_id) DO NOTHING
        RETURNING id
    ), v AS (
        SELECT * FROM unnest($27::bigint[], $28::int[], $29::numeric[], $30::numeric[])
               WITH ORDINALITY AS v(sku_id, q, unit_price, line_total, n)
    ), r AS (
        INSERT INTO reservations (sku_id, store_id, line_ref, order_id, requested, reserved,
               deadline, placed_at, take_at_commit)
        SELECT v.sku_id, s.store_id, 'order:' || o.id || ':' || v.n, o.id, v.q, v.q,
               $12, $5, true
          FROM o, v JOIN s ON s.sku_id = v.sku_id
         ORDER BY v.sku_id, v.n
    ), l AS (
        INSERT INTO order_lines
               (order_id, line_no, sku_id, quantity, unit_price, line_total, reserved)
        SELECT o.id, v.n, v.sku_id, v.q, v.unit_price, v.line_total, v.q FROM o, v
    ), e AS (
        INSERT INTO events (type, store_id, data)
        SELECT 'order.created', $1, $31::jsonb || jsonb_build_object('order_id', o.id::text)
          FROM o
    )
    SELECT (SELECT go FROM go) AS go, (SELECT id FROM o) AS order_id
"""
# What a just-taken order has not done yet (the table's defaults).
_FRESH: dict[str, Any] = {
    "penalty": Decimal("0.00"),
    "on_hold": False,
    "hold_reason": None,
    "refund_pending": False,
    "urgent": False,
    "carrier": None,
    "tracking_number": None,
    "tracking_pattern_mismatch": False,
    "shipped_at": None,
    "shipped_late": False,
    "picked_up_at": None,
    "delivered_at": None,
    "returned_at": None,
    "completed_at": None,
    "cancelled_at": None,
    "cancel_reason": None,
    "fake_shipment_risk": False,
}


async def take(
    session: AsyncSession,
    principal: Principal,
    data: OrderCreate,
    now: datetime,
    *,
    exact: bool = False,
) -> Intake:
    """Create an order and reserve its stock, or recognise a retry of the same order.

    ``exact``: take the stock under the balance locks, never at commit (a retried request).

    The hot path of the service: every statement runs on the asyncpg connection of the
    request's transaction, and the read model is built from what was just written.
    """
    # Outside a transaction unless the request already opened one (an Idempotency-Key):
    # the read sees the same under READ COMMITTED, and the order may then be taken in one
    # statement that is its own transaction (see _take_at_commit).
    con = await connection_of(session)
    store = await con.fetchrow(
        _STORE_AND_SKUS,
        data.store_id,
        sorted({i.sku_code for i in data.items if i.sku_code is not None}),
        sorted({i.sku_id for i in data.items if i.sku_id is not None}),
    )
    if store is None or not principal.sees_store(data.store_id):
        raise not_found("store", data.store_id)
    policy = effective_policy(store["platform"], store["dispatch_policy"])
    skus = match_skus(data.store_id, data, store["ids"] or [], store["codes"] or [])
    plan = None
    discount = data.discount
    if data.coupon_code is not None or data.promotion_ids:
        # Promotions (DOMAIN.md §5): the coupon's discount joins the order's; orders
        # without them never come here.
        try:
            plan = await promo_pricing.plan_order(
                con,
                data.store_id,
                store["timezone"],
                [
                    (sku_id, i.quantity, i.unit_price)
                    for (sku_id, _), i in zip(skus, data.items, strict=True)
                ],
                data.discount,
                data.coupon_code,
                data.promotion_ids,
                data.placed_at,
            )
        except Conflict:
            # A retry of an order taken when the coupon was still on is the same order.
            if await _exists(con, data):
                return await _existing(session, data, content_hash(data))
            raise
        discount += plan.coupon_amount
    sums = rules.totals(
        [(i.quantity, i.unit_price) for i in data.items], discount, data.shipping_fee
    )
    if sums.discount > sums.subtotal:
        raise RuleViolation(
            "invalid_discount",
            "The discount exceeds the subtotal.",
            errors=[{"loc": ["body", "discount"], "msg": "exceeds subtotal", "type": "invalid"}],
        )
    group = data.group_buy
    clock = dispatch_clock(
        data.paid_at,
        group is not None,
        group.formed_at if group else None,
        data.promised_ship_by,
        policy,
    )
    digest = content_hash(data)
    status = Status.PENDING_PAYMENT if data.paid_at is None else Status.AWAITING_SHIPMENT
    buyer = data.buyer.model_dump(exclude_none=True)
    order_row = (
        data.store_id,
        data.external_id,
        status.value,
        Allocation.FULL.value,
        data.placed_at,
        data.paid_at,
        group is not None,
        group.group_id if group else None,
        group.formed_at if group else None,
        data.promised_ship_by,
        clock.started_at,
        clock.deadline,
        clock.at_risk_at,
        orjson.dumps(buyer).decode(),
        data.buyer.phone,
        sums.subtotal,
        sums.discount,
        sums.shipping_fee,
        sums.total,
        data.coupon_code,
        data.promotion_ids,
        data.allow_backorder,
        digest,
        now,
    )
    line_totals = [(i.unit_price * i.quantity).quantize(rules.CENT) for i in data.items]
    sku_ids = [sku_id for sku_id, _ in skus]
    if plan is not None:
        # The coupon is claimed in the same transaction as the order.
        con = await driver(session)
    taken = None if exact else await _take_at_commit(session, con, data, order_row, sku_ids)
    if isinstance(taken, Intake):
        return taken
    if taken is not None:
        order_id = taken
        reserved = [i.quantity for i in data.items]
        allocation = Allocation.FULL
    else:
        con = await driver(session)
        order_id = await con.fetchval(_INSERT_ORDER, *order_row)
        if order_id is None:
            return await _existing(session, data, digest)
        reserved, allocation = await _reserve_and_write_lines(
            session, con, data, order_id, sku_ids, line_totals, status, sums.total, clock, exact
        )
    discounts: list[DiscountOut] = []
    if plan is not None:
        await promo_pricing.redeem(con, order_id, plan, promo_limits.buyer_key(data.buyer))
        discounts = [DiscountOut(promotion_id=p, amount=a) for p, a in plan.discounts.items()]
    # A plain namespace, not a table object: building the SQLModel instance cost more than
    # the rest of the read model.
    order = SimpleNamespace(
        id=order_id,
        store_id=data.store_id,
        external_id=data.external_id,
        status=status.value,
        allocation=allocation.value,
        placed_at=data.placed_at,
        paid_at=data.paid_at,
        group_buy=group is not None,
        group_id=group.group_id if group else None,
        group_formed_at=group.formed_at if group else None,
        promised_ship_by=data.promised_ship_by,
        clock_started_at=clock.started_at,
        dispatch_deadline=clock.deadline,
        at_risk_at=clock.at_risk_at,
        buyer=buyer,
        buyer_phone=data.buyer.phone,
        subtotal=sums.subtotal,
        discount=sums.discount,
        shipping_fee=sums.shipping_fee,
        total=sums.total,
        coupon_code=data.coupon_code,
        promotion_ids=data.promotion_ids,
        allow_backorder=data.allow_backorder,
        content_hash=digest,
        version=1,
        created_at=now,
        updated_at=now,
        **_FRESH,
    )
    public_lines = [
        LineOut(
            line_no=n + 1,
            sku_id=sku_id,
            sku_code=code,
            quantity=item.quantity,
            unit_price=item.unit_price,
            line_total=total,
            reserved=got,
        )
        for n, ((sku_id, code), item, total, got) in enumerate(
            zip(skus, data.items, line_totals, reserved, strict=True)
        )
    ]
    tz = zones.zone(store["timezone"])
    public = read.to_public(order, public_lines, [], policy, now, tz)
    if discounts:
        public.discounts = discounts
    return Intake(order_id, True, public)


async def _take_at_commit(
    session: AsyncSession,
    con: Any,
    data: OrderCreate,
    order_row: tuple[Any, ...],
    sku_ids: list[int],
) -> int | Intake | None:
    """The order written whole in one statement, its stock taken at commit: its id; an
    order already taken under the external id: :func:`_existing`'s answer; None (nothing
    written) unless every SKU has plenty left.

    Outside a transaction (no Idempotency-Key) the statement is one by itself: the order is
    committed when it returns, and stock gone at commit fails the statement (SO001, the
    request retried on the exact path) exactly as it would fail a COMMIT.
    """
    need: dict[int, int] = {}
    for sku_id, item in zip(sku_ids, data.items, strict=True):
        need[sku_id] = need.get(sku_id, 0) + item.quantity
    row = await con.fetchrow(
        _INTAKE_AT_COMMIT,
        *order_row,
        list(need),
        list(need.values()),
        sku_ids,
        [i.quantity for i in data.items],
        [i.unit_price for i in data.items],
        [(i.unit_price * i.quantity).quantize(rules.CENT) for i in data.items],
        orjson.dumps(
            {
                "external_id": data.external_id,
                "status": order_row[2],
                "allocation": Allocation.FULL.value,
                "total": str(order_row[18]),
            }
        ).decode(),
    )
    if not row["go"]:
        return None
    if row["order_id"] is None:
        return await _existing(session, data, order_row[22])
    if con.is_in_transaction():
        # Else the statement was its own transaction: its stock is taken already.
        reservations.defer_takes(session, need)
    order_id: int = row["order_id"]
    return order_id


async def _reserve_and_write_lines(
    session: AsyncSession,
    con: Any,
    data: OrderCreate,
    order_id: int,
    sku_ids: list[int],
    line_totals: list[Decimal],
    status: Status,
    total: Decimal,
    clock: Clock,
    exact: bool,
) -> tuple[list[int], Allocation]:
    """Reserve the lines of a just-inserted order (locking path when stock runs low), write
    the lines and the order.created event; units reserved per line and the allocation."""
    lines = [
        Line(
            sku_id=sku_id,
            quantity=item.quantity,
            line_ref=line_ref(order_id, n + 1),
            placed_at=data.placed_at,
            deadline=clock.deadline,
            order_id=order_id,
        )
        for n, (item, sku_id) in enumerate(zip(data.items, sku_ids, strict=True))
    ]
    got = await reservations.reserve_lines(
        session, lines, allow_partial=data.allow_backorder, exact=exact
    )
    allocation = rules.allocation([r.requested for r in got], [r.reserved for r in got])
    await con.execute(
        _INSERT_LINES_AND_EVENT,
        order_id,
        list(range(1, len(lines) + 1)),
        [line.sku_id for line in lines],
        [line.quantity for line in lines],
        [i.unit_price for i in data.items],
        line_totals,
        [r.reserved for r in got],
        data.store_id,
        orjson.dumps(
            {
                "order_id": str(order_id),
                "external_id": data.external_id,
                "status": status.value,
                "allocation": allocation.value,
                "total": str(total),
            }
        ).decode(),
    )
    if allocation != Allocation.FULL:
        await con.execute(
            "UPDATE orders SET allocation = $2 WHERE id = $1", order_id, allocation.value
        )
        for r in got:
            if r.reserved < r.requested:
                await events.append(
                    session,
                    "stock.out",
                    data.store_id,
                    {
                        "sku_id": str(r.sku_id),
                        "order_id": str(order_id),
                        "requested": r.requested,
                        "reserved": r.reserved,
                        "reason": "backorder",
                    },
                )
    return [r.reserved for r in got], allocation


async def _exists(con: Any, data: OrderCreate) -> bool:
    row = await con.fetchval(
        "SELECT 1 FROM orders WHERE store_id = $1 AND external_id = $2",
        data.store_id,
        data.external_id,
    )
    return row is not None


async def _existing(session: AsyncSession, data: OrderCreate, digest: str) -> Intake:
    row = (
        await session.execute(
            sa.select(_orders.c.id, _orders.c.content_hash).where(
                _orders.c.store_id == data.store_id, _orders.c.external_id == data.external_id
            )
        )
    ).one()
    if row.content_hash != digest:
        raise Conflict(
            "duplicate_order",
            f"Order {data.external_id} already exists in store {data.store_id} with other content.",
            extra={"order_id": str(row.id)},
        )
    return Intake(row.id, created=False)
