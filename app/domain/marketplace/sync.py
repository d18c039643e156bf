"""Canonical snapshots: create the order as intake does, or apply the transitions that lead
from our order to what the platform sees (one transaction; 409 ``sync_conflict`` when the
snapshot goes backwards or contradicts us). An unchanged snapshot is a no-op: its hash is
compared with the stored one first, one set-based lookup per batch."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app import dberrors
from app.auth import Principal
from app.db import driver
from app.domain.errors import Conflict, DomainError, ItemError, NotFound, RuleViolation
from app.domain.marketplace import hooks
from app.domain.marketplace.rules import Ours, Step, SyncConflict, Theirs, plan, same_lines
from app.domain.marketplace.schemas import _SnapshotFields
from app.domain.order import bulk, group_buy, lifecycle
from app.domain.order.schemas import PayIn, ShipIn, TrackingIn
from app.domain.types import format_money

CANCEL_REASON = "platform_cancelled"


@dataclass(slots=True)
class SnapItem:
    """One snapshot to apply: where it goes, what it says, and its hash."""

    index: int
    store_id: int
    external_id: str
    # A validated snapshot, or (adapters) a typed view with the same attributes.
    snap: Any
    digest: str
    # The intake body when the caller built it already (adapters), else derived from snap.
    create: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One item's result: 201 created, 200 applied (or unchanged), else the error."""

    index: int
    status: int
    order_id: int | None = None
    error: ItemError | None = None


def snapshot_digest(snap: _SnapshotFields) -> str:
    """The hash of a canonical snapshot (normalised: money two places, times UTC)."""
    dumped = snap.model_dump(mode="json", exclude={"store_id", "external_id"})
    return "s:" + hashlib.sha256(orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)).hexdigest()


_KNOWN = """
    SELECT o.id, o.store_id, o.external_id, h.hash
      FROM unnest($1::bigint[], $2::text[]) AS k(store_id, external_id)
      JOIN orders o ON o.store_id = k.store_id AND o.external_id = k.external_id
      LEFT JOIN order_snapshots h ON h.order_id = o.id
"""


async def known(
    session: AsyncSession, keys: list[tuple[int, str]]
) -> dict[tuple[int, str], tuple[int, str | None]]:
    """``(store, external id) → (order id, last snapshot hash)`` in one round trip."""
    if not keys:
        return {}
    con = await driver(session)
    rows = await con.fetch(_KNOWN, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["store_id"], r["external_id"]): (r["id"], r["hash"]) for r in rows}


def _order_create(item: SnapItem) -> dict[str, Any]:
    """The intake body (``POST /v1/orders``) of a snapshot seen for the first time."""
    if item.create is not None:
        return item.create
    s = item.snap
    return {
        "store_id": item.store_id,
        "external_id": item.external_id,
        "placed_at": s.placed_at,
        "paid_at": s.paid_at,
        "buyer": s.buyer.model_dump(exclude_none=True),
        "items": [
            {"sku_code": i.sku_code, "quantity": i.quantity, "unit_price": i.unit_price}
            if i.sku_code is not None
            else {"sku_id": i.sku_id, "quantity": i.quantity, "unit_price": i.unit_price}
            for i in s.items
        ],
        "shipping_fee": s.shipping_fee,
        "discount": s.discount,
        "group_buy": None if s.group_buy is None else s.group_buy.model_dump(),
        "promised_ship_by": s.promised_ship_by,
        "allow_backorder": s.allow_backorder,
    }


@dataclass(frozen=True, slots=True)
class LookedUp:
    """What :func:`known` answered for ``keys`` earlier in this transaction."""

    keys: frozenset[tuple[int, str]]
    found: dict[tuple[int, str], tuple[int, str | None]]


async def _known_unless_looked_up(
    session: AsyncSession, keys: list[tuple[int, str]], looked_up: LookedUp | None
) -> dict[tuple[int, str], tuple[int, str | None]]:
    if looked_up is None:
        return await known(session, keys)
    found = {k: looked_up.found[k] for k in keys if k in looked_up.found}
    found.update(await known(session, [k for k in keys if k not in looked_up.keys]))
    return found


