"""Where features meet: refunds give coupon uses back and net the promotion's GMV, and the
marketplace's buyer id (not the masked phone) counts for per-buyer coupon limits."""

from __future__ import annotations

from typing import Any

from tests.helpers import ADMIN, Api, SettableClock, assert_problem
from tests.routers.test_promotions import T0, _coupon_store, _order


async def _post(api: Api, url: str, body: Any, status: int) -> Any:
    r = await api.client.post(url, json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    return r.json()


async def test_per_buyer_limit_counts_the_platform_buyer_id(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store, sku, _ = await _coupon_store(api, per_buyer_limit=1)

    def masked(buyer_id: str) -> dict[str, Any]:
        body = _order(store, sku, phone="138****5521", coupon_code="SAVE10")
        body["buyer"]["platform_buyer_id"] = buyer_id
        return body

    first = await _post(api, "/v1/orders", masked("AAAbbb111"), 201)
    assert first["platform_buyer_id"] == "AAAbbb111"
    # Same masked phone, another buyer: allowed; the same buyer again: refused.
    await _post(api, "/v1/orders", masked("CCCddd222"), 201)
    r = await api.client.post("/v1/orders", json=masked("AAAbbb111"), headers=ADMIN)
    assert_problem(r, 409, "coupon_unavailable")
    # A replay of the first order is the same order (its buyer id is part of its content).
    replay = masked("AAAbbb111") | {"external_id": first["external_id"]}
    r = await api.client.post("/v1/orders", json=replay, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == first["id"]


async def test_full_refund_of_a_shipped_order_gives_the_coupon_back(
    api: Api, clock: SettableClock
) -> None:
    clock.set(T0)
    store, sku, coupon = await _coupon_store(api, usage_limit=1)
    order = await _post(api, "/v1/orders", _order(store, sku, coupon_code="SAVE10"), 201)
    ship = {"carrier": "ZTO", "tracking_number": "73100000009901"}
    await _post(api, f"/v1/orders/{order['id']}/ship", ship, 200)
    perf = await api.client.get(f"/v1/promotions/{coupon['id']}/performance", headers=ADMIN)
    assert (perf.json()["orders"], perf.json()["gmv"]) == (1, "90.00")

    ticket = {"store_id": store["id"], "order_id": order["id"], "type": "refund"}
    ticket |= {"subject": "退款", "body": "不想要了"}
    t1 = await _post(api, "/v1/tickets", ticket | {"external_id": "AS-X-1"}, 201)
    await _post(
        api,
        f"/v1/tickets/{t1['id']}/resolve",
        {"outcome": "refunded", "refund_amount": "40.00"},
        200,
    )
    perf = await api.client.get(f"/v1/promotions/{coupon['id']}/performance", headers=ADMIN)
    assert (perf.json()["orders"], perf.json()["gmv"]) == (1, "50.00")  # net of the refund
    r = await api.client.post(
        "/v1/orders", json=_order(store, sku, coupon_code="SAVE10"), headers=ADMIN
    )
    assert_problem(r, 409, "coupon_unavailable")  # the one use is still taken

    t2 = await _post(api, "/v1/tickets", ticket | {"external_id": "AS-X-2"}, 201)
    await _post(
        api,
        f"/v1/tickets/{t2['id']}/resolve",
        {"outcome": "refunded", "refund_amount": "50.00"},
        200,
    )
    perf = (
        await api.client.get(f"/v1/promotions/{coupon['id']}/performance", headers=ADMIN)
    ).json()
    assert (perf["orders"], perf["gmv"], perf["discount_cost"]) == (0, "0.00", "0.00")
    # Fully refunded: the use came back, so the coupon redeems again.
    await _post(api, "/v1/orders", _order(store, sku, coupon_code="SAVE10"), 201)
