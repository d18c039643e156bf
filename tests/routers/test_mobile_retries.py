"""Retries without an Idempotency-Key: the same shipment again is the order, not a conflict;
bulk intake results carry each order's allocation (issue 8 item 6)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.helpers import ADMIN, Api, assert_problem
from tests.routers.test_orders import order_body, stock, stocked_sku


async def _shipped_events(app: Any, order_id: str) -> int:
    async with app.state.sessionmaker() as session:
        count: int = (
            await session.execute(
                sa.text(
                    "SELECT count(*) FROM events WHERE type = 'order.shipped' "
                    "AND data->>'order_id' = :id"
                ),
                {"id": order_id},
            )
        ).scalar_one()
        return count


async def test_the_same_shipment_again_answers_the_order(api: Api, app: Any) -> None:
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 5)
    item = [{"sku_id": sku["id"], "quantity": 2, "unit_price": "10.00"}]
    ids = []
    for _ in range(2):
        r = await api.client.post("/v1/orders", json=order_body(store["id"], item), headers=ADMIN)
        ids.append(r.json()["id"])
    warehouse = await api.key("warehouse", [store["id"]])
    ship = {"carrier": "ZTO", "tracking_number": "73100000000123"}
    url = f"/v1/orders/{ids[0]}/ship"
    version = {"If-Match": '"1"'}
    first = await api.client.post(url, json=ship, headers={**warehouse, **version})
    assert first.status_code == 200, first.text
    # The phone lost the answer and sends it again (as typed: spaces, lower case).
    # Its If-Match names the version the first request moved on from.
    for body in (ship, {**ship, "tracking_number": " 73100000000123 "}):
        again = await api.client.post(url, json=body, headers={**warehouse, **version})
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
    assert await _shipped_events(app, ids[0]) == 1
    assert (await stock(api, sku["id"]))["on_hand"] == 3
    # Another shipment is still a conflict.
    for body in ({**ship, "tracking_number": "73100000000124"}, {**ship, "carrier": "SF"}):
        assert_problem(
            await api.client.post(url, json=body, headers=warehouse), 409, "invalid_transition"
        )
    assert_problem(
        await api.client.post(
            url, json={**ship, "carrier": "SF"}, headers={**warehouse, **version}
        ),
        412,
        "version_mismatch",
    )
    # Through ship-bulk too.
    r = await api.client.post(
        "/v1/orders/ship-bulk",
        json={
            "items": [
                {"order_id": ids[0], **ship},
                {"order_id": ids[1], **ship},
                {"order_id": ids[1], "carrier": "ZTO", "tracking_number": "73100000000125"},
            ]
        },
        headers=warehouse,
    )
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 409, 200]
    assert results[1]["error"]["code"] == "duplicate_tracking"
    assert await _shipped_events(app, ids[0]) == 1


async def test_bulk_intake_results_carry_the_allocation(api: Api) -> None:
    store = await api.store()
    a = await stocked_sku(api, store["id"], 5)
    b = await stocked_sku(api, store["id"], 1)

    def line(sku: dict[str, Any], qty: int) -> list[dict[str, Any]]:
        return [{"sku_id": sku["id"], "quantity": qty, "unit_price": "10.00"}]

    earlier = order_body(store["id"], line(b, 4))
    r = await api.client.post("/v1/orders", json=earlier, headers=ADMIN)
    assert (r.status_code, r.json()["allocation"]) == (201, "partial")
    full = order_body(store["id"], line(a, 2))
    orders = [
        full,
        order_body(store["id"], line(b, 3)),  # b has nothing left
        order_body(store["id"], [*line(a, 1), *line(b, 1)]),
        earlier,  # taken before: 200
        full,  # again in the batch: 200
        {"store_id": store["id"]},  # invalid: no allocation
    ]
    r = await api.client.post("/v1/orders/bulk", json={"orders": orders}, headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["status"], x.get("allocation")) for x in results] == [
        (201, "full"),
        (201, "short"),
        (201, "partial"),
        (200, "partial"),
        (200, "full"),
        (422, None),
    ]
    for x in results[:5]:
        order = (await api.client.get(f"/v1/orders/{x['id']}", headers=ADMIN)).json()
        assert order["allocation"] == x["allocation"]
