"""Bulk intake (≤ 1,000 orders): set-based SQL, per-item results, input order kept.

Duplicates inside one batch behave like separate calls in input order: the first creates
the order, a later identical one gets 200 with it, a different one ``409 duplicate_order``.
Stock is allocated in input order under locks taken in SKU-id order, then written with
a handful of ``unnest`` statements whatever the batch size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app import dberrors
from app.auth import Principal
from app.db import driver
from app.domain.errors import Conflict, DomainError, ItemError, NotFound, RuleViolation
from app.domain.inventory import levels
from app.domain.inventory.levels import STATE_COLUMNS, LevelState
from app.domain.order import rules
from app.domain.order.intake import Clock, content_hash, dispatch_clock, line_ref
from app.domain.order.rules import Allocation, Status
from app.domain.order.schemas import OrderCreate
from app.domain.order.typed import OrderData, typed_order
from app.domain.promotion import limits as promotion_limits
from app.domain.promotion import pricing as promo_pricing
from app.domain.store.rules import DispatchPolicy, effective_policy


@dataclass
class _Item:
    index: int
    data: OrderData
    digest: str
    sku_ids: list[int] = field(default_factory=list)
    reserved: list[int] = field(default_factory=list)
    allocation: Allocation = Allocation.FULL
    sums: rules.Totals | None = None
    clock: Clock | None = None
    raw_buyer: Any = None
    promotions: promo_pricing.OrderPromotions | None = None


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """One item's result: ``status`` with the order id, or the typed error."""

    index: int
    status: int
    order_id: int | None = None
    error: ItemError | None = None
    # Of a created or existing order: an ERP sees short orders without a second query.
    allocation: Allocation | None = None


class _Raced(Exception):
    """Another transaction created one of our new orders first: redo the batch."""


class _Contended(Exception):
    """Stock is scarce or moved under an optimistic batch: redo it holding the locks."""


def _fail(index: int, exc: DomainError) -> BulkOutcome:
    return BulkOutcome(index, exc.status, error=exc)


async def take_bulk(
    session: AsyncSession, principal: Principal, raw: list[Any], now: datetime
) -> list[BulkOutcome]:
    """Take up to 1,000 orders; one bad item never fails the others."""
    try:
        return await _take_batch(session, principal, raw, now)
    except Exception as exc:
        # A value that passed validation but that PostgreSQL refused (the set-based
        # statements fail as a whole): find the culprit by taking the orders one by one.
        if dberrors.item_error(exc) is None:
            raise
        return await _take_each(session, principal, raw, now)


async def _take_batch(
    session: AsyncSession, principal: Principal, raw: list[Any], now: datetime
) -> list[BulkOutcome]:
    """The batch under one savepoint, redone if it raced or must hold the locks."""
    optimistic = True
    for _attempt in range(4):
        try:
            async with session.begin_nested():
                return await _take(session, principal, raw, now, optimistic=optimistic)
        except _Raced:
            continue
        except _Contended:
            optimistic = False
    raise Conflict("conflict", "Orders of this batch are being taken concurrently; retry.")


async def _take_each(
    session: AsyncSession, principal: Principal, raw: list[Any], now: datetime
) -> list[BulkOutcome]:
    """The batch one order at a time, each under its own savepoint (the rare slow path)."""
    out: list[BulkOutcome] = []
    for n, value in enumerate(raw):
        try:
            one = await _take_batch(session, principal, [value], now)
        except DomainError as exc:
            out.append(_fail(n, exc))
        except Exception as exc:
            typed = dberrors.item_error(exc)
            if typed is None:
                raise
            out.append(_fail(n, typed))
        else:
            out.append(replace(one[0], index=n))
    return out


