"""Every event the service emits has the payload docs/events.md shows (issue 8 item 9).

A day of one store drives every emitted event type through the API; each event's ``data``
keys must equal those of one documented example of its type.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app import docsgen
from app.domain.events.service import EVENT_TYPES
from tests.helpers import ADMIN, Api, SettableClock
from tests.routers.test_orders import order_body, stocked_sku

T0 = datetime(2026, 11, 11, 2, 30, tzinfo=UTC)
# Every type is emitted by the day below.
NOT_EMITTED: set[str] = set()


async def _post(api: Api, url: str, body: Any = None, status: int = 200) -> Any:
    r = await api.client.post(url, json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    return r.json()


async def _day_of_events(api: Api, clock: SettableClock) -> list[dict[str, Any]]:
    """Drive one store through every emitted event type; its events, in feed order."""
    clock.set(T0)
    store = await api.store("pdd")
    sid = store["id"]
    a = await stocked_sku(api, sid, 12, low_stock_threshold=10)
    b = await stocked_sku(api, sid, 1)

    def line(sku: dict[str, Any], qty: int) -> list[dict[str, Any]]:
        return [{"sku_id": sku["id"], "quantity": qty, "unit_price": "10.00"}]

    shipped = await _post(api, "/v1/orders", order_body(sid, line(a, 2)), 201)  # stock.low
    unpaid = order_body(sid, line(a, 1))
    del unpaid["paid_at"]
    unpaid = await _post(api, "/v1/orders", unpaid, 201)
    await _post(api, f"/v1/orders/{unpaid['id']}/pay", {"paid_at": "2026-11-11T10:20:00+08:00"})
    short = await _post(api, "/v1/orders", order_body(sid, line(b, 3)), 201)  # stock.out ×2
    await _post(  # order.allocated, sku.relisted
        api, "/v1/stock-movements", {"sku_id": b["id"], "kind": "receive", "quantity": 5}, 201
    )
    group = {"group_id": "G-DOCS-1"}
    formed = await _post(api, "/v1/orders", order_body(sid, line(a, 1), group_buy=group), 201)
    await _post(
        api, f"/v1/orders/{formed['id']}/group-formed", {"formed_at": "2026-11-11T10:25:00+08:00"}
    )
    group = {"group_id": "G-DOCS-2"}
    failed = await _post(api, "/v1/orders", order_body(sid, line(a, 1), group_buy=group), 201)
    await _post(api, f"/v1/orders/{failed['id']}/group-failed", {})
    cancelled = await _post(api, "/v1/orders", order_body(sid, line(a, 1)), 201)
    await _post(api, f"/v1/orders/{cancelled['id']}/cancel", {"reason": "buyer asked"})
    ship = {"carrier": "ZTO", "tracking_number": "73100000007001"}
    await _post(api, f"/v1/orders/{shipped['id']}/ship", ship)
    scan = {"event": "delivered", "at": "2026-11-11T10:29:00+08:00"}
    await _post(api, f"/v1/orders/{shipped['id']}/tracking-events", scan)
    await _post(api, f"/v1/orders/{shipped['id']}/complete")
    refund = {"store_id": sid, "order_id": shipped["id"], "type": "refund"}
    refund |= {"subject": "退款", "body": "茶叶受潮", "external_id": "AS-DOCS-1"}
    ticket = await _post(api, "/v1/tickets", refund, 201)  # ticket.created
    resolve = {"outcome": "refunded", "refund_amount": "5.00"}
    await _post(api, f"/v1/tickets/{ticket['id']}/resolve", resolve)  # order.refunded, resolved
    r = await api.client.patch(f"/v1/skus/{b['id']}", json={"status": "delisted"}, headers=ADMIN)
    assert r.status_code == 200, r.text  # sku.delisted by hand
    promo = {  # promotion.started (created inside its window), promotion.ended
        "store_id": sid,
        "name": "双11",
        "kind": "free_shipping",
        "rules": {},
        "starts_at": "2026-11-11T00:00:00+08:00",
        "ends_at": "2026-11-12T00:00:00+08:00",
    }
    promo = await _post(api, "/v1/promotions", promo, 201)
    await _post(api, f"/v1/promotions/{promo['id']}/end")
    clock.set(T0 + timedelta(hours=25))
    inquiry = {"store_id": sid, "type": "inquiry", "subject": "发票", "body": "开票"}
    await _post(api, "/v1/tickets", inquiry, 201)
    await _post(api, "/v1/admin/sweep")  # order.at_risk, ticket.sla_due_soon
    ship = {"carrier": "ZTO", "tracking_number": "73100000007002"}
    await _post(api, f"/v1/orders/{short['id']}/ship", ship)
    clock.set(T0 + timedelta(hours=50))
    await _post(api, "/v1/admin/sweep")  # order.overdue, order.fake_shipment_risk, sla_breached
    r = await api.client.get("/v1/events", params={"store_id": sid, "limit": 500}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_emitted_payloads_match_the_documented_ones(api: Api, clock: SettableClock) -> None:
    events = await _day_of_events(api, clock)
    documented = docsgen.documented_payloads(docsgen.EVENTS_MD.read_text(encoding="utf-8"))
    seen: set[str] = set()
    for event in events:
        type_, keys = event["type"], frozenset(event["data"])
        seen.add(type_)
        assert keys in documented.get(type_, []), (
            f"{type_} is emitted with data keys {sorted(keys)}; docs/events.md shows "
            f"{[sorted(k) for k in documented.get(type_, [])]}: update its example"
        )
    # The day really covers every type the service emits, so none goes unchecked.
    assert seen == EVENT_TYPES - NOT_EMITTED
    shapes = {(e["type"], frozenset(e["data"])) for e in events}
    assert len({k for t, k in shapes if t == "stock.out"}) == 2  # SKU figures and backorder
    assert len({k for t, k in shapes if t == "order.cancelled"}) == 2  # by hand, group failed
