"""Store time (API.md "Conventions": Time): every instant of a store's resource leaves in
the store's own offset at that instant, in responses, event payloads and the feed; any
offset is accepted on input. Resources of no store (API keys) stay in UTC."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.helpers import ADMIN, Api, SettableClock, unique
from tests.routers.test_orders import T0, order_body

# An instant anywhere in a string: a whole value, or inside an error's detail.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?")


def instants(value: Any, path: str = "") -> Iterator[tuple[str, datetime]]:
    """Every ISO 8601 instant in the strings of a JSON document, with its key path."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from instants(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for inner in value:
            yield from instants(inner, f"{path}[]")
    elif isinstance(value, str):
        for match in _ISO.finditer(value):
            yield path, datetime.fromisoformat(match.group())


class Session:
    """Calls the API as one client would and checks every instant of every answer."""

    def __init__(self, client: httpx.AsyncClient, tz: str) -> None:
        self.client = client
        self.zone = ZoneInfo(tz)
        self.seen: set[str] = set()
        self.wrong: list[str] = []

    async def call(self, method: str, url: str, expect: int | None = None, **kwargs: Any) -> Any:
        """The JSON answer of a call (2xx unless ``expect``), its instants checked."""
        r = await self.client.request(method, url, headers=ADMIN, **kwargs)
        if expect is None:
            assert r.is_success, f"{method} {url}: {r.status_code} {r.text}"
        else:
            assert r.status_code == expect, f"{method} {url}: {r.status_code} {r.text}"
        body = r.json()
        for path, at in instants(body):
            key = path.rsplit(".", 1)[-1].removesuffix("[]")
            self.seen.add(key)
            # The zone's offset at that very instant (a naive time fails here too).
            if at.tzinfo is None or at.utcoffset() != at.astimezone(self.zone).utcoffset():
                self.wrong.append(f"{method} {url} {path} = {at.isoformat()}")
        return body


async def _until_in_feed(
    client: httpx.AsyncClient, params: dict[str, Any], types: set[str]
) -> None:
    """Wait until the feed shows events of ``types``: it shows an event once every older
    transaction has ended, and other tests' databases on this server count too."""

    async def poll() -> None:
        while True:
            r = await client.get("/v1/events", params=params, headers=ADMIN)
            if types <= {e["type"] for e in r.json()["items"]}:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout=30)


def _tracking() -> str:
    return "731" + "".join(random.choices("0123456789", k=11))