async def _take(
    session: AsyncSession,
    principal: Principal,
    raw: list[Any],
    now: datetime,
    *,
    optimistic: bool,
) -> list[BulkOutcome]:
    """One attempt at the batch.

    ``optimistic``: read the balances without locking them and take the stock with one
    conditional UPDATE just before commit, so concurrent batches barely wait on each other.
    It applies only when every order is served in full; scarce stock, or stock that moved
    in between, sends the batch down the exact path, which locks the balances first.
    """
    out: dict[int, BulkOutcome] = {}
    items: list[_Item] = []
    for n, value in enumerate(raw):
        # A body built in-process from typed values (marketplace adapters) is checked in
        # plain Python; pydantic validates the rest, and names the error of a refused one.
        data: OrderData | None = typed_order(value)
        if data is None:
            try:
                data = OrderCreate.model_validate(value)
            except ValidationError as exc:
                out[n] = BulkOutcome(n, 422, error=exc)
                continue
        # The buyer as sent (already validated, no extra keys) is what gets stored.
        items.append(_Item(n, data, content_hash(data), raw_buyer=value["buyer"]))
    parsed = list(items)
    found = await _lookup(session, principal, items)
    pols = found.policies
    items = _keep(items, out, lambda i: _check_store(i, pols))
    _resolve_skus(found, items, out)
    items = _keep(items, out, _check_money)
    new = _split_existing(found, items, out)
    for item in new:
        d = item.data
        group = d.group_buy
        item.clock = dispatch_clock(
            d.paid_at,
            group is not None,
            group.formed_at if group else None,
            d.promised_ship_by,
            pols[d.store_id],
        )
    # Orders and lines are written before the stock is locked, as if fully allocated, so
    # the locks are held only for the allocation itself; the rare exceptions are fixed below.
    new = await _plan_promotions(session, new, out)
    ids = await _insert_orders(session, new, found.new_ids, now)
    if len(ids) != len(new):
        raise _Raced
    await _insert_lines(session, new, ids)
    new = await _redeem(session, new, ids, out)
    sku_ids = {s for i in new for s in i.sku_ids}
    if optimistic:
        states = {sku: found.states[sku] for sku in sku_ids}
    else:
        states = await levels.lock_states(session, sku_ids)
    available = {sku: st.available for sku, st in states.items()}
    accepted: list[_Item] = []
    rejected: list[_Item] = []
    for item in new:
        want = [line.quantity for line in item.data.items]
        used: dict[int, int] = defaultdict(int)
        got: list[int] = []
        for sku, qty in zip(item.sku_ids, want, strict=True):
            take = min(qty, max(0, available[sku] - used[sku]))
            used[sku] += take
            got.append(take)
        if not item.data.allow_backorder and got != want:
            out[item.index] = _fail(
                item.index,
                Conflict("insufficient_stock", "Not enough stock for every line of this order."),
            )
            rejected.append(item)
            continue
        for sku, g in zip(item.sku_ids, got, strict=True):
            available[sku] -= g
        item.reserved = got
        item.allocation = rules.allocation(want, got)
        accepted.append(item)
    added = {sku: states[sku].available - left for sku, left in available.items()}
    touched = {sku: q for sku, q in added.items() if q}
    if optimistic:
        if rejected or any(i.allocation != Allocation.FULL for i in accepted):
            raise _Contended
        after = await _finish_optimistic(session, accepted, ids, touched)
    else:
        after = await _take_stock(session, touched, conditional=False)
        await _copy_reservations(session, accepted, ids)
        for item in rejected:
            if item.promotions is not None:
                await promotion_limits.give_back(session, ids[item.index])
        await _fix_up(session, accepted, rejected, ids)
        await _copy_events(session, accepted, ids)
    await levels.apply_transitions(session, after)
    for item in accepted:
        out[item.index] = BulkOutcome(
            item.index, 201, order_id=ids[item.index], allocation=item.allocation
        )
    _fill_batch_duplicates(parsed, out, ids)
    return [out[n] for n in range(len(raw))]


