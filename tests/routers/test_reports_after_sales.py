"""Refunds and tickets reach the daily report through the API (no rollup call by hand):
a refund counts on the day it is made, tickets on the days they open and resolve."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.helpers import ADMIN, Api, SettableClock
from tests.routers.test_reports import create, daily, order, stocked

SH = "+08:00"


async def _post(api: Api, url: str, body: Any, status: int) -> Any:
    r = await api.client.post(url, json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    return r.json()


async def test_refunds_and_tickets_through_the_api(api: Api, clock: SettableClock) -> None:
    # D-1 (2026-11-10) 20:00 Shanghai: an order paid, an inquiry opened (due D 20:00).
    clock.set(datetime(2026, 11, 10, 12, 0, tzinfo=UTC))
    sid = (await api.store("pdd"))["id"]
    sku = await stocked(api, sid)
    body = order(sid, sku, f"2026-11-10T19:00:00{SH}", f"2026-11-10T19:01:00{SH}", "100", "A1")
    oid = await create(api, body)
    inquiry = {"store_id": sid, "type": "inquiry", "subject": "发票", "body": "要开发票"}
    late = await _post(api, "/v1/tickets", inquiry, 201)

    # D 10:00: a refund request on the order, answered and refunded 30.00 at D 11:00.
    clock.set(datetime(2026, 11, 11, 2, 0, tzinfo=UTC))
    refund = {"store_id": sid, "order_id": oid, "type": "refund", "subject": "退款"}
    ticket = await _post(api, "/v1/tickets", refund | {"body": "少发了一件"}, 201)
    clock.set(datetime(2026, 11, 11, 3, 0, tzinfo=UTC))
    done = {"outcome": "refunded", "refund_amount": "30.00"}
    await _post(api, f"/v1/tickets/{ticket['id']}/resolve", done, 200)
    # D 21:00: the inquiry resolved after its resolution due time (D-1 20:00 + 24 h).
    clock.set(datetime(2026, 11, 11, 13, 0, tzinfo=UTC))
    await _post(api, f"/v1/tickets/{late['id']}/resolve", {"outcome": "answered"}, 200)

    before = await daily(api, sid, "2026-11-10")
    assert (before["orders_paid"], before["gmv"], before["tickets_opened"]) == (1, "100.00", 1)
    assert (before["refunds"], before["refund_amount"], before["tickets_resolved"]) == (
        0,
        "0.00",
        0,
    )
    day = await daily(api, sid, "2026-11-11")
    assert (day["refunds"], day["refund_amount"]) == (1, "30.00")
    assert (day["tickets_opened"], day["tickets_resolved"], day["ticket_sla_rate"]) == (1, 2, 0.5)
    assert day["refund_rate"] is None  # no order paid on D: the rate has no denominator
    r = await api.client.get(f"/v1/orders/{oid}", headers=ADMIN)
    assert r.json()["refunded_amount"] == "30.00"
