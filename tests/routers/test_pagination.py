"""Cursor pagination stays complete while rows are inserted between pages."""

from __future__ import annotations

from tests.helpers import ADMIN, Api


async def test_complete_while_inserting(api: Api) -> None:
    store = await api.store()
    created = [(await api.sku(store["id"]))["id"] for _ in range(9)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"store_id": store["id"], "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await api.client.get("/v1/skus", params=params, headers=ADMIN)
        assert r.status_code == 200
        seen.extend(item["id"] for item in r.json()["items"])
        created.append((await api.sku(store["id"]))["id"])  # a concurrent insert
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        assert len(seen) < 100
    assert len(seen) == len(set(seen))
    assert set(created[:9]) <= set(seen)
    assert seen == sorted(seen, key=int)


async def test_cursor_from_another_list_is_rejected(api: Api) -> None:
    store = await api.store()
    for _ in range(2):
        await api.sku(store["id"])
    r = await api.client.get(
        "/v1/skus", params={"store_id": store["id"], "limit": 1}, headers=ADMIN
    )
    cursor = r.json()["next_cursor"]
    r = await api.client.get("/v1/stores", params={"cursor": cursor}, headers=ADMIN)
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_cursor"