def _keep(items: list[_Item], out: dict[int, BulkOutcome], check: Any) -> list[_Item]:
    kept = []
    for item in items:
        try:
            check(item)
        except DomainError as exc:
            out[item.index] = _fail(item.index, exc)
        else:
            kept.append(item)
    return kept


@dataclass
class _Found:
    """What one lookup round trip learnt about a batch."""

    policies: dict[int, DispatchPolicy]
    by_code: dict[tuple[int, str], int]
    store_of: dict[int, int]
    states: dict[int, LevelState]
    existing: dict[tuple[int, str], tuple[int, str, Allocation]]
    new_ids: list[int]


# Stores, SKUs with their balances, orders taken before and fresh order ids, in one round
# trip: with two batches on one event loop, every await lets the other batch's Python run.
_LOOKUP = f"""
SELECT
 (SELECT coalesce(json_agg(json_build_array(id, platform, dispatch_policy)), '[]')
    FROM stores WHERE id = ANY($1::bigint[])) AS stores,
 (SELECT coalesce(json_agg(json_build_array({STATE_COLUMNS})), '[]')
    FROM skus s JOIN stock_levels l ON l.sku_id = s.id
   WHERE (s.store_id, s.sku_code) IN (SELECT * FROM unnest($2::bigint[], $3::text[]))
      OR s.id = ANY($4::bigint[])) AS skus,
 (SELECT coalesce(json_agg(json_build_array(o.id, o.store_id, o.external_id, o.content_hash,
                                    o.allocation)),
                  '[]')
    FROM unnest($5::bigint[], $6::text[]) AS k(store_id, ext)
    JOIN orders o ON o.store_id = k.store_id AND o.external_id = k.ext) AS existing,
 (SELECT coalesce(array_agg(nextval(pg_get_serial_sequence('orders', 'id'))), '{{}}')
    FROM generate_series(1, $7::int)) AS new_ids
"""


async def _lookup(session: AsyncSession, principal: Principal, items: list[_Item]) -> _Found:
    stores = sorted({i.data.store_id for i in items if principal.sees_store(i.data.store_id)})
    by_code_keys = sorted(
        {(i.data.store_id, x.sku_code) for i in items for x in i.data.items if x.sku_code}
    )
    wanted_ids = sorted({x.sku_id for i in items for x in i.data.items if x.sku_id})
    keys = sorted({(i.data.store_id, i.data.external_id) for i in items})
    con = await driver(session)
    row = await con.fetchrow(
        _LOOKUP,
        stores,
        [k[0] for k in by_code_keys],
        [k[1] for k in by_code_keys],
        wanted_ids,
        [k[0] for k in keys],
        [k[1] for k in keys],
        len(keys),
    )
    fields = LevelState.__slots__
    states = {r[0]: LevelState(**dict(zip(fields, r, strict=True))) for r in row["skus"]}
    return _Found(
        policies={r[0]: effective_policy(r[1], r[2]) for r in row["stores"]},
        by_code={(st.store_id, st.sku_code): sku for sku, st in states.items()},
        store_of={sku: st.store_id for sku, st in states.items()},
        states=states,
        existing={(r[1], r[2]): (r[0], r[3], Allocation(r[4])) for r in row["existing"]},
        new_ids=list(row["new_ids"]),
    )


def _check_store(item: _Item, pols: dict[int, DispatchPolicy]) -> None:
    if item.data.store_id not in pols:
        raise NotFound("store_not_found", f"Store {item.data.store_id} not found.")


def _check_money(item: _Item) -> None:
    sums = rules.totals(
        [(i.quantity, i.unit_price) for i in item.data.items],
        item.data.discount,
        item.data.shipping_fee,
    )
    if sums.discount > sums.subtotal:
        raise RuleViolation("invalid_discount", "The discount exceeds the subtotal.")
    item.sums = sums