async def apply(
    session: AsyncSession,
    principal: Principal,
    items: list[SnapItem],
    now: datetime,
    looked_up: LookedUp | None = None,
) -> list[Outcome]:
    """Apply snapshots in input order; one bad item never fails the others. ``looked_up``:
    the caller's own lookup of (some of) the keys (the adapters' no-op check), not repeated."""
    out: dict[int, Outcome] = {}
    firsts: list[SnapItem] = []
    later: list[SnapItem] = []
    seen: set[tuple[int, str]] = set()
    for item in items:
        key = (item.store_id, item.external_id)
        if not principal.sees_store(item.store_id):
            out[item.index] = Outcome(
                item.index,
                404,
                error=NotFound("store_not_found", f"Store {item.store_id} not found."),
            )
        elif key in seen:
            later.append(item)
        else:
            seen.add(key)
            firsts.append(item)
    found = await _known_unless_looked_up(
        session, [(i.store_id, i.external_id) for i in firsts], looked_up
    )
    new: list[SnapItem] = []
    changed: list[tuple[SnapItem, int]] = []
    for item in firsts:
        hit = found.get((item.store_id, item.external_id))
        if hit is None:
            new.append(item)
        elif hit[1] == item.digest:
            out[item.index] = Outcome(item.index, 200, hit[0])  # unchanged: nothing written
        else:
            changed.append((item, hit[0]))
    done: list[tuple[SnapItem, int]] = []
    if new:
        taken = await bulk.take_bulk(session, principal, [_order_create(i) for i in new], now)
        for item, result in zip(new, taken, strict=True):
            if result.error is not None or result.order_id is None:
                out[item.index] = Outcome(item.index, result.status, error=result.error)
            elif result.status == 201:
                s = item.snap
                created = Ours(
                    status="pending_payment" if s.paid_at is None else "awaiting_shipment",
                    group_buy=s.group_buy is not None,
                    group_formed=s.group_buy is not None and s.group_buy.formed_at is not None,
                    refund_hold=False,
                )
                outcome = await _transition(
                    session, principal, item, result.order_id, created, now, 201
                )
                out[item.index] = outcome
                done.append((item, result.order_id))
            else:
                changed.append((item, result.order_id))
    for item, order_id in [*changed, *[(i, 0) for i in later]]:
        if order_id == 0:
            again = await known(session, [(item.store_id, item.external_id)])
            hit = again.get((item.store_id, item.external_id))
            if hit is None:
                out[item.index] = Outcome(
                    item.index,
                    409,
                    error=Conflict(
                        "duplicate_order", "An earlier copy of this order in the batch failed."
                    ),
                )
                continue
            order_id = hit[0]
        outcome = await _update_existing(session, principal, item, order_id, now)
        out[item.index] = outcome
        if outcome.error is None:
            done.append((item, order_id))
    await _store_extras(
        session, principal, [(i, o) for i, o in done if out[i.index].error is None], now
    )
    return [out[n.index] for n in items]


async def _transition(
    session: AsyncSession,
    principal: Principal,
    item: SnapItem,
    order_id: int,
    ours: Ours,
    now: datetime,
    ok_status: int,
    lines: list[tuple[int, str, int, str]] | None = None,
) -> Outcome:
    """Plan and apply the steps under a savepoint; the typed error on failure."""
    snap = item.snap
    theirs = Theirs(snap.platform_status, snap.shipment.tracking_number if snap.shipment else None)
    try:
        steps = plan(ours, theirs)
        if lines is not None and not same_lines(lines, _their_lines(snap)):
            raise SyncConflict("the lines differ from the order's")
    except SyncConflict as exc:
        conflict = _conflict(order_id, ours, snap, exc.reason)
        return Outcome(item.index, conflict.status, order_id, conflict)
    if not steps:
        return Outcome(item.index, ok_status, order_id)  # already there: no savepoint
    try:
        async with session.begin_nested():
            await _run(session, principal, order_id, snap, steps, now)
    except DomainError as exc:
        return Outcome(item.index, exc.status, order_id, exc)
    except ValidationError as exc:  # a value of an unvalidated (adapter) snapshot
        return Outcome(item.index, 422, order_id, exc)
    except Exception as exc:
        typed = dberrors.item_error(exc)
        if typed is None:
            raise
        return Outcome(item.index, typed.status, order_id, typed)
    return Outcome(item.index, ok_status, order_id)


def _their_lines(snap: Any) -> list[tuple[int | None, str | None, int, str]]:
    return [(i.sku_id, i.sku_code, i.quantity, format_money(i.unit_price)) for i in snap.items]


def _conflict(order_id: int, ours: Ours, snap: Any, reason: str) -> Conflict:
    return Conflict(
        "sync_conflict",
        f"The platform's snapshot conflicts with the order: {reason}. Nothing was changed.",
        extra={
            "order_id": str(order_id),
            "ours": {
                "status": ours.status,
                "group_formed": ours.group_formed if ours.group_buy else None,
                "platform_refund_pending": ours.refund_hold,
                "tracking_number": ours.tracking_number,
            },
            "platform": {
                "platform_status": snap.platform_status,
                "tracking_number": snap.shipment.tracking_number if snap.shipment else None,
            },
        },
    )


_LINES = sa.text(
    "SELECT l.sku_id, s.sku_code, l.quantity, l.unit_price FROM order_lines l "
    "JOIN skus s ON s.id = l.sku_id WHERE l.order_id = :id ORDER BY l.line_no"
)