async def _script(s: Session, clock: SettableClock, tz: str) -> None:
    """Every order, SKU, stock, store and event endpoint of one store, in a day's order."""
    clock.set(T0 + timedelta(hours=1))
    store = await s.call(
        "POST",
        "/v1/stores",
        json={"code": unique("tz"), "name": "店", "platform": "pdd", "timezone": tz},
    )
    sid = store["id"]
    await s.call("GET", f"/v1/stores/{sid}")
    await s.call("GET", "/v1/stores", params={"q": store["code"]})
    await s.call("PATCH", f"/v1/stores/{sid}", json={"name": "店 2"})
    await s.call("PUT", f"/v1/stores/{sid}/targets/2026-11", json={"sales_target": "1000"})
    await s.call("GET", f"/v1/stores/{sid}/targets/2026-11")
    await s.call("PUT", f"/v1/stores/{sid}/traffic/2026-11-11", json={"visitors": 3, "ad_spend": 1})
    await s.call("GET", f"/v1/stores/{sid}/traffic/2026-11-11")

    sku = await s.call(
        "POST",
        "/v1/skus",
        json={"store_id": sid, "sku_code": unique("k"), "title": "茶", "price": 10},
    )
    await s.call(
        "POST", "/v1/stock-movements", json={"sku_id": sku["id"], "kind": "receive", "quantity": 50}
    )
    await s.call("PATCH", f"/v1/skus/{sku['id']}", json={"low_stock_threshold": 45})
    await s.call("GET", f"/v1/skus/{sku['id']}")
    await s.call("GET", "/v1/skus", params={"store_id": sid})
    await s.call("GET", f"/v1/skus/{sku['id']}/stock")
    await s.call("GET", "/v1/stock-movements", params={"store_id": sid})
    take = await s.call(
        "POST",
        "/v1/stocktakes",
        json={"store_id": sid, "lines": [{"sku_id": sku["id"], "counted": 60}]},
    )
    await s.call("GET", f"/v1/stocktakes/{take['id']}")
    await s.call(
        "PUT",
        "/v1/stock-levels",
        json={"items": [{"store_id": sid, "sku_code": sku["sku_code"], "on_hand": 60}]},
    )

    line = [{"sku_id": sku["id"], "quantity": 1, "unit_price": "10"}]
    # A summer instant too: New York's offset differs between the two (daylight saving).
    shipped = await s.call(
        "POST", "/v1/orders", json=order_body(sid, line, placed_at="2026-07-01T10:00:00-04:00")
    )
    unpaid = order_body(sid, line)
    del unpaid["paid_at"]
    unpaid = await s.call("POST", "/v1/orders", json=unpaid)
    await s.call("POST", f"/v1/orders/{unpaid['id']}/pay", json={"paid_at": "2026-11-11T02:05:00Z"})
    group = await s.call(
        "POST", "/v1/orders", json=order_body(sid, line, group_buy={"group_id": unique("G")})
    )
    await s.call(
        "POST",
        f"/v1/orders/{group['id']}/group-formed",
        json={"formed_at": "2026-11-11T11:00:00+08:00"},
    )
    # Problems that name an instant name it in store time too.
    await s.call(
        "POST",
        f"/v1/orders/{group['id']}/group-formed",
        expect=409,
        json={"formed_at": "2026-11-11T11:30:00+08:00"},
    )
    bulk = await s.call("POST", "/v1/orders/bulk", json={"orders": [order_body(sid, line)] * 2})
    held = bulk["results"][0]["id"]
    await s.call("POST", f"/v1/orders/{held}/hold", json={"reason": "地址待确认"})
    await s.call("POST", f"/v1/orders/{held}/release")
    early = {"carrier": "ZTO", "tracking_number": _tracking(), "shipped_at": "2026-11-11T01:00:00Z"}
    await s.call("POST", f"/v1/orders/{held}/ship", expect=422, json=early)
    await s.call("POST", f"/v1/orders/{unpaid['id']}/cancel", json={"reason": "买家取消"})
    await s.call("GET", "/v1/dispatch-board", params={"store_id": sid})
    await s.call("GET", "/v1/pick-list", params={"store_id": sid})
    await s.call("GET", "/v1/low-stock", params={"store_id": sid})
    await s.call("GET", "/v1/replenishment", params={"store_id": sid})
    # The CSV has no instants; its file is named by the store's date (11-10 in New York).
    r = await s.client.get(
        "/v1/replenishment", params={"store_id": sid}, headers={**ADMIN, "Accept": "text/csv"}
    )
    day = clock.now().astimezone(s.zone).date()
    assert f"-{day.isoformat()}.csv" in r.headers["content-disposition"]

    clock.set(T0 + timedelta(hours=3))
    oid = shipped["id"]
    await s.call(
        "POST", f"/v1/orders/{oid}/ship", json={"carrier": "ZTO", "tracking_number": _tracking()}
    )
    for event, minutes in (("picked_up", 150), ("delivered", 170)):
        at = (T0 + timedelta(minutes=minutes)).astimezone(ZoneInfo("America/Los_Angeles"))
        await s.call(
            "POST", f"/v1/orders/{oid}/tracking-events", json={"event": event, "at": at.isoformat()}
        )
    await s.call("POST", f"/v1/orders/{oid}/complete")
    await s.call(
        "POST",
        "/v1/orders/ship-bulk",
        json={
            "items": [{"order_id": group["id"], "carrier": "ZTO", "tracking_number": _tracking()}]
        },
    )
    # Near, then past the deadlines and the pickup grace: at-risk, overdue, fake-shipment.
    for at in (T0 + timedelta(hours=40), T0 + timedelta(days=4)):
        clock.set(at)
        await s.call("POST", "/v1/admin/sweep")
    await s.call("GET", f"/v1/orders/{oid}")
    await s.call("GET", "/v1/orders", params={"store_id": sid})
    feed = {"store_id": sid, "limit": 500}
    await _until_in_feed(s.client, feed, {"order.at_risk", "order.fake_shipment_risk"})
    await s.call("GET", "/v1/events", params=feed)
    await s.call("GET", "/v1/audit-entries", params={"store_id": sid})


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/New_York"])
async def test_every_instant_is_in_store_time(api: Api, clock: SettableClock, tz: str) -> None:
    s = Session(api.client, tz)
    await _script(s, clock, tz)
    assert s.wrong == []
    # The walk saw the instants of every kind of answer, payloads included.
    assert {
        "created_at",
        "updated_at",
        "placed_at",
        "paid_at",
        "dispatch_deadline",
        "shipped_at",
        "at",  # tracking scans and audit entries
        "formed_at",
        "completed_at",
        "generated_at",
        "occurred_at",
        "at_risk_at",  # order.at_risk payload
        "pickup_due",  # order.fake_shipment_risk payload
        "delivered_at",
        "detail",  # "already formed at …", "cannot be before the payment (…)"
    } <= s.seen


async def test_resources_of_no_store_stay_in_utc(api: Api) -> None:
    key = await api.client.post(
        "/v1/api-keys",
        json={"name": unique("k"), "role": "operator", "store_ids": None},
        headers=ADMIN,
    )
    assert key.status_code == 201, key.text
    keys = (await api.client.get("/v1/api-keys", headers=ADMIN)).json()["items"]
    audit = (await api.client.get("/v1/audit-entries", headers=ADMIN)).json()["items"]
    global_entries = [a for a in audit if a["store_id"] is None]
    assert global_entries
    for doc in (keys, global_entries):
        found = list(instants(doc))
        assert found
        assert {at.utcoffset() for _, at in found} == {timedelta(0)}