async def _plan_promotions(
    session: AsyncSession, items: list[_Item], out: dict[int, BulkOutcome]
) -> list[_Item]:
    """Price the coupons and attributions of the orders that name them, as single intake
    does (DOMAIN.md §5); an unusable coupon fails its order alone."""
    wanted = [i for i in items if i.data.coupon_code is not None or i.data.promotion_ids]
    if not wanted:
        return items
    con = await driver(session)
    zone_rows = await con.fetch(
        "SELECT id, timezone FROM stores WHERE id = ANY($1::bigint[])",
        sorted({i.data.store_id for i in wanted}),
    )
    tz = {r["id"]: r["timezone"] for r in zone_rows}
    kept = []
    for item in items:
        d = item.data
        if item in wanted:
            pairs = zip(item.sku_ids, d.items, strict=True)
            lines = [(s, i.quantity, i.unit_price) for s, i in pairs]
            try:
                plan = await promo_pricing.plan_order(
                    con,
                    d.store_id,
                    tz[d.store_id],
                    lines,
                    d.discount,
                    d.coupon_code,
                    d.promotion_ids,
                    d.placed_at,
                )
            except DomainError as exc:
                out[item.index] = _fail(item.index, exc)
                continue
            item.promotions = plan
            item.sums = rules.totals(
                [(i.quantity, i.unit_price) for i in d.items],
                d.discount + plan.coupon_amount,
                d.shipping_fee,
            )
        kept.append(item)
    return kept


async def _redeem(
    session: AsyncSession, items: list[_Item], ids: dict[int, int], out: dict[int, BulkOutcome]
) -> list[_Item]:
    """Claim each order's coupon in input order (each under a savepoint) and write its
    discount rows; an order whose coupon ran out is removed and fails alone."""
    if not any(i.promotions is not None for i in items):
        return items
    con = await driver(session)
    kept, gone = [], []
    for item in items:
        plan = item.promotions
        if plan is not None:
            try:
                async with session.begin_nested():
                    await promo_pricing.redeem(
                        con, ids[item.index], plan, promotion_limits.buyer_key(item.data.buyer)
                    )
            except DomainError as exc:
                out[item.index] = _fail(item.index, exc)
                gone.append(ids.pop(item.index))
                continue
        kept.append(item)
    if gone:
        await con.execute("DELETE FROM order_lines WHERE order_id = ANY($1::bigint[])", gone)
        await con.execute("DELETE FROM orders WHERE id = ANY($1::bigint[])", gone)
    return kept


def _resolve_skus(found: _Found, items: list[_Item], out: dict[int, BulkOutcome]) -> None:
    by_code, store_of = found.by_code, found.store_of
    for item in list(items):
        errors = []
        store = item.data.store_id
        for n, line in enumerate(item.data.items):
            if line.sku_code is not None:
                sku = by_code.get((store, line.sku_code))
            else:
                sku = line.sku_id if store_of.get(line.sku_id or 0) == store else None
            if sku is None:
                field_name = "sku_code" if line.sku_code is not None else "sku_id"
                errors.append(
                    {"loc": ["items", n, field_name], "msg": "unknown SKU", "type": "unknown_sku"}
                )
            else:
                item.sku_ids.append(sku)
        if errors:
            out[item.index] = _fail(
                item.index,
                RuleViolation("unknown_sku", "The order names unknown SKUs.", errors=errors),
            )
            items.remove(item)


def _split_existing(found: _Found, items: list[_Item], out: dict[int, BulkOutcome]) -> list[_Item]:
    """Answer retries of existing orders; return the first occurrence of each new one."""
    existing = found.existing
    new: list[_Item] = []
    seen: set[tuple[int, str]] = set()
    for item in items:
        key = (item.data.store_id, item.data.external_id)
        if key in existing:
            order_id, digest, allocation = existing[key]
            out[item.index] = (
                BulkOutcome(item.index, 200, order_id=order_id, allocation=allocation)
                if digest == item.digest
                else _fail(item.index, _duplicate(item))
            )
        elif key in seen:
            continue  # answered after the first occurrence is created
        else:
            seen.add(key)
            new.append(item)
    return new


