"""Promotions over HTTP: CRUD and bad input, floor checks, quotes, coupons at intake,
limits under parallel orders, give-back on cancel, attribution, performance, calendar."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain.promotion.calendar import sweep as calendar_sweep
from tests.helpers import ADMIN, Api, SettableClock, assert_problem, unique
from tests.routers.test_orders import order_body, stocked_sku
from tests.routers.test_stock_concurrency import _events

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai


def promo_body(store_id: str, kind: str, rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "name": "双11",
        "kind": kind,
        "rules": rules,
        "starts_at": "2026-11-10T00:00:00+08:00",
        "ends_at": "2026-11-20T00:00:00+08:00",
        **extra,
    }


async def create(api: Api, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = await api.client.post("/v1/promotions", json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def count(api: Api, store_id: str) -> int:
    r = await api.client.get(f"/v1/promotions?store_id={store_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def test_create_read_list_patch_end(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    sku = await api.sku(store["id"], price="100.00", floor_price="70.00")
    p = await create(
        api,
        promo_body(
            store["id"], "percent_off", {"percent": 20}, applies_to={"sku_ids": [sku["id"]]}
        ),
    )
    assert p["status"] == "active"
    assert p["applies_to"] == {"sku_ids": [sku["id"]]}
    r = await api.client.get(f"/v1/promotions/{p['id']}", headers=ADMIN)
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    listed = await api.client.get(
        f"/v1/promotions?store_id={store['id']}&status=active&active_at=2026-11-12T10:00:00%2B08:00",
        headers=ADMIN,
    )
    assert [i["id"] for i in listed.json()["items"]] == [p["id"]]
    upcoming = await api.client.get(
        f"/v1/promotions?store_id={store['id']}&status=upcoming", headers=ADMIN
    )
    assert upcoming.json()["items"] == []
    stale = await api.client.patch(
        f"/v1/promotions/{p['id']}", json={"name": "x"}, headers={**ADMIN, "If-Match": '"9"'}
    )
    assert_problem(stale, 412)
    # A change re-runs the floor check: 31 % would sell under 70.00.
    too_deep = await api.client.patch(
        f"/v1/promotions/{p['id']}", json={"rules": {"percent": 31}}, headers=ADMIN
    )
    body = assert_problem(too_deep, 422, "below_floor_price")
    assert body["skus"] == [{"sku_id": sku["id"], "floor_price": "70.00", "worst_price": "69.00"}]
    wrong_kind = await api.client.patch(
        f"/v1/promotions/{p['id']}", json={"rules": {"amount": "3.00"}}, headers=ADMIN
    )
    assert_problem(wrong_kind, 422)
    ok = await api.client.patch(
        f"/v1/promotions/{p['id']}",
        json={"rules": {"percent": 30}},
        headers={**ADMIN, "If-Match": "1"},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["rules"] == {"percent": "30"}
    assert ok.json()["version"] == 2
    ended = await api.client.post(f"/v1/promotions/{p['id']}/end", headers=ADMIN)
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended"
    assert_problem(
        await api.client.post(f"/v1/promotions/{p['id']}/end", headers=ADMIN),
        409,
        "promotion_ended",
    )


async def test_bad_input_creates_nothing(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    other = await api.store()
    mine = await api.sku(store["id"])
    theirs = await api.sku(other["id"])
    await create(
        api, promo_body(store["id"], "coupon", {"amount": "5.00", "min_spend": "0"}, code="C5")
    )
    bad: list[tuple[dict[str, Any], int, str | None]] = [
        (promo_body(store["id"], "half_off", {"percent": 50}), 422, None),
        (promo_body(store["id"], "percent_off", {"amount": "3.00"}), 422, None),
        (promo_body(store["id"], "percent_off", {"percent": 100}), 422, None),
        (promo_body(store["id"], "percent_off", {"percent": 0}), 422, None),
        (
            promo_body(
                store["id"],
                "threshold_off",
                {"tiers": [{"min_spend": "200", "off": "20"}, {"min_spend": "100", "off": "10"}]},
            ),
            422,
            None,
        ),
        (
            promo_body(
                store["id"], "amount_off", {"amount": "1.00"}, ends_at="2026-11-01T00:00:00+08:00"
            ),
            422,
            None,
        ),
        (
            promo_body(
                store["id"],
                "amount_off",
                {"amount": "1.00"},
                schedule={"weekdays": [0], "start_time": "10:00", "end_time": "12:00"},
            ),
            422,
            None,
        ),
        (
            promo_body(
                store["id"],
                "amount_off",
                {"amount": "1.00"},
                schedule={"weekdays": [8], "start_time": "10:00", "end_time": "12:00"},
            ),
            422,
            None,
        ),
        (
            promo_body(
                store["id"],
                "amount_off",
                {"amount": "1.00"},
                schedule={"weekdays": [1], "start_time": "25:00", "end_time": "12:00"},
            ),
            422,
            None,
        ),
        (
            promo_body(store["id"], "gift", {"min_spend": "10", "gift_sku_id": theirs["id"]}),
            422,
            "unknown_sku",
        ),
        (
            promo_body(store["id"], "coupon", {"amount": "5.00", "min_spend": "0"}, code="C5"),
            409,
            "duplicate_coupon_code",
        ),
        (promo_body(store["id"], "coupon", {"amount": "5.00", "min_spend": "0"}), 422, None),
        (
            promo_body(
                store["id"], "percent_off", {"percent": 5}, applies_to={"sku_ids": [theirs["id"]]}
            ),
            422,
            "unknown_sku",
        ),
        (
            promo_body(store["id"], "special_price", {"prices": {theirs["id"]: "1.00"}}),
            422,
            "unknown_sku",
        ),
    ]
    for body, status, code in bad:
        r = await api.client.post("/v1/promotions", json=body, headers=ADMIN)
        assert_problem(r, status, code)
    assert await count(api, store["id"]) == 1
    assert mine["store_id"] == store["id"]


async def test_parallel_creates_of_one_code_make_one_coupon(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    body = promo_body(store["id"], "coupon", {"amount": "5.00", "min_spend": "0"}, code="SAME")
    rs = await asyncio.gather(
        *(api.client.post("/v1/promotions", json=body, headers=ADMIN) for _ in range(6))
    )
    assert sorted(r.status_code for r in rs) == [201] + [409] * 5


async def test_floor_check_names_skus_and_guards_sku_changes(
    api: Api, clock: SettableClock
) -> None:
    clock.set(T0)
    store = await api.store()
    a = await api.sku(store["id"], price="100.00", floor_price="70.00")
    b = await api.sku(store["id"], price="100.00", cost_price="90.00")
    c = await api.sku(store["id"], price="100.00")
    r = await api.client.post(
        "/v1/promotions",
        json=promo_body(store["id"], "percent_off", {"percent": 25}),
        headers=ADMIN,
    )
    body = assert_problem(r, 422, "below_floor_price")
    assert {s["sku_id"] for s in body["skus"]} == {b["id"]}
    await create(
        api,
        promo_body(
            store["id"], "percent_off", {"percent": 25}, applies_to={"sku_ids": [a["id"], c["id"]]}
        ),
    )
    # Stacked: a 10.00 coupon on top of 75.00 breaks a's floor of 70.00.
    r = await api.client.post(
        "/v1/promotions",
        json=promo_body(
            store["id"], "coupon", {"amount": "10.00", "min_spend": "0"}, code=unique("c")[:20]
        ),
        headers=ADMIN,
    )
    assert_problem(r, 422, "below_floor_price")
    # A different week day never overlaps: fine.
    # Raising a's floor over 75.00 would break the live promotion.
    r = await api.client.patch(f"/v1/skus/{a['id']}", json={"floor_price": "76.00"}, headers=ADMIN)
    assert_problem(r, 409, "below_floor_price")
    r = await api.client.patch(f"/v1/skus/{a['id']}", json={"floor_price": "75.00"}, headers=ADMIN)
    assert r.status_code == 200, r.text


async def test_quote_breakdown(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    a = await api.sku(store["id"], price="100.00", floor_price="50.00")
    b = await api.sku(store["id"], price="50.00")
    gift = await api.sku(store["id"], price="10.00")
    pct = await create(
        api,
        promo_body(store["id"], "percent_off", {"percent": 10}, applies_to={"sku_ids": [a["id"]]}),
    )
    thr = await create(
        api,
        promo_body(
            store["id"], "threshold_off", {"tiers": [{"min_spend": "150.00", "off": "15.00"}]}
        ),
    )
    gf = await create(
        api, promo_body(store["id"], "gift", {"min_spend": "100", "gift_sku_id": gift["id"]})
    )
    fs = await create(api, promo_body(store["id"], "free_shipping", {"min_spend": "100"}))
    cp = await create(
        api,
        promo_body(store["id"], "coupon", {"amount": "10.00", "min_spend": "100.00"}, code="Q10"),
    )
    r = await api.client.post(
        "/v1/promotions/quote",
        json={
            "store_id": store["id"],
            "items": [{"sku_id": a["id"], "quantity": 1}, {"sku_id": b["id"], "quantity": 2}],
            "coupon_code": "Q10",
            "shipping_fee": "8.00",
        },
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    q = r.json()
    # 90 + 100 = 190 → 15 off → 175 → coupon 10 → 165.
    assert q["subtotal"] == "200.00"
    assert q["discount"] == "35.00"
    assert q["shipping_fee"] == "0.00"
    assert q["total"] == "165.00"
    applied = {x["promotion_id"]: x["discount"] for x in q["applied"]}
    assert applied == {
        pct["id"]: "10.00",
        thr["id"]: "15.00",
        cp["id"]: "10.00",
        gf["id"]: "0.00",
        fs["id"]: "8.00",
    }
    assert q["gifts"] == [{"promotion_id": gf["id"], "sku_id": gift["id"], "quantity": 1}]
    assert q["coupon"] == {"code": "Q10", "applied": True, "reason": None}
    assert sum(float(x["line_total"]) for x in q["lines"]) == 165.0
    r = await api.client.post(
        "/v1/promotions/quote",
        json={
            "store_id": store["id"],
            "items": [{"sku_id": b["id"], "quantity": 1}],
            "coupon_code": "NOPE",
        },
        headers=ADMIN,
    )
    assert r.json()["coupon"] == {"code": "NOPE", "applied": False, "reason": "unknown"}


async def _coupon_store(
    api: Api, **limits: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 1000, price="100.00")
    coupon = await create(
        api,
        promo_body(
            store["id"],
            "coupon",
            {"amount": "10.00", "min_spend": "50.00"},
            code="SAVE10",
            **limits,
        ),
    )
    return store, sku, coupon


def _order(
    store: dict[str, Any], sku: dict[str, Any], phone: str = "13800138000", **extra: Any
) -> dict[str, Any]:
    body = order_body(
        store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": "100.00"}], **extra
    )
    body["buyer"]["phone"] = phone
    return body


async def test_coupon_at_intake_and_give_back(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store, sku, coupon = await _coupon_store(api, usage_limit=1)
    r = await api.client.post(
        "/v1/orders", json=_order(store, sku, coupon_code="SAVE10"), headers=ADMIN
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["subtotal"], order["discount"], order["total"]) == ("100.00", "10.00", "90.00")
    assert order["discounts"] == [{"promotion_id": coupon["id"], "amount": "10.00"}]
    again = await api.client.get(f"/v1/orders/{order['id']}", headers=ADMIN)
    assert again.json()["discounts"] == order["discounts"]
    r = await api.client.post(
        "/v1/orders", json=_order(store, sku, coupon_code="SAVE10"), headers=ADMIN
    )
    assert_problem(r, 409, "coupon_unavailable")
    cancel = await api.client.post(
        f"/v1/orders/{order['id']}/cancel", json={"reason": "buyer"}, headers=ADMIN
    )
    assert cancel.status_code == 200, cancel.text
    r = await api.client.post(
        "/v1/orders", json=_order(store, sku, coupon_code="SAVE10"), headers=ADMIN
    )
    assert r.status_code == 201, r.text
    small = order_body(
        store["id"],
        [{"sku_id": sku["id"], "quantity": 1, "unit_price": "40.00"}],
        coupon_code="SAVE10",
    )
    assert_problem(
        await api.client.post("/v1/orders", json=small, headers=ADMIN), 409, "coupon_unavailable"
    )
    unknown = _order(store, sku, coupon_code="NOPE")
    assert_problem(
        await api.client.post("/v1/orders", json=unknown, headers=ADMIN), 409, "coupon_unavailable"
    )


async def test_usage_limit_holds_under_parallel_orders(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store, sku, coupon = await _coupon_store(api, usage_limit=5)

    async def place(n: int) -> int:
        body = _order(store, sku, phone=f"1380013{n:04d}", coupon_code="SAVE10")
        return (await api.client.post("/v1/orders", json=body, headers=ADMIN)).status_code

    statuses = await asyncio.gather(*(place(n) for n in range(20)))
    assert sorted(statuses) == [201] * 5 + [409] * 15
    perf = (
        await api.client.get(f"/v1/promotions/{coupon['id']}/performance", headers=ADMIN)
    ).json()
    assert perf["orders"] == 5
    assert perf["discount_cost"] == "50.00"


async def test_per_buyer_limit_holds_under_parallel_orders(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store, sku, _ = await _coupon_store(api, per_buyer_limit=1)

    async def place() -> int:
        body = _order(store, sku, phone="13900000000", coupon_code="SAVE10")
        return (await api.client.post("/v1/orders", json=body, headers=ADMIN)).status_code

    statuses = await asyncio.gather(*(place() for _ in range(10)))
    assert sorted(statuses) == [201] + [409] * 9


async def test_budget_holds_under_parallel_orders(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store, sku, _ = await _coupon_store(api, budget="35.00")

    async def place(n: int) -> int:
        body = _order(store, sku, phone=f"1370013{n:04d}", coupon_code="SAVE10")
        return (await api.client.post("/v1/orders", json=body, headers=ADMIN)).status_code

    statuses = await asyncio.gather(*(place(n) for n in range(12)))
    assert sorted(statuses) == [201] * 3 + [409] * 9


async def test_promotion_ids_attribute_the_platform_discount(
    api: Api, clock: SettableClock
) -> None:
    clock.set(T0)
    store = await api.store()
    a = await stocked_sku(api, store["id"], 10, price="100.00")
    pct = await create(api, promo_body(store["id"], "percent_off", {"percent": 10}))
    thr = await create(api, promo_body(store["id"], "amount_off", {"amount": "5.00"}))
    body = order_body(
        store["id"],
        [{"sku_id": a["id"], "quantity": 2, "unit_price": "85.00"}],
        promotion_ids=[pct["id"], thr["id"]],
    )
    r = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    # List 200.00, charged 170.00: 30.00 split as the engine gives 20.00 and 5.00.
    assert r.json()["discounts"] == [
        {"promotion_id": pct["id"], "amount": "24.00"},
        {"promotion_id": thr["id"], "amount": "6.00"},
    ]
    spend = await api.client.post(
        f"/v1/promotions/{pct['id']}/spend",
        json={"date": "2026-11-11", "amount": "1.00"},
        headers=ADMIN,
    )
    assert spend.status_code == 200, spend.text
    spend = await api.client.post(
        f"/v1/promotions/{pct['id']}/spend",
        json={"date": "2026-11-11", "amount": "6.00"},
        headers=ADMIN,
    )
    perf = (await api.client.get(f"/v1/promotions/{pct['id']}/performance", headers=ADMIN)).json()
    assert perf == {
        "orders": 1,
        "units": 2,
        "gmv": "170.00",
        "discount_cost": "24.00",
        "ad_spend": "6.00",
        "roi": "5.67",
        "grade": "excellent",
    }


async def test_roles(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    sku = await api.sku(store["id"])
    warehouse = await api.key("warehouse", [store["id"]])
    integration = await api.key("integration", [store["id"]])
    operator = await api.key("operator", [store["id"]])
    body = promo_body(store["id"], "percent_off", {"percent": 5})
    assert_problem(await api.client.post("/v1/promotions", json=body, headers=integration), 403)
    assert_problem(await api.client.post("/v1/promotions", json=body, headers=warehouse), 403)
    r = await api.client.post("/v1/promotions", json=body, headers=operator)
    assert r.status_code == 201, r.text
    assert (
        await api.client.get(f"/v1/promotions/{r.json()['id']}", headers=integration)
    ).status_code == 200
    assert_problem(await api.client.get("/v1/promotions", headers=warehouse), 403)
    q = {"store_id": store["id"], "items": [{"sku_id": sku["id"], "quantity": 1}]}
    assert (
        await api.client.post("/v1/promotions/quote", json=q, headers=integration)
    ).status_code == 200
    assert_problem(await api.client.post("/v1/promotions/quote", json=q, headers=warehouse), 403)


async def test_calendar_events_once_per_weekly_window(
    api: Api, app: Any, clock: SettableClock
) -> None:
    clock.set(T0)
    store = await api.store()
    # Every Thursday 22:00 to Friday 02:00 Shanghai, from Wednesday 11/11 for two weeks.
    p = await create(
        api,
        promo_body(
            store["id"],
            "free_shipping",
            {},
            starts_at="2026-11-11T00:00:00+08:00",
            ends_at="2026-11-25T00:00:00+08:00",
            schedule={"weekdays": [4], "start_time": "22:00", "end_time": "02:00"},
        ),
    )
    maker = app.state.sessionmaker
    later = T0 + timedelta(days=20)
    # Two sweepers at once (other tests' promotions are swept too; this store's count).
    await asyncio.gather(calendar_sweep(maker, later), calendar_sweep(maker, later))
    await calendar_sweep(maker, later)
    started = await _events(app, store["id"], "promotion.started")
    ended = await _events(app, store["id"], "promotion.ended")
    assert [e["data"]["window_start"] for e in started] == [
        "2026-11-12T22:00:00+08:00",
        "2026-11-19T22:00:00+08:00",
    ]
    assert [e["data"]["window_end"] for e in ended] == [
        "2026-11-13T02:00:00+08:00",
        "2026-11-20T02:00:00+08:00",
    ]
    assert {e["data"]["promotion_id"] for e in started + ended} == {p["id"]}


async def test_bulk_intake_redeems_coupons_per_item(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store, sku, coupon = await _coupon_store(api, usage_limit=2)
    pct = await create(api, promo_body(store["id"], "percent_off", {"percent": 10}))
    orders = [_order(store, sku, phone=f"1360013{n:04d}", coupon_code="SAVE10") for n in range(4)]
    attributed = order_body(
        store["id"],
        [{"sku_id": sku["id"], "quantity": 1, "unit_price": "90.00"}],
        promotion_ids=[pct["id"]],
    )
    small = order_body(
        store["id"],
        [{"sku_id": sku["id"], "quantity": 1, "unit_price": "10.00"}],
        coupon_code="SAVE10",
    )
    r = await api.client.post(
        "/v1/orders/bulk", json={"orders": [*orders, attributed, small]}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 201, 409, 409, 201, 409]
    assert results[2]["error"]["code"] == "coupon_unavailable"
    first = (await api.client.get(f"/v1/orders/{results[0]['id']}", headers=ADMIN)).json()
    assert (first["discount"], first["total"], first["coupon_code"]) == ("10.00", "90.00", "SAVE10")
    assert first["discounts"] == [{"promotion_id": coupon["id"], "amount": "10.00"}]
    attr = (await api.client.get(f"/v1/orders/{results[4]['id']}", headers=ADMIN)).json()
    assert attr["discounts"] == [{"promotion_id": pct["id"], "amount": "10.00"}]
    perf = (
        await api.client.get(f"/v1/promotions/{coupon['id']}/performance", headers=ADMIN)
    ).json()
    assert perf["orders"] == 2


async def test_retry_of_a_coupon_order_is_the_same_order(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store, sku, coupon = await _coupon_store(api, usage_limit=1)
    body = _order(store, sku, coupon_code="SAVE10")
    first = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    assert first.status_code == 201, first.text
    again = await api.client.post("/v1/orders", json=body, headers=ADMIN)  # coupon used up
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    ended = await api.client.post(f"/v1/promotions/{coupon['id']}/end", headers=ADMIN)
    assert ended.status_code == 200, ended.text
    body["placed_at"] = "2026-11-21T10:00:00+08:00"  # the coupon was never on then
    body["paid_at"] = "2026-11-21T10:01:00+08:00"
    late = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    assert_problem(late, 409, "duplicate_order")
    perf = (
        await api.client.get(f"/v1/promotions/{coupon['id']}/performance", headers=ADMIN)
    ).json()
    assert perf["orders"] == 1
