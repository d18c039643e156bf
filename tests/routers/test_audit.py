"""The audit trail records who changed what."""

from __future__ import annotations

from tests.helpers import ADMIN, Api, assert_problem


async def test_changes_are_audited_with_their_key(api: Api) -> None:
    store = await api.store()
    operator = await api.key("operator", [store["id"]])
    sku = await api.sku(store["id"])
    r = await api.client.patch(f"/v1/skus/{sku['id']}", json={"price": "99.00"}, headers=operator)
    assert r.status_code == 200
    r = await api.client.get(
        "/v1/audit-entries",
        params={"store_id": store["id"], "resource_type": "sku", "resource_id": sku["id"]},
        headers=operator,
    )
    assert r.status_code == 200, r.text
    entries = r.json()["items"]
    assert [e["action"] for e in entries] == ["sku.updated", "sku.created"]
    assert entries[0]["data"] == {"price": "99.00"}
    assert entries[0]["api_key_id"] != entries[1]["api_key_id"]
    other = await api.store()
    r = await api.client.get(
        "/v1/audit-entries", params={"store_id": other["id"]}, headers=operator
    )
    assert_problem(r, 404, "store_not_found")
    warehouse = await api.key("warehouse", [store["id"]])
    assert_problem(await api.client.get("/v1/audit-entries", headers=warehouse), 403)
    r = await api.client.get("/v1/audit-entries", params={"limit": 1}, headers=ADMIN)
    assert r.json()["next_cursor"]
