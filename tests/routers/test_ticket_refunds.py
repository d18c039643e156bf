"""Tickets and their orders: holds, urgency, refunds never above what was paid (§2, §4)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from tests.helpers import ADMIN, Api, SettableClock, assert_problem
from tests.routers.test_orders import order_body, stock, stocked_sku
from tests.routers.test_tickets import T0, create, paid_order, ticket_body


async def order_of(api: Api, order_id: str) -> Any:
    r = await api.client.get(f"/v1/orders/{order_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


async def ship(api: Api, order_id: str) -> Any:
    number = f"SF{int(order_id):013d}"
    return await api.client.post(
        f"/v1/orders/{order_id}/ship",
        json={"carrier": "SF", "tracking_number": number},
        headers=ADMIN,
    )


async def resolve(api: Api, ticket_id: str, **body: Any) -> Any:
    return await api.client.post(f"/v1/tickets/{ticket_id}/resolve", json=body, headers=ADMIN)


async def events(api: Api, store_id: str, type_: str) -> list[Any]:
    r = await api.client.get(
        "/v1/events", params={"store_id": store_id, "type": type_, "limit": 500}, headers=ADMIN
    )
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_refund_ticket_holds_order_until_resolved(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    order = await paid_order(api, store["id"])
    a = await create(api, ticket_body(store["id"], type="refund", order_id=order["id"]))
    b = await create(api, ticket_body(store["id"], type="return_refund", order_id=order["id"]))
    held = await order_of(api, order["id"])
    assert "refund_pending" in held["flags"]
    assert held["open_tickets"] == 2
    assert_problem(await ship(api, order["id"]), 409, "order_on_hold")
    r = await resolve(api, a["id"], outcome="refunded", refund_amount="30.00")
    assert r.status_code == 200, r.text
    assert r.json()["refund_amount"] == "30.00"
    still = await order_of(api, order["id"])
    assert "refund_pending" in still["flags"]  # b is still open
    assert still["refunded_amount"] == "30.00"
    assert still["open_tickets"] == 1
    assert (await resolve(api, b["id"], outcome="rejected")).status_code == 200
    free = await order_of(api, order["id"])
    assert "refund_pending" not in free["flags"]
    assert free["open_tickets"] == 0
    assert free["status"] == "awaiting_shipment"
    assert (await ship(api, order["id"])).status_code == 200
    refunded = await events(api, store["id"], "order.refunded")
    assert [(e["data"]["amount"], e["data"]["refunded_amount"]) for e in refunded] == [
        ("30.00", "30.00")
    ]
    assert refunded[0]["data"]["ticket_id"] == a["id"]
    # Reopening a refund ticket on a shipped order holds nothing.
    assert (
        await api.client.post(f"/v1/tickets/{a['id']}/reopen", headers=ADMIN)
    ).status_code == 200
    assert "refund_pending" not in (await order_of(api, order["id"]))["flags"]


async def test_reopen_holds_the_unshipped_order_again(api: Api) -> None:
    store = await api.store()
    order = await paid_order(api, store["id"])
    t = await create(api, ticket_body(store["id"], type="refund", order_id=order["id"]))
    assert (await resolve(api, t["id"], outcome="rejected")).status_code == 200
    assert "refund_pending" not in (await order_of(api, order["id"]))["flags"]
    assert (
        await api.client.post(f"/v1/tickets/{t['id']}/reopen", headers=ADMIN)
    ).status_code == 200
    assert "refund_pending" in (await order_of(api, order["id"]))["flags"]


async def test_shipping_chase_makes_the_order_urgent(api: Api) -> None:
    store = await api.store()
    order = await paid_order(api, store["id"])
    await create(api, ticket_body(store["id"], type="shipping_chase", order_id=order["id"]))
    got = await order_of(api, order["id"])
    assert "urgent" in got["flags"]
    assert "refund_pending" not in got["flags"]
    board = await api.client.get(
        "/v1/dispatch-board", params={"store_id": store["id"]}, headers=ADMIN
    )
    assert board.json()["items"][0]["id"] == order["id"]


async def test_full_refund_of_unshipped_order_cancels_and_releases(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    body = order_body(store["id"], [{"sku_id": sku["id"], "quantity": 2, "unit_price": "50.00"}])
    order = (await api.client.post("/v1/orders", json=body, headers=ADMIN)).json()
    assert (await stock(api, sku["id"]))["reserved"] == 2
    t = await create(api, ticket_body(store["id"], type="refund", order_id=order["id"]))
    r = await resolve(api, t["id"], outcome="refunded", refund_amount="100")
    assert r.status_code == 200, r.text
    got = await order_of(api, order["id"])
    assert got["status"] == "cancelled"
    assert got["refunded_amount"] == "100.00"
    level = await stock(api, sku["id"])
    assert (level["on_hand"], level["reserved"]) == (5, 0)
    cancelled = await events(api, store["id"], "order.cancelled")
    assert cancelled[0]["data"]["refunded"] is True
    assert cancelled[0]["data"]["ticket_id"] == t["id"]


async def test_refund_limits_and_unpaid_orders(api: Api) -> None:
    store = await api.store()
    order = await paid_order(api, store["id"], price="100.00")
    t = await create(api, ticket_body(store["id"], type="refund", order_id=order["id"]))
    body = assert_problem(
        await resolve(api, t["id"], outcome="refunded", refund_amount="100.01"),
        422,
        "refund_exceeds_paid",
    )
    assert body["refundable"] == "100.00"
    assert (await order_of(api, order["id"]))["refunded_amount"] == "0.00"
    got = (await api.client.get(f"/v1/tickets/{t['id']}", headers=ADMIN)).json()
    assert got["status"] == "open"
    assert got["version"] == t["version"]
    sku = await stocked_sku(api, store["id"], 5)
    unpaid_body = order_body(store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": "9"}])
    del unpaid_body["paid_at"]
    unpaid = (await api.client.post("/v1/orders", json=unpaid_body, headers=ADMIN)).json()
    u = await create(api, ticket_body(store["id"], type="refund", order_id=unpaid["id"]))
    assert_problem(
        await resolve(api, u["id"], outcome="refunded", refund_amount="1.00"), 422, "order_not_paid"
    )


async def test_return_refund_restocks_shipped_goods(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 10)
    body = order_body(store["id"], [{"sku_id": sku["id"], "quantity": 3, "unit_price": "20.00"}])
    order = (await api.client.post("/v1/orders", json=body, headers=ADMIN)).json()
    assert (await ship(api, order["id"])).status_code == 200
    assert (await stock(api, sku["id"]))["on_hand"] == 7
    t = await create(api, ticket_body(store["id"], type="return_refund", order_id=order["id"]))
    r = await resolve(
        api, t["id"], outcome="refunded", refund_amount="60.00", restock=True, note="已收到退货"
    )
    assert r.status_code == 200, r.text
    assert r.json()["restock"] is True
    assert r.json()["messages"][-1]["author"] == "note"
    assert (await stock(api, sku["id"]))["on_hand"] == 10
    moves = await api.client.get(
        "/v1/stock-movements", params={"sku_id": sku["id"], "kind": "return"}, headers=ADMIN
    )
    assert [(m["quantity"], m["reference"]) for m in moves.json()["items"]] == [
        (3, f"ticket:{t['id']}")
    ]
    got = await order_of(api, order["id"])
    assert got["status"] == "shipped"
    assert got["refunded_amount"] == "60.00"
    # Restock of goods that never shipped is refused.
    unshipped = await paid_order(api, store["id"])
    u = await create(api, ticket_body(store["id"], type="return_refund", order_id=unshipped["id"]))
    assert_problem(
        await resolve(api, u["id"], outcome="rejected", restock=True), 422, "restock_not_allowed"
    )


async def test_lost_parcel_claim_and_compensation(api: Api) -> None:
    store = await api.store()
    order = await paid_order(api, store["id"])
    assert (await ship(api, order["id"])).status_code == 200
    t = await create(api, ticket_body(store["id"], type="lost_parcel", order_id=order["id"]))
    assert t["priority"] == "high"
    r = await resolve(api, t["id"], outcome="claim_filed", compensation_amount="20.00")
    assert r.status_code == 200, r.text
    assert (r.json()["outcome"], r.json()["compensation_amount"]) == ("claim_filed", "20.00")
    resolved = await events(api, store["id"], "ticket.resolved")
    assert resolved[0]["data"]["compensation_amount"] == "20.00"


async def test_parallel_refunds_never_exceed_paid(api: Api) -> None:
    store = await api.store()
    order = await paid_order(api, store["id"], price="100.00")
    assert (await ship(api, order["id"])).status_code == 200
    tickets = [
        await create(api, ticket_body(store["id"], type="refund", order_id=order["id"]))
        for _ in range(20)
    ]
    results = await asyncio.gather(
        *(resolve(api, t["id"], outcome="refunded", refund_amount="10.00") for t in tickets)
    )
    statuses = Counter(r.status_code for r in results)
    assert statuses == {200: 10, 422: 10}, [r.text for r in results if r.status_code != 200]
    assert {r.json()["code"] for r in results if r.status_code == 422} == {"refund_exceeds_paid"}
    got = await order_of(api, order["id"])
    assert got["refunded_amount"] == "100.00"
    assert got["open_tickets"] == 10
    assert len(await events(api, store["id"], "order.refunded")) == 10


async def test_parallel_refunds_on_unshipped_order_cancel_once(api: Api) -> None:
    store = await api.store()
    order = await paid_order(api, store["id"], price="100.00")
    tickets = [
        await create(api, ticket_body(store["id"], type="refund", order_id=order["id"]))
        for _ in range(12)
    ]
    results = await asyncio.gather(
        *(resolve(api, t["id"], outcome="refunded", refund_amount="10.00") for t in tickets)
    )
    assert Counter(r.status_code for r in results) == {200: 10, 422: 2}
    got = await order_of(api, order["id"])
    assert got["status"] == "cancelled"
    assert got["refunded_amount"] == "100.00"
    assert len(await events(api, store["id"], "order.cancelled")) == 1


async def test_auto_complete_waits_for_open_tickets(api: Api, clock: SettableClock) -> None:
    store = await api.store()
    order = await paid_order(api, store["id"])
    assert (await ship(api, order["id"])).status_code == 200
    t = await create(api, ticket_body(store["id"], type="exchange", order_id=order["id"]))
    clock.set(clock.now() + timedelta(days=11))
    assert (await api.client.post("/v1/admin/sweep", headers=ADMIN)).status_code == 200
    assert (await order_of(api, order["id"]))["status"] == "shipped"
    assert (await resolve(api, t["id"], outcome="replaced")).status_code == 200
    assert (await api.client.post("/v1/admin/sweep", headers=ADMIN)).status_code == 200
    assert (await order_of(api, order["id"]))["status"] == "completed"