def _duplicate(item: _Item) -> Conflict:
    return Conflict(
        "duplicate_order",
        f"Order {item.data.external_id} already exists in store {item.data.store_id} "
        "with other content.",
    )


def _fill_batch_duplicates(
    parsed: list[_Item], out: dict[int, BulkOutcome], ids: dict[int, int]
) -> None:
    """Later copies of an order created earlier in the same batch."""
    first = {
        (i.data.store_id, i.data.external_id): (ids[i.index], i.digest, i.allocation)
        for i in parsed
        if i.index in ids
    }
    for item in parsed:
        if item.index in out:
            continue
        key = (item.data.store_id, item.data.external_id)
        if key not in first:  # its first occurrence failed; this copy fails the same way
            out[item.index] = _fail(
                item.index,
                Conflict("duplicate_order", "An earlier copy of this order in the batch failed."),
            )
            continue
        order_id, digest, allocation = first[key]
        out[item.index] = (
            BulkOutcome(item.index, 200, order_id=order_id, allocation=allocation)
            if digest == item.digest
            else _fail(item.index, _duplicate(item))
        )


_ORDER_COLUMNS = (
    "id",
    "store_id",
    "external_id",
    "status",
    "allocation",
    "placed_at",
    "paid_at",
    "group_buy",
    "group_id",
    "group_formed_at",
    "promised_ship_by",
    "clock_started_at",
    "dispatch_deadline",
    "at_risk_at",
    "buyer",
    "buyer_phone",
    "subtotal",
    "discount",
    "shipping_fee",
    "total",
    "coupon_code",
    "promotion_ids",
    "allow_backorder",
    "content_hash",
    "version",
    "created_at",
    "updated_at",
)


async def _insert_orders(
    session: AsyncSession, items: list[_Item], fresh_ids: list[int], now: datetime
) -> dict[int, int]:
    """New orders with ``COPY``, ids drawn from the sequence by the lookup.

    The batch was checked for existing orders; if a concurrent request created one of them
    since, the unique index refuses the COPY and the batch is redone (:class:`_Raced`).
    """
    if not items:
        return {}
    con = await driver(session)
    new_ids = fresh_ids[: len(items)]
    records = []
    for item, order_id in zip(items, new_ids, strict=True):
        d, sums, clock = item.data, item.sums, item.clock
        assert sums is not None
        assert clock is not None
        group = d.group_buy
        records.append(
            (
                order_id,
                d.store_id,
                d.external_id,
                (Status.PENDING_PAYMENT if d.paid_at is None else Status.AWAITING_SHIPMENT).value,
                Allocation.FULL.value,
                d.placed_at,
                d.paid_at,
                group is not None,
                group.group_id if group else None,
                group.formed_at if group else None,
                d.promised_ship_by,
                clock.started_at,
                clock.deadline,
                clock.at_risk_at,
                orjson.dumps(item.raw_buyer).decode(),
                d.buyer.phone,
                sums.subtotal,
                sums.discount,
                sums.shipping_fee,
                sums.total,
                d.coupon_code,
                d.promotion_ids,
                d.allow_backorder,
                item.digest,
                1,
                now,
                now,
            )
        )
    try:
        await con.copy_records_to_table("orders", records=records, columns=_ORDER_COLUMNS)
    except asyncpg.UniqueViolationError as exc:
        raise _Raced from exc
    return {item.index: order_id for item, order_id in zip(items, new_ids, strict=True)}


async def _insert_lines(session: AsyncSession, items: list[_Item], ids: dict[int, int]) -> None:
    """Every line of the batch with ``COPY``, reserved in full for now (fixed up later)."""
    records = [
        (
            ids[item.index],
            n + 1,
            sku,
            line.quantity,
            line.unit_price,
            (line.unit_price * line.quantity).quantize(rules.CENT),
            line.quantity,
        )
        for item in items
        for n, (line, sku) in enumerate(zip(item.data.items, item.sku_ids, strict=True))
    ]
    if records:
        con = await driver(session)
        await con.copy_records_to_table("order_lines", records=records, columns=_LINE_COLUMNS)


