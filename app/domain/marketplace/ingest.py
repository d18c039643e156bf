"""Platform payloads → snapshots → orders. Unchanged payloads cost one lookup per batch;
what cannot be mapped (unknown SKU or status, a malformed field, no order id) is kept whole
in the review queue and reported ``queued``; nothing is silently skipped."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import ModuleType
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db import driver
from app.domain.errors import Conflict, not_found
from app.domain.marketplace import douyin, jd, pdd, queue, sync, taobao
from app.domain.marketplace.common import Mapped, MappingError
from app.domain.marketplace.sync import SnapItem
from app.domain.order.typed import TypedGroup
from app.errors import item_problem

ADAPTERS: dict[str, ModuleType] = {"pdd": pdd, "taobao": taobao, "douyin": douyin, "jd": jd}
# The seller-code field of a line, per platform (named in unknown-SKU problems).
CODE_FIELDS = {"pdd": "outer_id", "taobao": "outer_sku_id", "douyin": "code", "jd": "outerSkuId"}
STORE_PLATFORMS = {
    "pdd": ("pdd",),
    "taobao": ("taobao", "tmall"),
    "douyin": ("douyin",),
    "jd": ("jd",),
}


def payload_digest(order: Any) -> str:
    """The hash of a platform order object as parsed (numbers as Decimal), keys in the order
    sent (a platform sends its fields in a fixed order; a reordered object only misses the
    no-op path). Numbers are hashed as the Decimal reads them (``59.8``, ``59.80``, ``1E+2``:
    the same number written differently is another payload)."""
    try:
        body = orjson.dumps(order, default=_number)
    except TypeError:  # ints beyond 64 bits: the slower standard library
        body = json.dumps(order, default=str).encode()
    return "p:" + hashlib.sha256(body).hexdigest()


def _number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"not JSON: {type(value).__name__}")


@dataclass(slots=True)
class _Entry:
    index: int
    platform_id: str | None
    digest: str
    raw: Any
    mapped: Mapped | None = None


async def check_store(
    session: AsyncSession, principal: Principal, platform: str, store_id: int
) -> dict[str, Any]:
    """The store (404 outside the key's scope); ``409 platform_mismatch`` if it sells elsewhere."""
    if not principal.sees_store(store_id):
        raise not_found("store", store_id)
    con = await driver(session)
    row = await con.fetchrow("SELECT platform, carrier_codes FROM stores WHERE id = $1", store_id)
    if row is None:
        raise not_found("store", store_id)
    if row["platform"] not in STORE_PLATFORMS[platform]:
        raise Conflict(
            "platform_mismatch",
            f"Store {store_id} sells on {row['platform']}, not {platform}.",
        )
    codes = row["carrier_codes"]
    if isinstance(codes, str):
        codes = orjson.loads(codes)
    return {"platform": row["platform"], "carrier_codes": codes or {}}


async def ingest(
    session: AsyncSession,
    principal: Principal,
    platform: str,
    store_id: int,
    orders: list[Any],
    now: datetime,
) -> list[dict[str, Any]]:
    """Map and apply ``orders``, parsed with Decimal numbers (never a binary float).

    Its routes are :func:`app.routing.batch` routes: the collector is paused over them."""
    module = ADAPTERS[platform]
    store = await check_store(session, principal, platform, store_id)
    entries = []
    for n, order in enumerate(orders):
        inner = module.unwrap(order)
        entries.append(_Entry(n, module.external_id(inner), payload_digest(order), order))
    results: dict[int, dict[str, Any]] = {}
    keys = [(store_id, e.platform_id) for e in entries if e.platform_id is not None]
    found = await sync.known(session, keys)
    todo: list[_Entry] = []
    for e in entries:
        hit = found.get((store_id, e.platform_id)) if e.platform_id is not None else None
        if hit is not None and hit[1] == e.digest:
            results[e.index] = {"index": e.index, "status": 200, "id": str(hit[0])}
        else:
            todo.append(e)
    if not todo:
        return [results[n] for n in range(len(orders))]
    unmapped: list[tuple[_Entry, dict[str, Any]]] = []
    for e in todo:
        try:
            e.mapped = module.map_order(e.raw)
        except MappingError as exc:
            unmapped.append((e, _problem(exc.field, exc.msg, "unmapped_field")))
    mapped = [e for e in todo if e.mapped is not None]
    refs = await _resolve_skus(session, platform, store_id, mapped)
    snaps: list[SnapItem] = []
    carriers = store["carrier_codes"].get(platform, {})
    for e in mapped:
        assert e.mapped is not None
        try:
            view, create = _snapshot(e.mapped, refs, carriers, platform, store_id)
        except MappingError as exc:
            code = "unknown_sku" if "SKU" in exc.msg else "unmapped_field"
            unmapped.append((e, _problem(exc.field, exc.msg, code)))
            continue
        snaps.append(SnapItem(e.index, store_id, e.mapped.external_id, view, e.digest, create))
    outcomes = await sync.apply(
        session, principal, snaps, now, sync.LookedUp(frozenset(keys), found)
    )
    snap_of = {s.index: s for s in snaps}
    by_index = {e.index: e for e in mapped}
    resolved: list[tuple[str, int]] = []
    for outcome in outcomes:
        if isinstance(outcome.error, ValidationError):
            # A mapped value intake refuses (a name too long, paid before placed…): queued.
            first = outcome.error.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "order"
            unmapped.append(
                (by_index[outcome.index], _problem(loc, first["msg"], "unmapped_field"))
            )
        elif outcome.error is None:
            results[outcome.index] = {
                "index": outcome.index,
                "status": outcome.status,
                "id": str(outcome.order_id),
            }
            resolved.append((snap_of[outcome.index].external_id, outcome.order_id or 0))
        else:
            item: dict[str, Any] = {
                "index": outcome.index,
                "status": outcome.status,
                "error": item_problem(outcome.error),
            }
            if outcome.order_id is not None:
                item["id"] = str(outcome.order_id)
            results[outcome.index] = item
    await queue.resolve(session, store_id, platform, resolved)
    if unmapped:
        ids = await queue.keep(
            session,
            store_id,
            platform,
            [(e.platform_id, e.platform_id or e.digest, e.raw, problem) for e, problem in unmapped],
        )
        for (e, problem), queue_id in zip(unmapped, ids, strict=True):
            results[e.index] = {
                "index": e.index,
                "status": 202,
                "id": str(queue_id),
                "queued": True,
                "error": problem,
            }
    return [results[n] for n in range(len(orders))]


def _problem(field: str, msg: str, code: str) -> dict[str, Any]:
    detail = (
        f"Kept for review: {field}: {msg}. Fix the mapping (SKU platform_refs or seller code) "
        "and retry it from the review queue."
    )
    return {
        "type": "about:blank",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": detail,
        "code": code,
        "errors": [
            {"loc": field.replace("]", "").replace("[", ".").split("."), "msg": msg, "type": code}
        ],
    }


async def _resolve_skus(
    session: AsyncSession, platform: str, store_id: int, entries: list[_Entry]
) -> dict[str, dict[str, int]]:
    """Our SKU ids by seller code and by the platform's SKU id, one round trip."""
    lines = [ln for e in entries if e.mapped for ln in e.mapped.lines]
    codes = sorted({ln.sku_code for ln in lines if ln.sku_code})
    ids = sorted({ln.platform_sku_id for ln in lines if ln.platform_sku_id})
    if not codes and not ids:
        return {"code": {}, "ref": {}}
    con = await driver(session)
    row = await con.fetchrow(
        """
        SELECT (SELECT coalesce(json_object_agg(sku_code, id), '{}') FROM skus
                 WHERE store_id = $1 AND sku_code = ANY($2::text[])) AS by_code,
               (SELECT coalesce(json_object_agg(platform_sku_id, sku_id), '{}')
                  FROM sku_platform_refs
                 WHERE store_id = $1 AND platform = $3
                   AND platform_sku_id = ANY($4::text[])) AS by_ref
        """,
        store_id,
        codes,
        platform,
        ids,
    )
    by_code, by_ref = row["by_code"], row["by_ref"]
    if isinstance(by_code, str):
        by_code, by_ref = orjson.loads(by_code), orjson.loads(by_ref)
    return {"code": by_code, "ref": by_ref}


@dataclass(slots=True)
class _Line:
    sku_id: int
    quantity: int
    unit_price: Decimal
    sku_code: None = None


@dataclass(slots=True)
class _Shipment:
    carrier: str
    tracking_number: str
    shipped_at: datetime | None


@dataclass(slots=True)
class _Buyer:
    platform_buyer_id: str | None


@dataclass(slots=True)
class _View:
    """A mapped order in the snapshot's attribute names (what sync.apply reads)."""

    platform_status: str
    paid_at: datetime | None
    buyer: _Buyer
    items: list[_Line]
    group_buy: TypedGroup | None
    shipment: _Shipment | None
    delivered_at: datetime | None
    urged_at: datetime | None
    buyer_memo: str | None


def _snapshot(
    m: Mapped,
    refs: dict[str, dict[str, int]],
    carriers: dict[str, str],
    platform: str,
    store_id: int,
) -> tuple[_View, dict[str, Any]]:
    """The snapshot view of a mapped order and its intake body, SKUs resolved (seller
    code first). Plain objects, not models: intake validates the body of an order it
    creates (its refusals are queued like any mapping problem), and pydantic models for
    every order cost as much as the rest of the mapping."""
    lines = []
    for line in m.lines:
        sku = refs["code"].get(line.sku_code) if line.sku_code else None
        if sku is None and line.platform_sku_id:
            sku = refs["ref"].get(line.platform_sku_id)
        if sku is None:
            raise MappingError(
                f"{line.loc}.{CODE_FIELDS[platform]}",
                f"unknown SKU (seller code {line.sku_code!r}, platform sku_id "
                f"{line.platform_sku_id!r})",
            )
        lines.append(_Line(sku, line.quantity, line.unit_price))
    shipment = None
    if m.shipment is not None:
        ours = {code: carrier for carrier, code in carriers.items()}
        carrier = ours.get(m.shipment.carrier_code or "", "OTHER")
        shipment = _Shipment(carrier, m.shipment.tracking_number, m.shipment.shipped_at)
    g = m.group_buy
    group = None if g is None else TypedGroup(g["group_id"], g["formed_at"])
    buyer = dict(m.buyer)
    view = _View(
        platform_status=m.platform_status,
        paid_at=m.paid_at,
        buyer=_Buyer(buyer.pop("platform_buyer_id", None)),
        items=lines,
        group_buy=group,
        shipment=shipment,
        delivered_at=m.delivered_at,
        urged_at=m.urged_at,
        buyer_memo=m.buyer_memo,
    )
    create = {
        "store_id": store_id,
        "external_id": m.external_id,
        "placed_at": m.placed_at,
        "paid_at": m.paid_at,
        "buyer": buyer,
        "items": [
            {"sku_id": x.sku_id, "quantity": x.quantity, "unit_price": x.unit_price} for x in lines
        ],
        "shipping_fee": m.shipping_fee,
        "discount": m.discount,
        "group_buy": None
        if g is None
        else {"group_id": g["group_id"], "formed_at": g["formed_at"]},
        "promised_ship_by": m.promised_ship_by,
    }
    return view, create
