"""Orders over HTTP: intake, idempotency, reservations, lifecycle, shipping guards."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import ADMIN, Api, SettableClock, assert_problem, instant, unique

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def order_body(store_id: str, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "external_id": unique("PDD"),
        "placed_at": "2026-11-11T10:00:00+08:00",
        "paid_at": "2026-11-11T10:01:00+08:00",
        "buyer": {
            "name": "张三",
            "phone": "13800138000",
            "province": "浙江省",
            "city": "杭州市",
            "address": "西湖区文三路 1 号",
        },
        "items": items,
        **extra,
    }


async def stocked_sku(api: Api, store_id: str, on_hand: int, **fields: Any) -> dict[str, Any]:
    sku = await api.sku(store_id, **fields)
    if on_hand:
        r = await api.client.post(
            "/v1/stock-movements",
            json={"sku_id": sku["id"], "kind": "receive", "quantity": on_hand},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
    return sku


async def stock(api: Api, sku_id: str) -> dict[str, Any]:
    return (await api.client.get(f"/v1/skus/{sku_id}/stock", headers=ADMIN)).json()  # type: ignore[no-any-return]


async def test_intake_computes_totals_reserves_and_emits(api: Api, clock: SettableClock) -> None:
    clock.set(T0 + timedelta(hours=1))
    store = await api.store("pdd")
    a = await stocked_sku(api, store["id"], 10)
    b = await stocked_sku(api, store["id"], 10)
    body = order_body(
        store["id"],
        [
            {"sku_code": a["sku_code"], "quantity": 2, "unit_price": "59.90"},
            {"sku_id": b["id"], "quantity": 1, "unit_price": 10},
        ],
        shipping_fee="6",
        discount="5.00",
    )
    r = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["subtotal"], order["discount"], order["shipping_fee"], order["total"]) == (
        "129.80",
        "5.00",
        "6.00",
        "130.80",
    )
    assert order["status"] == "awaiting_shipment"
    assert order["allocation"] == "full"
    assert instant(order["dispatch_deadline"]) == instant("2026-11-13T02:01:00Z")
    assert order["risk"] == "on_track"
    assert order["penalty"] == "0.00"
    assert order["flags"] == []
    assert [i["reserved"] for i in order["items"]] == [2, 1]
    assert order["buyer"]["name"] == "张三"
    assert (await stock(api, a["id"]))["reserved"] == 2
    events = await api.client.get(
        "/v1/events", params={"store_id": store["id"], "type": "order.created"}, headers=ADMIN
    )
    assert [e["data"]["order_id"] for e in events.json()["items"]] == [order["id"]]


async def test_intake_is_idempotent_on_external_id(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    body = order_body(store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": "9.90"}])
    first = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    again = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert (await stock(api, sku["id"]))["reserved"] == 1
    other = {**body, "items": [{"sku_id": sku["id"], "quantity": 2, "unit_price": "9.90"}]}
    assert_problem(
        await api.client.post("/v1/orders", json=other, headers=ADMIN), 409, "duplicate_order"
    )
    parallel = order_body(store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": "9.90"}])
    results = await asyncio.gather(
        *(api.client.post("/v1/orders", json=parallel, headers=ADMIN) for _ in range(8))
    )
    assert sorted(r.status_code for r in results) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    assert (await stock(api, sku["id"]))["reserved"] == 2


async def test_bad_intake_creates_nothing(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    item = {"sku_id": sku["id"], "quantity": 1, "unit_price": "9.90"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            order_body(store["id"], [{"sku_code": "nope", "quantity": 1, "unit_price": "1"}]),
            422,
            "unknown_sku",
        ),
        (order_body(store["id"], [{**item, "quantity": 0}]), 422, "validation_error"),
        (order_body(store["id"], [{**item, "quantity": -1}]), 422, "validation_error"),
        (order_body(store["id"], []), 422, "validation_error"),
        (order_body(store["id"], [{**item, "unit_price": "1.234"}]), 422, "validation_error"),
        (order_body(store["id"], [item], placed_at="2026-11-11T10:00:00"), 422, "validation_error"),
        (order_body(store["id"], [{**item, "sku_code": sku["sku_code"]}]), 422, "validation_error"),
        (order_body(store["id"], [item], discount="100.00"), 422, "invalid_discount"),
        (order_body(store["id"], [item], coupon_code="NOPE"), 409, "coupon_unavailable"),
        (
            order_body(store["id"], [{**item, "quantity": 6}], allow_backorder=False),
            409,
            "insufficient_stock",
        ),
        (order_body("99999999", [item]), 404, "store_not_found"),
    ]
    for body, status, code in cases:
        assert_problem(await api.client.post("/v1/orders", json=body, headers=ADMIN), status, code)
    assert (await stock(api, sku["id"]))["reserved"] == 0
    listed = await api.client.get("/v1/orders", params={"store_id": store["id"]}, headers=ADMIN)
    assert listed.json()["items"] == []


async def test_parallel_strict_orders_never_oversell(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 30)

    async def place() -> int:
        body = order_body(
            store["id"],
            [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1.00"}],
            allow_backorder=False,
        )
        return (await api.client.post("/v1/orders", json=body, headers=ADMIN)).status_code

    statuses = await asyncio.gather(*(place() for _ in range(100)))
    assert statuses.count(201) == 30
    assert statuses.count(409) == 70
    s = await stock(api, sku["id"])
    assert (s["on_hand"], s["reserved"], s["available"]) == (30, 30, 0)


async def test_backorders_fill_by_deadline_then_placed_at(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 0)
    item = [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1.00"}]
    late = await api.client.post(
        "/v1/orders",
        json=order_body(store["id"], item, paid_at="2026-11-11T12:00:00+08:00"),
        headers=ADMIN,
    )
    early = await api.client.post("/v1/orders", json=order_body(store["id"], item), headers=ADMIN)
    assert late.json()["allocation"] == "short"
    assert "stock_short" in late.json()["flags"]
    await api.client.post(
        "/v1/stock-movements",
        json={"sku_id": sku["id"], "kind": "receive", "quantity": 1},
        headers=ADMIN,
    )
    early_now = (await api.client.get(f"/v1/orders/{early.json()['id']}", headers=ADMIN)).json()
    late_now = (await api.client.get(f"/v1/orders/{late.json()['id']}", headers=ADMIN)).json()
    assert (early_now["allocation"], late_now["allocation"]) == ("full", "short")
    allocated = await api.client.get(
        "/v1/events", params={"store_id": store["id"], "type": "order.allocated"}, headers=ADMIN
    )
    assert [e["data"]["order_id"] for e in allocated.json()["items"]] == [early.json()["id"]]


async def test_ship_guards_and_success(api: Api, clock: SettableClock) -> None:
    clock.set(T0 + timedelta(hours=2))
    store = await api.store("taobao")
    sku = await stocked_sku(api, store["id"], 5)
    item = [{"sku_id": sku["id"], "quantity": 2, "unit_price": "150.00"}]
    order = (
        await api.client.post("/v1/orders", json=order_body(store["id"], item), headers=ADMIN)
    ).json()
    oid = order["id"]
    ship = {"carrier": "ZTO", "tracking_number": "73100000000001"}
    assert_problem(
        await api.client.post(
            f"/v1/orders/{oid}/ship", json={**ship, "tracking_number": "AB-1"}, headers=ADMIN
        ),
        422,
        "invalid_tracking_number",
    )
    await api.client.post(f"/v1/orders/{oid}/hold", json={"reason": "风控"}, headers=ADMIN)
    assert_problem(
        await api.client.post(f"/v1/orders/{oid}/ship", json=ship, headers=ADMIN),
        409,
        "order_on_hold",
    )
    await api.client.post(f"/v1/orders/{oid}/release", headers=ADMIN)
    warehouse = await api.key("warehouse", [store["id"]])
    r = await api.client.post(f"/v1/orders/{oid}/ship", json=ship, headers=warehouse)
    assert r.status_code == 200, r.text
    shipped = r.json()
    assert shipped["status"] == "shipped"
    assert shipped["risk"] is None
    assert shipped["shipments"][0]["tracking_number"] == "73100000000001"
    assert "tracking_pattern_mismatch" not in shipped["flags"]
    assert "shipped_late" not in shipped["flags"]
    s = await stock(api, sku["id"])
    assert (s["on_hand"], s["reserved"]) == (3, 0)
    assert_problem(
        await api.client.post(
            f"/v1/orders/{oid}/ship", json={**ship, "carrier": "OTHER"}, headers=ADMIN
        ),
        409,
        "invalid_transition",
    )
    assert_problem(
        await api.client.post(f"/v1/orders/{oid}/cancel", json={"reason": "x"}, headers=ADMIN),
        409,
        "invalid_transition",
    )
    other = (
        await api.client.post(
            "/v1/orders", json=order_body(store["id"], [{**item[0], "quantity": 1}]), headers=ADMIN
        )
    ).json()
    assert_problem(
        await api.client.post(f"/v1/orders/{other['id']}/ship", json=ship, headers=ADMIN),
        409,
        "duplicate_tracking",
    )
    # Late shipment with a mismatched pattern: flags, and the taobao penalty (10 % of 150.00).
    clock.set(T0 + timedelta(hours=60))
    r = await api.client.post(
        f"/v1/orders/{other['id']}/ship",
        json={"carrier": "SF", "tracking_number": "12345678"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert {"shipped_late", "tracking_pattern_mismatch"} <= set(r.json()["flags"])
    assert r.json()["penalty"] == "15.00"


async def test_parallel_ships_with_one_tracking_number(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 10)
    item = [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1.00"}]
    ids = [
        (
            await api.client.post("/v1/orders", json=order_body(store["id"], item), headers=ADMIN)
        ).json()["id"]
        for _ in range(6)
    ]
    ship = {"carrier": "YTO", "tracking_number": "YT1234567890123"}
    results = await asyncio.gather(
        *(api.client.post(f"/v1/orders/{i}/ship", json=ship, headers=ADMIN) for i in ids)
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [409] * 5
    assert all(r.json()["code"] == "duplicate_tracking" for r in results if r.status_code == 409)
    assert (await stock(api, sku["id"]))["on_hand"] == 9


async def test_pay_cancel_track_complete(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 3)
    item = [{"sku_id": sku["id"], "quantity": 2, "unit_price": "1.00"}]
    unpaid = order_body(store["id"], item)
    del unpaid["paid_at"]
    o = (await api.client.post("/v1/orders", json=unpaid, headers=ADMIN)).json()
    assert (o["status"], o["dispatch_deadline"], o["risk"]) == ("pending_payment", None, None)
    r = await api.client.post(
        f"/v1/orders/{o['id']}/pay", json={"paid_at": "2026-11-11T11:00:00+08:00"}, headers=ADMIN
    )
    assert r.json()["status"] == "awaiting_shipment"
    assert instant(r.json()["dispatch_deadline"]) == instant("2026-11-13T03:00:00Z")
    assert_problem(
        await api.client.post(
            f"/v1/orders/{o['id']}/pay",
            json={"paid_at": "2026-11-11T11:00:00+08:00"},
            headers=ADMIN,
        ),
        409,
        "invalid_transition",
    )
    r = await api.client.post(
        f"/v1/orders/{o['id']}/ship",
        json={"carrier": "JT", "tracking_number": "JT1234567890123"},
        headers=ADMIN,
    )
    assert r.status_code == 200
    clock.set(T0 + timedelta(hours=30))
    for event, at in [
        ("picked_up", "2026-11-11T18:00:00+08:00"),
        ("delivered", "2026-11-12T09:00:00+08:00"),
    ]:
        r = await api.client.post(
            f"/v1/orders/{o['id']}/tracking-events", json={"event": event, "at": at}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
    assert r.json()["status"] == "delivered"
    assert [e["event"] for e in r.json()["shipments"][0]["events"]] == ["picked_up", "delivered"]
    r = await api.client.post(f"/v1/orders/{o['id']}/complete", headers=ADMIN)
    assert r.json()["status"] == "completed"
    # Cancel releases reservations.
    c = (
        await api.client.post(
            "/v1/orders", json=order_body(store["id"], [{**item[0], "quantity": 1}]), headers=ADMIN
        )
    ).json()
    assert (await stock(api, sku["id"]))["reserved"] == 1
    r = await api.client.post(
        f"/v1/orders/{c['id']}/cancel", json={"reason": "买家取消"}, headers=ADMIN
    )
    assert r.json()["status"] == "cancelled"
    assert (await stock(api, sku["id"]))["reserved"] == 0
    assert_problem(
        await api.client.post(f"/v1/orders/{c['id']}/complete", headers=ADMIN),
        409,
        "invalid_transition",
    )


async def test_roles_and_filters(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    item = [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1.00"}]
    warehouse = await api.key("warehouse", [store["id"]])
    assert_problem(
        await api.client.post("/v1/orders", json=order_body(store["id"], item), headers=warehouse),
        403,
    )
    integration = await api.key("integration", [store["id"]])
    body = order_body(store["id"], item)
    r = await api.client.post("/v1/orders", json=body, headers=integration)
    assert r.status_code == 201
    r = await api.client.get("/v1/orders", params={"q": body["external_id"]}, headers=warehouse)
    assert [o["external_id"] for o in r.json()["items"]] == [body["external_id"]]
    r = await api.client.get(
        "/v1/orders", params={"store_id": store["id"], "status": "shipped"}, headers=ADMIN
    )
    assert r.json()["items"] == []
    r = await api.client.get(
        "/v1/orders", params={"store_id": store["id"], "risk": "bogus"}, headers=ADMIN
    )
    assert_problem(r, 422)
    other = await api.store()
    assert_problem(await api.client.get(f"/v1/orders/{r.json() and 1}", headers=warehouse), 404)
    assert_problem(
        await api.client.get("/v1/orders", params={"store_id": other["id"]}, headers=warehouse), 404
    )
