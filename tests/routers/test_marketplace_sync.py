"""Canonical snapshots (`PUT /v1/orders/by-external/...`): create, transitions, no-op,
409 sync_conflict, the platform refund hold and the bulk form (API.md "Marketplace sync")."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa

from tests.helpers import ADMIN, Api, assert_problem, unique
from tests.routers.test_orders import stocked_sku


def snapshot(sku_code: str, status: str = "awaiting_shipment", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "platform_status": status,
        "placed_at": "2026-11-11T10:00:00+08:00",
        "paid_at": None if status == "pending_payment" else "2026-11-11T10:01:00+08:00",
        "buyer": {
            "name": "王*",
            "phone": "138****5521",
            "province": "浙江省",
            "city": "杭州市",
            "address": "西湖区文三路***号",
            "platform_buyer_id": "buyer-open-1",
        },
        "items": [{"sku_code": sku_code, "quantity": 2, "unit_price": "59.80"}],
        "discount": "13.00",
        "buyer_memo": "周末送货",
    }
    body.update(extra)
    return body


async def _events(app: Any, order_id: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            sa.text("SELECT type FROM events WHERE data->>'order_id' = :id ORDER BY id"),
            {"id": order_id},
        )
        return [r.type for r in rows]


async def _row(app: Any, order_id: str) -> Any:
    async with app.state.sessionmaker() as session:
        return (
            await session.execute(
                sa.text("SELECT * FROM orders WHERE id = :id"), {"id": int(order_id)}
            )
        ).one()


async def test_snapshot_creates_then_moves_forward(api: Api, app: Any) -> None:
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 10)
    url = f"/v1/orders/by-external/{store['id']}/{unique('PDD')}"
    r = await api.client.put(url, json=snapshot(sku["sku_code"], "pending_payment"), headers=ADMIN)
    assert r.status_code == 201, r.text
    o = r.json()
    assert (o["status"], o["total"], o["buyer"]["phone"]) == (
        "pending_payment",
        "106.60",
        "138****5521",
    )
    row = await _row(app, o["id"])
    assert (row.buyer_memo, row.platform_buyer_id) == ("周末送货", "buyer-open-1")
    got = (await api.client.get(f"/v1/orders/{o['id']}", headers=ADMIN)).json()
    assert (got["buyer_memo"], got["platform_buyer_id"]) == ("周末送货", "buyer-open-1")

    # The same snapshot again: 200, nothing written.
    r = await api.client.put(url, json=snapshot(sku["sku_code"], "pending_payment"), headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == o["version"]

    # Paid, shipped elsewhere, delivered, completed: one request, each transition's event.
    done = snapshot(
        sku["sku_code"],
        "completed",
        shipment={
            "carrier": "ZTO",
            "tracking_number": "73100000000301",
            "shipped_at": "2026-11-11T18:00:00+08:00",
        },
        delivered_at="2026-11-13T10:00:00+08:00",
    )
    r = await api.client.put(url, json=done, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    assert r.json()["shipments"][0]["tracking_number"] == "73100000000301"
    assert await _events(app, o["id"]) == [
        "order.created",
        "order.paid",
        "order.shipped",
        "order.delivered",
        "order.completed",
    ]
    # A shipment made elsewhere needs no ship-back confirmation.
    assert (await _row(app, o["id"])).platform_ship_confirmed_at is not None

    # Backwards: 409 sync_conflict naming both states; nothing changes.
    back = await api.client.put(url, json=snapshot(sku["sku_code"]), headers=ADMIN)
    body = assert_problem(back, 409, "sync_conflict")
    assert body["ours"]["status"] == "completed"
    assert body["platform"]["platform_status"] == "awaiting_shipment"
    assert body["order_id"] == o["id"]
    assert (await _events(app, o["id"]))[-1] == "order.completed"


async def test_lines_that_differ_after_payment_conflict(api: Api) -> None:
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 10)
    url = f"/v1/orders/by-external/{store['id']}/{unique('PDD')}"
    assert (
        await api.client.put(url, json=snapshot(sku["sku_code"]), headers=ADMIN)
    ).status_code == 201
    other = snapshot(
        sku["sku_code"], items=[{"sku_code": sku["sku_code"], "quantity": 3, "unit_price": "59.80"}]
    )
    assert_problem(await api.client.put(url, json=other, headers=ADMIN), 409, "sync_conflict")


async def test_platform_refund_holds_and_releases(api: Api, app: Any) -> None:
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 10)
    url = f"/v1/orders/by-external/{store['id']}/{unique('PDD')}"
    o = (
        await api.client.put(url, json=snapshot(sku["sku_code"], "refund_pending"), headers=ADMIN)
    ).json()
    assert "refund_pending" in o["flags"]
    ship = {"carrier": "ZTO", "tracking_number": "73100000000302"}
    assert_problem(
        await api.client.post(f"/v1/orders/{o['id']}/ship", json=ship, headers=ADMIN),
        409,
        "order_on_hold",
    )
    row = await _row(app, o["id"])
    assert (row.platform_refund_pending, row.refund_pending) == (True, False)
    r = await api.client.put(url, json=snapshot(sku["sku_code"]), headers=ADMIN)
    assert r.status_code == 200, r.text
    assert "refund_pending" not in r.json()["flags"]
    r = await api.client.post(f"/v1/orders/{o['id']}/ship", json=ship, headers=ADMIN)
    assert r.status_code == 200, r.text


async def test_group_pending_then_formed_then_failed_elsewhere(api: Api, app: Any) -> None:
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 10)
    url = f"/v1/orders/by-external/{store['id']}/{unique('PDD')}"
    group = {"group_id": "G" + uuid.uuid4().hex[:8]}
    r = await api.client.put(
        url, json=snapshot(sku["sku_code"], "group_pending", group_buy=group), headers=ADMIN
    )
    assert r.status_code == 201, r.text
    assert r.json()["dispatch_deadline"] is None
    formed = {**group, "formed_at": "2026-11-11T10:30:00+08:00"}
    r = await api.client.put(url, json=snapshot(sku["sku_code"], group_buy=formed), headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["group_buy"]["formed_at"] is not None
    assert "order.group_formed" in await _events(app, r.json()["id"])
    # The platform now says the group failed: it formed here, so that contradicts us.
    failed = snapshot(sku["sku_code"], "group_failed", group_buy=group)
    assert_problem(await api.client.put(url, json=failed, headers=ADMIN), 409, "sync_conflict")

    other = f"/v1/orders/by-external/{store['id']}/{unique('PDD')}"
    r = await api.client.put(
        other, json=snapshot(sku["sku_code"], "group_failed", group_buy=group), headers=ADMIN
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "cancelled"


async def test_bulk_snapshots_per_item(api: Api) -> None:
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 10)
    ext = unique("PDD")
    item = {"store_id": store["id"], "external_id": ext, **snapshot(sku["sku_code"])}
    bad = {"store_id": store["id"], "external_id": unique("PDD"), **snapshot("NO-SUCH-SKU")}
    broken = {"store_id": store["id"], "external_id": unique("PDD"), "platform_status": "weird"}
    r = await api.client.put(
        "/v1/orders/by-external", json={"orders": [item, bad, broken, item]}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 422, 422, 200]
    assert results[1]["error"]["code"] == "unknown_sku"
    assert results[0]["id"] == results[3]["id"]
    r = await api.client.put("/v1/orders/by-external", json={"orders": [item]}, headers=ADMIN)
    assert r.json()["results"][0] == {"index": 0, "status": 200, "id": results[0]["id"]}


async def test_warehouse_cannot_sync(api: Api) -> None:
    store = await api.store("pdd")
    warehouse = await api.key("warehouse", [store["id"]])
    url = f"/v1/orders/by-external/{store['id']}/{unique('PDD')}"
    assert_problem(await api.client.put(url, json=snapshot("X"), headers=warehouse), 403)


async def test_parallel_snapshots_of_one_new_order(api: Api, app: Any) -> None:
    """The same new order sent twice at once: one creates it, the other finds it."""
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 10)
    url = f"/v1/orders/by-external/{store['id']}/{unique('PDD')}"
    body = snapshot(sku["sku_code"])
    answers = await asyncio.gather(
        *(api.client.put(url, json=body, headers=ADMIN) for _ in range(4))
    )
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 201], [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert (await _events(app, answers[0].json()["id"])).count("order.created") == 1
