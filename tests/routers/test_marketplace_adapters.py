"""Platform payloads through `POST /v1/marketplace/{platform}/orders`: exact money, the
no-op second pass, the review queue (nothing dropped), SKU platform_refs and ship-back."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.helpers import ADMIN, Api, assert_problem
from tests.routers.test_orders import stocked_sku

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marketplace"
JSON = {**ADMIN, "Content-Type": "application/json"}


def cases(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(
        (FIXTURES / f"{name}.json").read_text(encoding="utf-8"), parse_float=Decimal
    )["cases"]
    return data


def body(orders: list[Any]) -> bytes:
    """The request as a platform client sends it: numbers as JSON numbers (59.8, 2^53+)."""
    return json.dumps({"orders": orders}, ensure_ascii=False, default=_number).encode()


def _number(value: Any) -> Any:
    assert isinstance(value, Decimal)
    return float(value)  # these fixture values round-trip exactly through repr


async def _count_events(app: Any, store_id: str) -> int:
    async with app.state.sessionmaker() as session:
        n: int = (
            await session.execute(
                sa.text("SELECT count(*) FROM events WHERE store_id = :s"), {"s": int(store_id)}
            )
        ).scalar_one()
        return n


async def _post(api: Api, platform: str, store_id: str, orders: list[Any]) -> list[dict[str, Any]]:
    r = await api.client.post(
        f"/v1/marketplace/{platform}/orders?store_id={store_id}", content=body(orders), headers=JSON
    )
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results


async def _order(api: Api, order_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/orders/{order_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_pdd_fixtures_map_apply_and_noop(api: Api, app: Any) -> None:
    store = await api.store("pdd", carrier_codes={"pdd": {"ZTO": "115"}})
    await stocked_sku(
        api,
        store["id"],
        100,
        sku_code="SHT-4J-GRY-18",
        platform_refs=[{"platform": "pdd", "sku_id": "1158836420275"}],
    )
    pdd = cases("pdd")
    results = await _post(api, "pdd", store["id"], [c["order"] for c in pdd])
    assert [r["status"] for r in results] == [201] * len(pdd), results
    by_name = {c["name"]: r for c, r in zip(pdd, results, strict=True)}
    first = await _order(api, results[0]["id"])
    assert first["external_id"] == "241111-538204917730512"
    assert (first["items"][0]["unit_price"], first["discount"], first["total"]) == (
        "59.80",
        "13.00",
        "106.60",
    )
    assert first["buyer"]["phone"] == "138****5521"
    shipped = await _order(api, by_name["shipped (PII emptied after shipment)"]["id"])
    assert shipped["status"] == "shipped"
    assert shipped["shipments"][0]["carrier"] == "ZTO"
    assert (await _order(api, by_name["delivered"]["id"]))["status"] == "delivered"
    assert (await _order(api, by_name["group_failed"]["id"]))["status"] == "cancelled"
    assert (await _order(api, by_name["cancelled"]["id"]))["status"] == "cancelled"
    held = await _order(api, by_name["refund_in_progress"]["id"])
    assert "refund_pending" in held["flags"]
    urged = await _order(api, by_name["urged (催发货), money as strings"]["id"])
    assert "urgent" in urged["flags"]
    # The urge opened a shipping_chase ticket on the order, at the urge instant.
    assert urged["open_tickets"] == 1
    r = await api.client.get("/v1/tickets", params={"order_id": urged["id"]}, headers=ADMIN)
    [chase] = r.json()["items"]
    assert (chase["type"], chase["status"]) == ("shipping_chase", "open")
    assert chase["external_id"].startswith(f"urge-{urged['id']}-")
    deposit = await _order(api, by_name["presale_deposit"]["id"])
    assert (deposit["status"], deposit["dispatch_deadline"]) == ("pending_payment", None)
    assert deposit["promised_ship_by"].startswith("2024-12-01T23:59:59")
    # Matched by the platform's sku_id when the seller code is empty.
    by_ref = await _order(api, by_name["postage and no seller code (platform sku_id only)"]["id"])
    assert (by_ref["shipping_fee"], by_ref["total"]) == ("6.00", "112.60")

    # The same payloads again: 200 each, nothing written.
    before = await _count_events(app, store["id"])
    again = await _post(api, "pdd", store["id"], [c["order"] for c in pdd])
    assert again == [{"index": r["index"], "status": 200, "id": r["id"]} for r in results]
    assert await _count_events(app, store["id"]) == before
    r = await api.client.get("/v1/tickets", params={"order_id": urged["id"]}, headers=ADMIN)
    assert len(r.json()["items"]) == 1  # the urge again: no second ticket


async def test_other_platforms_fixtures(api: Api) -> None:
    for platform, store_platform, code in (
        ("taobao", "tmall", "KB-87-RED"),
        ("douyin", "douyin", "CF-YN-500"),
        ("jd", "jd", "TEA-LJ-250"),
    ):
        store = await api.store(store_platform)
        await stocked_sku(api, store["id"], 100, sku_code=code)
        fixture = cases(platform)
        results = await _post(api, platform, store["id"], [c["order"] for c in fixture])
        assert [r["status"] for r in results] == [201] * len(fixture), (platform, results)
        first = await _order(api, results[0]["id"])
        want = fixture[0]["expect"]
        assert first["external_id"] == want["external_id"]  # Taobao's tid > 2^53, exact
        assert first["discount"] == want["discount"]
        assert first["items"][0]["unit_price"] == want["unit_price"]  # Douyin fen ÷ 100


async def test_unmapped_orders_are_queued_once_and_retried(api: Api) -> None:
    store = await api.store("pdd")
    order = cases("pdd")[0]["order"]["order_info_get_response"]["order_info"]
    bad = [c for c in cases("bad") if c["platform"] == "pdd"]
    orders = [order, *[c["order"] for c in bad], 42]
    results = await _post(api, "pdd", store["id"], orders)
    assert all(r["status"] == 202 and r["queued"] for r in results), results
    assert results[0]["error"]["code"] == "unknown_sku"
    assert results[0]["error"]["errors"][0]["loc"] == ["item_list", "0", "outer_id"]
    assert [r["error"]["errors"][0]["loc"][0] for r in results[1:-1]] == [
        c["field"].split("[")[0] for c in bad
    ]
    # Sent again: the same entries, not new ones.
    again = await _post(api, "pdd", store["id"], orders)
    assert [r["id"] for r in again] == [r["id"] for r in results]
    listed = await api.client.get(
        f"/v1/marketplace/unmapped?store_id={store['id']}&platform=pdd&status=open", headers=ADMIN
    )
    assert listed.status_code == 200, listed.text
    entries = {e["id"]: e for e in listed.json()["items"]}
    assert entries[results[0]["id"]]["attempts"] == 2
    # The payload is kept whole, numbers exact.
    assert entries[results[0]["id"]]["payload"]["pay_amount"] == 106.6

    # Fix the mapping, retry: resolved, with the order.
    await stocked_sku(api, store["id"], 10, sku_code="SHT-4J-GRY-18")
    r = await api.client.post(f"/v1/marketplace/unmapped/{results[0]['id']}/retry", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    assert (await _order(api, r.json()["order_id"]))["total"] == "106.60"
    assert_problem(
        await api.client.post(f"/v1/marketplace/unmapped/{results[0]['id']}/retry", headers=ADMIN),
        409,
        "invalid_transition",
    )
    # Discarded with a reason, kept for audit.
    gone = await api.client.request(
        "DELETE",
        f"/v1/marketplace/unmapped/{results[-1]['id']}",
        json={"reason": "not an order"},
        headers=ADMIN,
    )
    assert gone.status_code == 200, gone.text
    assert (gone.json()["status"], gone.json()["discard_reason"]) == ("discarded", "not an order")


async def test_wrong_platform_store(api: Api) -> None:
    store = await api.store("jd")
    r = await api.client.post(
        f"/v1/marketplace/pdd/orders?store_id={store['id']}", content=body([{}]), headers=JSON
    )
    assert_problem(r, 409, "platform_mismatch")


async def test_ship_back_lists_and_confirms(api: Api) -> None:
    store = await api.store("pdd", carrier_codes={"pdd": {"ZTO": "115"}})
    await stocked_sku(api, store["id"], 100, sku_code="SHT-4J-GRY-18")
    base = cases("pdd")[0]["order"]["order_info_get_response"]["order_info"]
    orders = [dict(base, order_sn=f"241111-00000000000{n}") for n in range(2)]
    ids = [r["id"] for r in await _post(api, "pdd", store["id"], orders)]
    for order_id, (carrier, number) in zip(
        ids, [("ZTO", "73100000000401"), ("YTO", "YT1234567890402")], strict=True
    ):
        ship = {"carrier": carrier, "tracking_number": number}
        r = await api.client.post(f"/v1/orders/{order_id}/ship", json=ship, headers=ADMIN)
        assert r.status_code == 200, r.text
    url = f"/v1/marketplace/pdd/shipments?store_id={store['id']}"
    items = (await api.client.get(url, headers=ADMIN)).json()["items"]
    assert [i["order_id"] for i in items] == ids
    assert items[0]["api"] == "pdd.logistics.online.send"
    assert items[0]["params"] == {
        "order_sn": "241111-000000000000",
        "logistics_id": "115",
        "tracking_number": "73100000000401",
    }
    assert (items[1]["error"], items[1]["missing"]) == (
        "carrier_code_missing",
        "carrier_codes.pdd.YTO",
    )
    assert items[1]["params"]["logistics_id"] is None
    page = (await api.client.get(f"{url}&limit=1", headers=ADMIN)).json()
    assert page["next_cursor"] == ids[0]
    r = await api.client.post(
        "/v1/marketplace/pdd/shipments/confirmations",
        json={"ids": [ids[0], "999999999"]},
        headers=ADMIN,
    )
    assert r.json() == {"confirmed": [ids[0]], "unknown": ["999999999"]}
    items = (await api.client.get(url, headers=ADMIN)).json()["items"]
    assert [i["order_id"] for i in items] == [ids[1]]
    assert_problem(
        await api.client.get(
            f"/v1/marketplace/taobao/shipments?store_id={store['id']}", headers=ADMIN
        ),
        409,
        "platform_mismatch",
    )


async def test_platform_refs_are_unique_per_store(api: Api) -> None:
    store = await api.store("pdd")
    ref = [{"platform": "pdd", "sku_id": "777"}]
    sku = await api.sku(store["id"], platform_refs=ref)
    assert sku["platform_refs"] == ref
    other = {
        "store_id": store["id"],
        "sku_code": "X-1",
        "title": "t",
        "price": "1.00",
        "platform_refs": ref,
    }
    assert_problem(
        await api.client.post("/v1/skus", json=other, headers=ADMIN), 409, "duplicate_platform_ref"
    )
    r = await api.client.patch(f"/v1/skus/{sku['id']}", json={"platform_refs": []}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["platform_refs"] == []
    assert (await api.client.post("/v1/skus", json=other, headers=ADMIN)).status_code == 201


async def test_malformed_bodies_are_422_problems(api: Api) -> None:
    store = await api.store("pdd")
    url = f"/v1/marketplace/pdd/orders?store_id={store['id']}"
    cases_ = [
        (b'{"orders": [', "malformed_json", None),
        (b"{}", "validation_error", ["body", "orders"]),
        (b'{"orders": {"order_sn": "1"}}', "validation_error", ["body", "orders"]),
        (b'{"orders": []}', "validation_error", ["body", "orders"]),
        (orjson_list(1001), "validation_error", ["body", "orders"]),
        (b'{"orders": [{}], "extra": 1.5}', "validation_error", ["body", "extra"]),
        (b"[1.5]", "validation_error", ["body"]),
    ]
    for raw, code, loc in cases_:
        problem = assert_problem(await api.client.post(url, content=raw, headers=JSON), 422, code)
        if loc is not None:
            assert problem["errors"][0]["loc"] == loc, (raw[:40], problem)


def orjson_list(n: int) -> bytes:
    return json.dumps({"orders": [{"order_sn": str(i)} for i in range(n)]}).encode()


async def test_numbers_are_read_exactly_from_the_body(api: Api) -> None:
    # The body is parsed once with Decimal numbers: a price a double would round to two
    # places, NaN and a number beyond a double's range are mapping errors, kept for review.
    store = await api.store("pdd")
    await stocked_sku(api, store["id"], 100, sku_code="SHT-4J-GRY-18")
    order = cases("pdd")[0]["order"]["order_info_get_response"]["order_info"]
    text = json.dumps(order, ensure_ascii=False, default=_number)
    assert '"goods_price": 59.8' in text
    prices = ["59.800000000000001", "NaN", "1e999", "59.8"]
    sn = order["order_sn"]
    raw = "[" + ",".join(
        text.replace('"goods_price": 59.8', f'"goods_price": {p}').replace(sn, f"{sn}{n}")
        for n, p in enumerate(prices)
    )
    r = await api.client.post(
        f"/v1/marketplace/pdd/orders?store_id={store['id']}",
        content=('{"orders": ' + raw + "]}").encode(),
        headers=JSON,
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [202, 202, 202, 201], results
    assert [x["error"]["errors"][0]["msg"] for x in results[:3]] == [
        "more than two decimals",
        "not a number",
        "too large",
    ]
    listed = await api.client.get(
        f"/v1/marketplace/unmapped?store_id={store['id']}&status=open", headers=ADMIN
    )
    payloads = {e["id"]: e["payload"] for e in listed.json()["items"]}
    # Kept whole: NaN by its name, a number beyond a double as null.
    assert payloads[results[1]["id"]]["item_list"][0]["goods_price"] == "NaN"
    assert payloads[results[2]["id"]]["item_list"][0]["goods_price"] is None