async def _update_existing(
    session: AsyncSession, principal: Principal, item: SnapItem, order_id: int, now: datetime
) -> Outcome:
    """A known order: lock it, plan from its state, check its lines, apply."""
    try:
        row = await lifecycle.lock(session, principal, order_id)
    except DomainError as exc:
        return Outcome(item.index, exc.status, order_id, exc)
    ours = Ours(
        status=row.status,
        group_buy=row.group_buy,
        group_formed=row.group_formed_at is not None,
        refund_hold=row.platform_refund_pending,
        tracking_number=row.tracking_number,
    )
    lines = [
        (r.sku_id, r.sku_code, r.quantity, format_money(r.unit_price))
        for r in await session.execute(_LINES, {"id": order_id})
    ]
    return await _transition(session, principal, item, order_id, ours, now, 200, lines)


async def _run(
    session: AsyncSession,
    principal: Principal,
    order_id: int,
    snap: Any,
    steps: list[Step],
    now: datetime,
) -> None:
    """Each step through the order's own transition (its checks and events)."""
    for step in steps:
        if step is Step.PAY:
            assert snap.paid_at is not None  # the schema requires it past pending_payment
            await lifecycle.pay(
                session, principal, order_id, PayIn(paid_at=snap.paid_at), now, None
            )
        elif step is Step.GROUP_FORMED:
            formed_at = (snap.group_buy.formed_at if snap.group_buy else None) or (
                snap.shipment.shipped_at if snap.shipment else None
            )
            await group_buy.formed(session, principal, order_id, formed_at or now, now, None)
        elif step is Step.GROUP_FAILED:
            await group_buy.failed(session, principal, order_id, None, now, None)
        elif step in (Step.HOLD, Step.RELEASE):
            await session.execute(
                sa.text(
                    "UPDATE orders SET platform_refund_pending = :v, version = version + 1, "
                    "updated_at = :now WHERE id = :id"
                ),
                {"v": step is Step.HOLD, "now": now, "id": order_id},
            )
        elif step is Step.CANCEL:
            await lifecycle.cancel(session, principal, order_id, CANCEL_REASON, now, None)
        elif step is Step.SHIP:
            await _ship_elsewhere(session, principal, order_id, snap.shipment, now)
        elif step is Step.DELIVER:
            at = min(snap.delivered_at or now, now)
            await lifecycle.track(
                session, principal, order_id, TrackingIn(event="delivered", at=at), now
            )
        else:
            await lifecycle.complete(session, principal, order_id, now, None)


async def _ship_elsewhere(
    session: AsyncSession,
    principal: Principal,
    order_id: int,
    shipment: Any,
    now: datetime,
) -> None:
    """Record a shipment the platform reports; it needs no ship-back confirmation."""
    if shipment is None:
        raise RuleViolation(
            "shipment_required",
            "The platform reports the order shipped; give the shipment (carrier, tracking_number).",
            errors=[
                {"loc": ["body", "shipment"], "msg": "required when shipped", "type": "missing"}
            ],
        )
    data = ShipIn(
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        shipped_at=min(shipment.shipped_at, now) if shipment.shipped_at else None,
    )
    await lifecycle.ship(session, principal, order_id, data, now)
    await session.execute(
        sa.text("UPDATE orders SET platform_ship_confirmed_at = :now WHERE id = :id"),
        {"now": now, "id": order_id},
    )


_HASHES = """
    INSERT INTO order_snapshots (order_id, hash)
    SELECT * FROM unnest($1::bigint[], $2::text[])
    ON CONFLICT (order_id) DO UPDATE SET hash = excluded.hash
"""
_EXTRAS = """
    UPDATE orders o SET buyer_memo = coalesce(v.m, o.buyer_memo),
           platform_buyer_id = coalesce(v.b, o.platform_buyer_id)
      FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v(id, m, b)
     WHERE o.id = v.id AND (o.buyer_memo IS DISTINCT FROM coalesce(v.m, o.buyer_memo)
           OR o.platform_buyer_id IS DISTINCT FROM coalesce(v.b, o.platform_buyer_id))
"""


async def _store_extras(
    session: AsyncSession, principal: Principal, done: list[tuple[SnapItem, int]], now: datetime
) -> None:
    """The applied snapshots' hashes, memos and buyer ids (set-based); urges to the hook."""
    if not done:
        return
    con = await driver(session)
    last = {o: i.digest for i, o in done}  # one order twice in a batch: its last snapshot
    await con.execute(_HASHES, list(last), list(last.values()))
    # Only orders with a memo or a buyer id are touched (the wide order row is costly).
    extras = [
        (o, i.snap.buyer_memo, i.snap.buyer.platform_buyer_id)
        for i, o in done
        if i.snap.buyer_memo is not None or i.snap.buyer.platform_buyer_id is not None
    ]
    if extras:
        await con.execute(
            _EXTRAS, [e[0] for e in extras], [e[1] for e in extras], [e[2] for e in extras]
        )
    for item, order_id in done:
        if item.snap.urged_at is not None:
            await hooks.shipping_urged(session, principal, order_id, min(item.snap.urged_at, now))