_LINE_COLUMNS = (
    "order_id",
    "line_no",
    "sku_id",
    "quantity",
    "unit_price",
    "line_total",
    "reserved",
)
_RESERVATION_COLUMNS = (
    "sku_id",
    "store_id",
    "line_ref",
    "order_id",
    "requested",
    "reserved",
    "deadline",
    "placed_at",
)


async def _take_stock(
    session: AsyncSession, touched: dict[int, int], *, conditional: bool
) -> list[LevelState]:
    """Add the reserved units to the balances; the new balances, for notifications.

    ``conditional``: only where still available; raises :class:`_Contended` otherwise.
    """
    if not touched:
        return []
    con = await driver(session)
    rows = await con.fetch(
        f"UPDATE stock_levels l SET reserved = l.reserved + v.q "
        f"FROM unnest($1::bigint[], $2::int[]) AS v(sku_id, q), skus s "
        f"WHERE l.sku_id = v.sku_id AND s.id = l.sku_id "
        f"AND ($3 OR l.on_hand - l.reserved >= v.q) RETURNING {STATE_COLUMNS}",
        list(touched),
        list(touched.values()),
        not conditional,
    )
    if len(rows) != len(touched):
        raise _Contended
    return [levels.state_of_record(r) for r in rows]


# The optimistic batch's last statement: reservations and events written, then the stock
# taken only where it is still there (one round trip; the stock locks are taken last).
# The balances are locked in SKU-id order first (k), like on every other path: the UPDATE
# alone would lock them in join order, and two batches naming shared SKUs in different
# orders could deadlock.
_FINISH = f"""
WITH k AS MATERIALIZED (
    SELECT sku_id FROM stock_levels WHERE sku_id = ANY($1::bigint[])
     ORDER BY sku_id FOR UPDATE
), r AS (
    INSERT INTO reservations
           (sku_id, store_id, line_ref, order_id, requested, reserved, deadline, placed_at)
    SELECT * FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::int[],
                         $7::int[], $8::timestamptz[], $9::timestamptz[])
), e AS (
    INSERT INTO events (type, store_id, data)
    SELECT t, s, d::jsonb FROM unnest($10::text[], $11::bigint[], $12::text[]) AS v(t, s, d)
)
UPDATE stock_levels l SET reserved = l.reserved + v.q
  FROM unnest($1::bigint[], $2::int[]) AS v(sku_id, q) JOIN k USING (sku_id), skus s
 WHERE l.sku_id = v.sku_id AND s.id = l.sku_id AND l.on_hand - l.reserved >= v.q
RETURNING {STATE_COLUMNS}
"""


async def _finish_optimistic(
    session: AsyncSession, items: list[_Item], ids: dict[int, int], touched: dict[int, int]
) -> list[LevelState]:
    """Reservations (every line reserved in full), events and the conditional stock take."""
    res: list[list[Any]] = [[], [], [], [], [], [], []]
    for item in items:
        d, order_id, clock = item.data, ids[item.index], item.clock
        assert clock is not None
        for n, (line, sku) in enumerate(zip(d.items, item.sku_ids, strict=True)):
            for column, value in zip(
                res,
                (
                    sku,
                    d.store_id,
                    line_ref(order_id, n + 1),
                    order_id,
                    line.quantity,
                    clock.deadline,
                    d.placed_at,
                ),
                strict=True,
            ):
                column.append(value)
    events_rows = _events(items, ids)
    con = await driver(session)
    rows = await con.fetch(
        _FINISH,
        list(touched),
        list(touched.values()),
        *res,
        [e[0] for e in events_rows],
        [e[1] for e in events_rows],
        [e[2] for e in events_rows],
    )
    if len(rows) != len(touched):
        raise _Contended
    return [levels.state_of_record(r) for r in rows]


