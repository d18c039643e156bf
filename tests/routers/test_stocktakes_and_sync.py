"""Stocktakes, ERP level sync, auto-delist/relist and low-stock events over HTTP."""

from __future__ import annotations

from typing import Any

from tests.helpers import ADMIN, Api, assert_problem


async def _receive(api: Api, sku_id: str, qty: int) -> None:
    r = await api.client.post(
        "/v1/stock-movements",
        json={"sku_id": sku_id, "kind": "receive", "quantity": qty},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text


async def _events(api: Api, store_id: str, type_: str) -> list[dict[str, Any]]:
    r = await api.client.get(
        "/v1/events", params={"store_id": store_id, "type": type_, "limit": 500}, headers=ADMIN
    )
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_stocktake_applies_variances(api: Api) -> None:
    store = await api.store()
    a, b, c = [await api.sku(store["id"]) for _ in range(3)]
    await _receive(api, a["id"], 10)
    await _receive(api, b["id"], 5)
    r = await api.client.post(
        "/v1/stocktakes",
        json={
            "store_id": store["id"],
            "note": "月末盘点",
            "lines": [
                {"sku_id": a["id"], "counted": 8},
                {"sku_id": b["id"], "counted": 5},
                {"sku_id": c["id"], "counted": 4},
            ],
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    lines = {line["sku_id"]: line for line in body["lines"]}
    assert lines[a["id"]] | {"sku_id": 0} == {
        "sku_id": 0,
        "expected": 10,
        "counted": 8,
        "variance": -2,
        "released": 0,
    }
    assert lines[b["id"]]["variance"] == 0
    assert lines[c["id"]]["variance"] == 4
    assert body["note"] == "月末盘点"
    r = await api.client.get(
        "/v1/stock-movements", params={"store_id": store["id"], "kind": "stocktake"}, headers=ADMIN
    )
    assert sorted(m["quantity"] for m in r.json()["items"]) == [-2, 4]
    assert {m["reference"] for m in r.json()["items"]} == {f"stocktake:{body['id']}"}
    fetched = await api.client.get(f"/v1/stocktakes/{body['id']}", headers=ADMIN)
    assert fetched.json() == body


async def test_invalid_stocktake_changes_nothing(api: Api) -> None:
    store, other = await api.store(), await api.store()
    mine, foreign = await api.sku(store["id"]), await api.sku(other["id"])
    await _receive(api, mine["id"], 10)
    cases = [
        (
            [{"sku_id": mine["id"], "counted": 3}, {"sku_id": foreign["id"], "counted": 1}],
            "unknown_sku",
        ),
        (
            [{"sku_id": mine["id"], "counted": 3}, {"sku_id": "999999999", "counted": 1}],
            "unknown_sku",
        ),
        (
            [{"sku_id": mine["id"], "counted": 3}, {"sku_id": mine["id"], "counted": 4}],
            "duplicate_line",
        ),
        ([{"sku_id": mine["id"], "counted": -1}], "validation_error"),
        ([], "validation_error"),
    ]
    for lines, code in cases:
        r = await api.client.post(
            "/v1/stocktakes", json={"store_id": store["id"], "lines": lines}, headers=ADMIN
        )
        assert_problem(r, 422, code)
    r = await api.client.get(f"/v1/skus/{mine['id']}/stock", headers=ADMIN)
    assert r.json()["on_hand"] == 10
    warehouse = await api.key("warehouse", [store["id"]])
    r = await api.client.post(
        "/v1/stocktakes",
        json={"store_id": other["id"], "lines": [{"sku_id": foreign["id"], "counted": 1}]},
        headers=warehouse,
    )
    assert_problem(r, 404, "store_not_found")


async def test_stock_level_sync_is_idempotent_and_per_item(api: Api) -> None:
    store = await api.store()
    a, b = await api.sku(store["id"]), await api.sku(store["id"])
    integration = await api.key("integration", [store["id"]])
    items = [
        {"store_id": store["id"], "sku_code": a["sku_code"], "on_hand": 40},
        {"store_id": store["id"], "sku_code": "nope", "on_hand": 1},
        {"store_id": store["id"], "sku_code": b["sku_code"], "on_hand": -1},
        {"store_id": store["id"], "sku_code": b["sku_code"], "on_hand": 7},
    ]
    r = await api.client.put("/v1/stock-levels", json={"items": items}, headers=integration)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == [0, 1, 2, 3]
    assert [x["status"] for x in results] == [200, 404, 422, 200]
    assert results[0]["changed"] is True
    assert results[1]["error"]["code"] == "sku_not_found"
    assert results[2]["error"]["errors"]
    r = await api.client.put(
        "/v1/stock-levels", json={"items": [items[0], items[3]]}, headers=integration
    )
    assert [x["changed"] for x in r.json()["results"]] == [False, False]
    r = await api.client.get("/v1/stock-movements", params={"sku_id": a["id"]}, headers=ADMIN)
    assert [(m["kind"], m["quantity"]) for m in r.json()["items"]] == [("adjust", 40)]
    warehouse = await api.key("warehouse", [store["id"]])
    assert_problem(
        await api.client.put("/v1/stock-levels", json={"items": items}, headers=warehouse),
        403,
        "forbidden_role",
    )
    too_many = [items[0]] * 1001
    assert_problem(
        await api.client.put("/v1/stock-levels", json={"items": too_many}, headers=integration),
        422,
    )


async def test_auto_delist_relist_and_manual_delist(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    await _receive(api, sku["id"], 2)
    r = await api.client.get(f"/v1/skus/{sku['id']}", headers=ADMIN)
    assert r.json()["status"] == "active"
    await api.client.post(
        "/v1/stock-movements",
        json={"sku_id": sku["id"], "kind": "damage", "quantity": 2},
        headers=ADMIN,
    )
    r = await api.client.get(f"/v1/skus/{sku['id']}", headers=ADMIN)
    assert (r.json()["status"], r.json()["delisted_by"]) == ("delisted", "auto")
    assert len(await _events(api, store["id"], "sku.delisted")) == 1
    assert len(await _events(api, store["id"], "stock.out")) == 1
    await _receive(api, sku["id"], 3)
    r = await api.client.get(f"/v1/skus/{sku['id']}", headers=ADMIN)
    assert (r.json()["status"], r.json()["delisted_by"]) == ("active", None)
    assert len(await _events(api, store["id"], "sku.relisted")) == 1
    # Delisted by hand: stays delisted whatever stock does.
    r = await api.client.patch(f"/v1/skus/{sku['id']}", json={"status": "delisted"}, headers=ADMIN)
    assert r.json()["delisted_by"] == "manual"
    await _receive(api, sku["id"], 5)
    r = await api.client.get(f"/v1/skus/{sku['id']}", headers=ADMIN)
    assert (r.json()["status"], r.json()["delisted_by"]) == ("delisted", "manual")
    assert len(await _events(api, store["id"], "sku.relisted")) == 1


async def test_stock_low_fires_once_per_crossing(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"], low_stock_threshold=5)
    await _receive(api, sku["id"], 10)
    for qty in (3, 1, 1):  # 7, 6, 5: crosses into low at 5
        await api.client.post(
            "/v1/stock-movements",
            json={"sku_id": sku["id"], "kind": "damage", "quantity": qty},
            headers=ADMIN,
        )
    await api.client.post(
        "/v1/stock-movements",
        json={"sku_id": sku["id"], "kind": "damage", "quantity": 1},
        headers=ADMIN,
    )
    assert len(await _events(api, store["id"], "stock.low")) == 1
    await _receive(api, sku["id"], 1)  # 5: still low, no recovery
    await _receive(api, sku["id"], 1)  # 6: recovered above the threshold
    await api.client.post(
        "/v1/stock-movements",
        json={"sku_id": sku["id"], "kind": "damage", "quantity": 2},
        headers=ADMIN,
    )
    low = await _events(api, store["id"], "stock.low")
    assert len(low) == 2
    assert low[-1]["data"]["available"] == 4
    assert low[-1]["data"]["threshold"] == 5
