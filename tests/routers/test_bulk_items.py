"""Bulk items are typed in the OpenAPI yet still validated one by one (issue 8 item 9)."""

from __future__ import annotations

from typing import Any

from tests.helpers import ADMIN, Api
from tests.routers.test_orders import order_body, stocked_sku

BULK_ITEMS = [
    ("OrderBulkIn", "orders", "OrderCreate"),
    ("ShipBulkIn", "items", "ShipBulkItem"),
    ("StockLevelsSync", "items", "StockLevelItem"),
]


async def test_openapi_bulk_items_reference_the_item_schema(api: Api) -> None:
    r = await api.client.get("/openapi.json")
    schemas = r.json()["components"]["schemas"]
    for body, field, item in BULK_ITEMS:
        items = schemas[body]["properties"][field]
        assert items["type"] == "array", body
        assert items["items"] == {"$ref": f"#/components/schemas/{item}"}, body
        assert (items["minItems"], items["maxItems"]) == (1, 1000), body
        assert "required" in schemas[item], item


def _statuses(results: list[dict[str, Any]]) -> list[int]:
    return [x["status"] for x in results]


async def test_one_bad_item_fails_alone(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    line = [{"sku_id": sku["id"], "quantity": 1, "unit_price": "10.00"}]
    good = [order_body(store["id"], line), order_body(store["id"], line)]
    bad = {**order_body(store["id"], line), "placed_at": "yesterday"}
    r = await api.client.post(
        "/v1/orders/bulk", json={"orders": [good[0], bad, good[1]]}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert _statuses(results) == [201, 422, 201]
    assert results[1]["error"]["code"] == "validation_error"
    assert ["placed_at"] in [e["loc"][-1:] for e in results[1]["error"]["errors"]]

    ship = [
        {"order_id": results[0]["id"], "carrier": "ZTO", "tracking_number": "73100000000901"},
        {"order_id": results[2]["id"], "carrier": "NOPE", "tracking_number": "73100000000902"},
        {"order_id": results[2]["id"], "carrier": "ZTO", "tracking_number": "73100000000903"},
    ]
    r = await api.client.post("/v1/orders/ship-bulk", json={"items": ship}, headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert _statuses(results) == [200, 422, 200]
    assert results[1]["error"]["code"] == "validation_error"

    levels = [
        {"store_id": store["id"], "sku_code": sku["sku_code"], "on_hand": "many"},
        {"store_id": store["id"], "sku_code": sku["sku_code"], "on_hand": 9},
    ]
    r = await api.client.put("/v1/stock-levels", json={"items": levels}, headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert _statuses(results) == [422, 200]
    assert results[0]["error"]["code"] == "validation_error"
