"""Buyer privacy over HTTP: operators see buyers masked in lists, in full (audited) alone."""

from __future__ import annotations

from typing import Any

from tests.helpers import ADMIN, Api, unique
from tests.routers.test_orders import order_body, stocked_sku


async def _key(api: Api, role: str, store_ids: list[str]) -> tuple[str, dict[str, str]]:
    r = await api.client.post(
        "/v1/api-keys",
        json={"name": unique(role), "role": role, "store_ids": store_ids},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], {"Authorization": f"Bearer {r.json()['secret']}"}


async def _order(api: Api) -> dict[str, Any]:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    body = order_body(store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": "9.90"}])
    r = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _audits(api: Api, order_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(
        "/v1/audit-entries",
        params={"resource_type": "order", "resource_id": order_id},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


FULL = {"phone": "13800138000", "address": "西湖区文三路 1 号"}


async def test_operator_list_is_masked_single_read_full_and_audited(api: Api) -> None:
    order = await _order(api)
    key_id, operator = await _key(api, "operator", [order["store_id"]])
    listed = await api.client.get(
        "/v1/orders", params={"store_id": order["store_id"]}, headers=operator
    )
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["buyer"] == {
        "name": "张三",
        "phone": "138****8000",
        "province": "浙江省",
        "city": "杭州市",
        "address": "西湖区****",
    }
    assert await _audits(api, order["id"]) == []

    one = await api.client.get(f"/v1/orders/{order['id']}", headers=operator)
    assert one.status_code == 200, one.text
    assert {k: one.json()["buyer"][k] for k in FULL} == FULL
    [entry] = await _audits(api, order["id"])
    assert entry["action"] == "order.buyer_viewed"
    assert entry["api_key_id"] == key_id
    assert entry["store_id"] == order["store_id"]
    assert entry["data"]["fields"] == ["buyer.phone", "buyer.address"]
    # Operators read the audit trail of their stores too.
    mine = await api.client.get(
        "/v1/audit-entries",
        params={"resource_type": "order", "resource_id": order["id"]},
        headers=operator,
    )
    assert [e["id"] for e in mine.json()["items"]] == [entry["id"]]


async def test_other_roles_see_buyers_in_full_without_audit(api: Api) -> None:
    order = await _order(api)
    for role in ("warehouse", "integration", "admin"):
        _, headers = await _key(api, role, [order["store_id"]])
        listed = await api.client.get(
            "/v1/orders", params={"store_id": order["store_id"]}, headers=headers
        )
        [item] = listed.json()["items"]
        assert {k: item["buyer"][k] for k in FULL} == FULL, role
        one = await api.client.get(f"/v1/orders/{order['id']}", headers=headers)
        assert {k: one.json()["buyer"][k] for k in FULL} == FULL, role
    assert await _audits(api, order["id"]) == []


async def test_no_audit_for_an_order_out_of_scope(api: Api) -> None:
    order = await _order(api)
    other = await api.store()
    _, operator = await _key(api, "operator", [other["id"]])
    r = await api.client.get(f"/v1/orders/{order['id']}", headers=operator)
    assert r.status_code == 404
    assert await _audits(api, order["id"]) == []


async def test_pick_list_masks_buyers_for_operators_only(api: Api) -> None:
    order = await _order(api)
    _, operator = await _key(api, "operator", [order["store_id"]])
    _, warehouse = await _key(api, "warehouse", [order["store_id"]])
    seen = {}
    for role, headers in (("operator", operator), ("warehouse", warehouse)):
        r = await api.client.get(
            "/v1/pick-list", params={"store_id": order["store_id"]}, headers=headers
        )
        assert r.status_code == 200, r.text
        [picked] = r.json()["orders"]
        seen[role] = {k: picked["ship_to"][k] for k in FULL}
    assert seen == {
        "operator": {"phone": "138****8000", "address": "西湖区****"},
        "warehouse": FULL,
    }
    assert await _audits(api, order["id"]) == []
