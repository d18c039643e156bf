"""Ship-back: our shipments not yet confirmed to the platform, in its ship call's
parameters (research §1.6, §2.6, §3.6, §4.6, §5), with the store's carrier codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db import driver
from app.domain.marketplace.ingest import check_store
from app.domain.marketplace.schemas import ShipCall

API = {
    "pdd": "pdd.logistics.online.send",
    "taobao": "taobao.logistics.offline.send",
    "douyin": "/order/logisticsAdd",
    "jd": "jingdong.pop.order.shipment",
}


def ship_params(
    platform: str, external_id: str, tracking_number: str, code: str | None
) -> dict[str, Any]:
    """The platform ship call's parameters (``code``: the platform's carrier code)."""
    if platform == "pdd":
        return {"order_sn": external_id, "logistics_id": code, "tracking_number": tracking_number}
    if platform == "taobao":
        return {"tid": external_id, "out_sid": tracking_number, "company_code": code}
    if platform == "douyin":
        return {"order_id": external_id, "company_code": code, "logistics_code": tracking_number}
    return {"orderId": external_id, "logiCoprId": code, "logiNo": tracking_number}


_PENDING = """
    SELECT id, external_id, carrier, tracking_number, shipped_at FROM orders
     WHERE store_id = $1 AND tracking_number IS NOT NULL AND platform_ship_confirmed_at IS NULL
       AND id > $2
     ORDER BY id LIMIT $3
"""


async def pending(
    session: AsyncSession,
    principal: Principal,
    platform: str,
    store_id: int,
    after: int,
    limit: int,
) -> list[ShipCall]:
    """Up to ``limit + 1`` unconfirmed shipments after order id ``after``."""
    store = await check_store(session, principal, platform, store_id)
    codes: dict[str, str] = store["carrier_codes"].get(platform, {})
    con = await driver(session)
    out = []
    for r in await con.fetch(_PENDING, store_id, after, limit + 1):
        code = codes.get(r["carrier"])
        out.append(
            ShipCall(
                id=r["id"],
                order_id=r["id"],
                external_id=r["external_id"],
                carrier=r["carrier"],
                tracking_number=r["tracking_number"],
                shipped_at=r["shipped_at"],
                api=API[platform],
                params=ship_params(platform, r["external_id"], r["tracking_number"], code),
                error=None if code else "carrier_code_missing",
                missing=None if code else f"carrier_codes.{platform}.{r['carrier']}",
            )
        )
    return out


async def confirm(
    session: AsyncSession,
    principal: Principal,
    platform: str,
    store_id: int | None,
    ids: list[int],
    now: datetime,
) -> tuple[list[int], list[int]]:
    """Mark shipments sent (again is no error): ``(confirmed, unknown)`` ids."""
    con = await driver(session)
    rows = await con.fetch(
        """
        UPDATE orders o SET platform_ship_confirmed_at = coalesce(o.platform_ship_confirmed_at, $2)
          FROM stores s
         WHERE o.id = ANY($1::bigint[]) AND s.id = o.store_id AND o.tracking_number IS NOT NULL
           AND s.platform = ANY($3::text[]) AND ($4::bigint[] IS NULL OR o.store_id = ANY($4))
           AND ($5::bigint IS NULL OR o.store_id = $5)
        RETURNING o.id
        """,
        sorted(set(ids)),
        now,
        list(_STORE_PLATFORMS[platform]),
        principal.scoped_store_ids(None),
        store_id,
    )
    done = {r["id"] for r in rows}
    return [i for i in ids if i in done], [i for i in ids if i not in done]


_STORE_PLATFORMS = {
    "pdd": ("pdd",),
    "taobao": ("taobao", "tmall"),
    "douyin": ("douyin",),
    "jd": ("jd",),
}
