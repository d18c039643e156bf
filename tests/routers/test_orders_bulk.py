"""Bulk intake and bulk shipping: per-item results in input order, nothing lost or doubled."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers import ADMIN, Api, assert_problem, instant
from tests.routers.test_orders import order_body, stock, stocked_sku


async def test_bulk_intake_mixed_batch(api: Api) -> None:
    store = await api.store()
    a = await stocked_sku(api, store["id"], 5)
    b = await stocked_sku(api, store["id"], 1)

    def line(sku: dict[str, Any], qty: int) -> list[dict[str, Any]]:
        return [{"sku_id": sku["id"], "quantity": qty, "unit_price": "10.00"}]

    existing = order_body(store["id"], line(a, 1))
    r = await api.client.post("/v1/orders", json=existing, headers=ADMIN)
    assert r.status_code == 201
    first = order_body(store["id"], line(a, 2), promotion_ids=["7", "9"])
    strict_short = order_body(store["id"], line(b, 2), allow_backorder=False)
    backorder = order_body(store["id"], line(b, 3))
    orders = [
        first,  # 0: created
        {**first},  # 1: same again in the batch → 200, same id
        {**first, "items": line(a, 1)},  # 2: same external id, other content → 409
        existing,  # 3: already taken → 200
        strict_short,  # 4: not enough stock, strict → 409 insufficient_stock
        order_body(store["id"], [{"sku_code": "nope", "quantity": 1, "unit_price": "1"}]),  # 5
        {"store_id": store["id"]},  # 6: invalid → 422
        backorder,  # 7: created short/partial
        order_body("999999999", line(a, 1)),  # 8: unknown store → 404
    ]
    r = await api.client.post("/v1/orders/bulk", json={"orders": orders}, headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == list(range(9))
    assert [x["status"] for x in results] == [201, 200, 409, 200, 409, 422, 422, 201, 404]
    assert results[1]["id"] == results[0]["id"]
    assert results[2]["error"]["code"] == "duplicate_order"
    assert results[4]["error"]["code"] == "insufficient_stock"
    assert results[5]["error"]["code"] == "unknown_sku"
    assert results[6]["error"]["errors"]
    assert results[8]["error"]["code"] == "store_not_found"
    assert (await stock(api, a["id"]))["reserved"] == 3
    assert (await stock(api, b["id"]))["reserved"] == 1
    created = (await api.client.get(f"/v1/orders/{results[7]['id']}", headers=ADMIN)).json()
    assert (created["allocation"], created["items"][0]["reserved"]) == ("partial", 1)
    full = (await api.client.get(f"/v1/orders/{results[0]['id']}", headers=ADMIN)).json()
    assert (full["allocation"], full["total"], full["status"]) == (
        "full",
        "20.00",
        "awaiting_shipment",
    )
    assert full["promotion_ids"] == ["7", "9"]
    assert full["buyer"]["name"] == "张三"
    assert instant(full["placed_at"]) == instant("2026-11-11T02:00:00Z")
    again = await api.client.post("/v1/orders/bulk", json={"orders": orders}, headers=ADMIN)
    assert [x["status"] for x in again.json()["results"]][:4] == [200, 200, 409, 200]
    assert (await stock(api, a["id"]))["reserved"] == 3
    events = await api.client.get(
        "/v1/events", params={"store_id": store["id"], "type": "order.created"}, headers=ADMIN
    )
    assert len(events.json()["items"]) == 3


async def test_bulk_limits(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 0)
    body = order_body(store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1"}])
    assert_problem(
        await api.client.post("/v1/orders/bulk", json={"orders": [body] * 1001}, headers=ADMIN), 422
    )
    assert_problem(
        await api.client.post("/v1/orders/bulk", json={"orders": []}, headers=ADMIN), 422
    )
    warehouse = await api.key("warehouse", [store["id"]])
    assert_problem(
        await api.client.post("/v1/orders/bulk", json={"orders": [body]}, headers=warehouse), 403
    )


async def test_bulk_of_a_thousand(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 1500)
    orders = [
        order_body(store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": "9.90"}])
        for _ in range(1000)
    ]
    r = await api.client.post("/v1/orders/bulk", json={"orders": orders}, headers=ADMIN)
    assert {x["status"] for x in r.json()["results"]} == {201}
    s = await stock(api, sku["id"])
    assert (s["on_hand"], s["reserved"]) == (1500, 1000)


async def test_ship_bulk(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 3)
    item = [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1.00"}]
    ids = [
        (
            await api.client.post("/v1/orders", json=order_body(store["id"], item), headers=ADMIN)
        ).json()["id"]
        for _ in range(3)
    ]
    warehouse = await api.key("warehouse", [store["id"]])
    items = [
        {"order_id": ids[0], "carrier": "YTO", "tracking_number": "YT0000000000001"},
        {"order_id": ids[1], "carrier": "YTO", "tracking_number": "YT0000000000001"},
        {"order_id": ids[2], "carrier": "YTO", "tracking_number": "bad!"},
        {"order_id": "99999999", "carrier": "YTO", "tracking_number": "YT0000000000002"},
        {"order_id": ids[2], "carrier": "UPS", "tracking_number": "YT0000000000003"},
    ]
    r = await api.client.post("/v1/orders/ship-bulk", json={"items": items}, headers=warehouse)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 409, 422, 404, 422]
    assert results[1]["error"]["code"] == "duplicate_tracking"
    assert results[2]["error"]["code"] == "invalid_tracking_number"
    assert (await stock(api, sku["id"]))["on_hand"] == 2


async def test_parallel_batches_never_oversell(api: Api) -> None:
    """Concurrent batches, plentiful stock (optimistic path) then scarce (exact path)."""
    store = await api.store()
    plenty = await stocked_sku(api, store["id"], 10_000)
    scarce = await stocked_sku(api, store["id"], 150)

    def batch(sku: dict[str, Any], n: int, strict: bool) -> dict[str, Any]:
        return {
            "orders": [
                order_body(
                    store["id"],
                    [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1.00"}],
                    allow_backorder=not strict,
                )
                for _ in range(n)
            ]
        }

    results = await asyncio.gather(
        *(
            api.client.post("/v1/orders/bulk", json=batch(plenty, 200, True), headers=ADMIN)
            for _ in range(4)
        )
    )
    assert all({x["status"] for x in r.json()["results"]} == {201} for r in results)
    s = await stock(api, plenty["id"])
    assert (s["on_hand"], s["reserved"]) == (10_000, 800)
    results = await asyncio.gather(
        *(
            api.client.post("/v1/orders/bulk", json=batch(scarce, 100, True), headers=ADMIN)
            for _ in range(3)
        )
    )
    created = sum(x["status"] == 201 for r in results for x in r.json()["results"])
    refused = sum(x["status"] == 409 for r in results for x in r.json()["results"])
    assert (created, refused) == (150, 150)
    s = await stock(api, scarce["id"])
    assert (s["on_hand"], s["reserved"], s["available"]) == (150, 150, 0)
    listed = await api.client.get(
        "/v1/orders", params={"store_id": store["id"], "limit": 500}, headers=ADMIN
    )
    assert len(listed.json()["items"]) == 500