async def _copy_reservations(
    session: AsyncSession, items: list[_Item], ids: dict[int, int]
) -> None:
    """Every line's reservation with ``COPY``."""
    records = []
    for item in items:
        d, order_id, clock = item.data, ids[item.index], item.clock
        assert clock is not None
        for n, (line, sku, got) in enumerate(
            zip(d.items, item.sku_ids, item.reserved, strict=True)
        ):
            records.append(
                (
                    sku,
                    d.store_id,
                    line_ref(order_id, n + 1),
                    order_id,
                    line.quantity,
                    got,
                    clock.deadline,
                    d.placed_at,
                )
            )
    if records:
        con = await driver(session)
        await con.copy_records_to_table(
            "reservations", records=records, columns=_RESERVATION_COLUMNS
        )


async def _copy_events(session: AsyncSession, items: list[_Item], ids: dict[int, int]) -> None:
    """``order.created`` (and ``stock.out`` for short lines) with ``COPY``."""
    rows = _events(items, ids)
    if rows:
        con = await driver(session)
        await con.copy_records_to_table(
            "events", records=rows, columns=("type", "store_id", "data")
        )


async def _fix_up(
    session: AsyncSession, accepted: list[_Item], rejected: list[_Item], ids: dict[int, int]
) -> None:
    """Short orders get their real allocation; refused strict orders are removed."""
    short = [i for i in accepted if i.allocation != Allocation.FULL]
    if short:
        await session.execute(
            sa.text(
                "UPDATE orders o SET allocation = v.a FROM unnest(CAST(:ids AS bigint[]), "
                "CAST(:a AS text[])) AS v(id, a) WHERE o.id = v.id"
            ),
            {"ids": [ids[i.index] for i in short], "a": [i.allocation.value for i in short]},
        )
        rows = [
            (ids[i.index], n + 1, got)
            for i in short
            for n, (line, got) in enumerate(zip(i.data.items, i.reserved, strict=True))
            if got < line.quantity
        ]
        await session.execute(
            sa.text(
                "UPDATE order_lines l SET reserved = v.r FROM unnest(CAST(:o AS bigint[]), "
                "CAST(:n AS int[]), CAST(:r AS int[])) AS v(o, n, r) "
                "WHERE l.order_id = v.o AND l.line_no = v.n"
            ),
            {"o": [r[0] for r in rows], "n": [r[1] for r in rows], "r": [r[2] for r in rows]},
        )
    if rejected:
        gone = [ids.pop(i.index) for i in rejected]
        await session.execute(
            sa.text("DELETE FROM order_lines WHERE order_id = ANY(CAST(:ids AS bigint[]))"),
            {"ids": gone},
        )
        await session.execute(
            sa.text("DELETE FROM orders WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": gone}
        )


def _events(items: list[_Item], ids: dict[int, int]) -> list[tuple[str, int, str]]:
    """``(type, store_id, data as JSON)`` rows: ``order.created``, ``stock.out`` if short."""
    rows: list[tuple[str, int, str]] = []
    dumps = orjson.dumps
    for item in items:
        d, order_id, sums = item.data, str(ids[item.index]), item.sums
        assert sums is not None
        for sku, line, got in zip(item.sku_ids, d.items, item.reserved, strict=True):
            if got < line.quantity:
                data = {
                    "sku_id": str(sku),
                    "order_id": order_id,
                    "requested": line.quantity,
                    "reserved": got,
                    "reason": "backorder",
                }
                rows.append(("stock.out", d.store_id, dumps(data).decode()))
        created = {
            "order_id": order_id,
            "external_id": d.external_id,
            "status": "pending_payment" if d.paid_at is None else "awaiting_shipment",
            "allocation": item.allocation.value,
            "total": str(sums.total),
        }
        rows.append(("order.created", d.store_id, dumps(created).decode()))
    return rows
