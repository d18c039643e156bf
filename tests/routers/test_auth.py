"""Auth: credentials, the role × action matrix, store scope, and API key administration."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.helpers import ADMIN, ADMIN_SECRET, Api, assert_problem, unique

ROLES = ("admin", "operator", "warehouse", "integration")


def bearer(secret: str) -> dict[str, str]:
    """Authorization headers for ``secret``."""
    return {"Authorization": f"Bearer {secret}"}


async def create_key(
    api: Api, role: str, store_ids: list[str] | None, headers: dict[str, str] = ADMIN
) -> httpx.Response:
    """POST /v1/api-keys as ``headers``; the raw response."""
    return await api.client.post(
        "/v1/api-keys",
        json={"name": unique(role), "role": role, "store_ids": store_ids},
        headers=headers,
    )


async def list_all(
    api: Api, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list endpoint, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        r = await api.client.get(path, params=query, headers=headers)
        assert r.status_code == 200, r.text
        items.extend(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


# ---------------------------------------------------------------------------------------------
# Credentials


async def test_missing_header_is_401(api: Api) -> None:
    r = await api.client.get("/v1/stores")
    assert_problem(r, 401, "missing_credentials")
    assert r.headers.get("www-authenticate") == "Bearer"


async def test_unknown_key_is_401(api: Api) -> None:
    r = await api.client.get("/v1/stores", headers=bearer("sk_does_not_exist_" + unique("x")))
    assert_problem(r, 401, "invalid_credentials")


@pytest.mark.parametrize(
    "header",
    [
        "Basic xxx",
        f"Basic {ADMIN_SECRET}",
        f"Token {ADMIN_SECRET}",
        "Bearer",
        ADMIN_SECRET,
    ],
)
async def test_wrong_scheme_is_401(api: Api, header: str) -> None:
    r = await api.client.get("/v1/stores", headers={"Authorization": header})
    assert_problem(r, 401, "invalid_credentials")


async def test_scheme_is_case_insensitive(api: Api) -> None:
    r = await api.client.get("/v1/stores", headers={"Authorization": f"bearer {ADMIN_SECRET}"})
    assert r.status_code == 200, r.text


async def test_bootstrap_admin_key_works(api: Api) -> None:
    r = await api.client.get("/v1/stores", headers=ADMIN)
    assert r.status_code == 200, r.text
    keys = await list_all(api, "/v1/api-keys", ADMIN)
    boot = [k for k in keys if k["secret_prefix"] == ADMIN_SECRET[:8]]
    assert boot, keys
    assert boot[0]["role"] == "admin"
    assert boot[0]["store_ids"] is None


async def test_revoked_key_is_401(api: Api) -> None:
    store = await api.store()
    r = await create_key(api, "operator", [store["id"]])
    assert r.status_code == 201, r.text
    key = r.json()
    headers = bearer(key["secret"])
    r = await api.client.get(f"/v1/stores/{store['id']}", headers=headers)
    assert r.status_code == 200, r.text

    r = await api.client.delete(f"/v1/api-keys/{key['id']}", headers=ADMIN)
    assert r.status_code == 204, r.text
    assert r.content == b""

    r = await api.client.get(f"/v1/stores/{store['id']}", headers=headers)
    assert_problem(r, 401, "invalid_credentials")
    # Revoking twice: the key is gone.
    r = await api.client.delete(f"/v1/api-keys/{key['id']}", headers=ADMIN)
    assert_problem(r, 404, "api_key_not_found")
    # Listed only with include_revoked.
    live = await list_all(api, "/v1/api-keys", ADMIN)
    assert key["id"] not in {k["id"] for k in live}
    everything = await list_all(api, "/v1/api-keys", ADMIN, include_revoked="true")
    revoked = [k for k in everything if k["id"] == key["id"]]
    assert revoked
    assert revoked[0]["revoked_at"] is not None


async def test_revoke_unknown_key_is_404(api: Api) -> None:
    for kid in ("999999999", "abc"):
        r = await api.client.delete(f"/v1/api-keys/{kid}", headers=ADMIN)
        assert_problem(r, 404, "api_key_not_found")


# ---------------------------------------------------------------------------------------------
# Role × action matrix


@dataclass
class World:
    """What an action needs: a store, a SKU in it, and the api fixture."""

    api: Api
    store_id: str
    sku_id: str


Action = Callable[[World, dict[str, str]], Awaitable[httpx.Response]]


async def _create_store(w: World, h: dict[str, str]) -> httpx.Response:
    body = {"code": unique("st"), "name": "权限店", "platform": "jd"}
    return await w.api.client.post("/v1/stores", json=body, headers=h)


async def _list_stores(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.get("/v1/stores", headers=h)


async def _get_store(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.get(f"/v1/stores/{w.store_id}", headers=h)


async def _patch_store(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.patch(f"/v1/stores/{w.store_id}", json={"name": "改名"}, headers=h)


async def _put_target(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.put(
        f"/v1/stores/{w.store_id}/targets/2026-11", json={"sales_target": "1000"}, headers=h
    )


async def _put_traffic(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.put(
        f"/v1/stores/{w.store_id}/traffic/2026-11-11",
        json={"visitors": 10, "ad_spend": "5.00"},
        headers=h,
    )


async def _create_sku(w: World, h: dict[str, str]) -> httpx.Response:
    body = {"store_id": w.store_id, "sku_code": unique("sku"), "title": "茶", "price": "10"}
    return await w.api.client.post("/v1/skus", json=body, headers=h)


async def _patch_sku(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.patch(f"/v1/skus/{w.sku_id}", json={"title": "新茶"}, headers=h)


async def _list_skus(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.get("/v1/skus", params={"store_id": w.store_id}, headers=h)


async def _get_sku(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.get(f"/v1/skus/{w.sku_id}", headers=h)


async def _list_events(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.get("/v1/events", params={"store_id": w.store_id}, headers=h)


async def _create_key(w: World, h: dict[str, str]) -> httpx.Response:
    return await create_key(w.api, "warehouse", [w.store_id], headers=h)


async def _list_keys(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.get("/v1/api-keys", headers=h)


async def _revoke_key(w: World, h: dict[str, str]) -> httpx.Response:
    victim = await create_key(w.api, "warehouse", [w.store_id])
    assert victim.status_code == 201, victim.text
    return await w.api.client.delete(f"/v1/api-keys/{victim.json()['id']}", headers=h)


async def _sweep(w: World, h: dict[str, str]) -> httpx.Response:
    return await w.api.client.post("/v1/admin/sweep", headers=h)


ADM, OPR, WHS, INT = ROLES
EVERYONE = set(ROLES)

# action name → (request, success status, roles allowed)
MATRIX: dict[str, tuple[Action, int, set[str]]] = {
    "POST /v1/stores": (_create_store, 201, {ADM}),
    "GET /v1/stores": (_list_stores, 200, EVERYONE),
    "GET /v1/stores/{id}": (_get_store, 200, EVERYONE),
    "PATCH /v1/stores/{id}": (_patch_store, 200, {ADM, OPR}),
    "PUT /v1/stores/{id}/targets/{m}": (_put_target, 200, {ADM, OPR}),
    "PUT /v1/stores/{id}/traffic/{d}": (_put_traffic, 200, {ADM, OPR, INT}),
    "POST /v1/skus": (_create_sku, 201, {ADM, OPR, INT}),
    "PATCH /v1/skus/{id}": (_patch_sku, 200, {ADM, OPR, INT}),
    "GET /v1/skus": (_list_skus, 200, EVERYONE),
    "GET /v1/skus/{id}": (_get_sku, 200, EVERYONE),
    "GET /v1/events": (_list_events, 200, {ADM, OPR, INT}),
    "POST /v1/api-keys": (_create_key, 201, {ADM}),
    "GET /v1/api-keys": (_list_keys, 200, {ADM}),
    "DELETE /v1/api-keys/{id}": (_revoke_key, 204, {ADM}),
    "POST /v1/admin/sweep": (_sweep, 200, {ADM}),
}

CASES = [
    pytest.param(role, action, role in allowed, id=f"{role}-{action}")
    for action, (_, _, allowed) in MATRIX.items()
    for role in ROLES
]


@pytest.mark.parametrize(("role", "action", "allowed"), CASES)
async def test_role_matrix(api: Api, role: str, action: str, allowed: bool) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    world = World(api=api, store_id=store["id"], sku_id=sku["id"])
    headers = await api.key(role, None)
    request, success, _ = MATRIX[action]
    r = await request(world, headers)
    if allowed:
        assert r.status_code == success, r.text
    else:
        body = assert_problem(r, 403, "forbidden_role")
        assert role in body["detail"]


async def test_forbidden_write_changes_nothing(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    warehouse = await api.key("warehouse", [store["id"]])
    r = await api.client.patch(f"/v1/skus/{sku['id']}", json={"price": "1"}, headers=warehouse)
    assert_problem(r, 403, "forbidden_role")
    r = await api.client.get(f"/v1/skus/{sku['id']}", headers=ADMIN)
    assert r.json()["price"] == "129.90"
    assert r.json()["version"] == 1


# ---------------------------------------------------------------------------------------------
# Store scope


async def test_scoped_key_cannot_see_other_stores(api: Api) -> None:
    a = await api.store()
    b = await api.store()
    sku_a = await api.sku(a["id"])
    sku_b = await api.sku(b["id"])
    h = await api.key("operator", [a["id"]])

    # Out of scope: reported as not found.
    r = await api.client.get(f"/v1/stores/{b['id']}", headers=h)
    assert_problem(r, 404, "store_not_found")
    r = await api.client.get(f"/v1/skus/{sku_b['id']}", headers=h)
    assert_problem(r, 404, "sku_not_found")
    r = await api.client.patch(f"/v1/skus/{sku_b['id']}", json={"title": "x"}, headers=h)
    assert_problem(r, 404, "sku_not_found")
    r = await api.client.patch(f"/v1/stores/{b['id']}", json={"name": "x"}, headers=h)
    assert_problem(r, 404, "store_not_found")
    r = await api.client.put(
        f"/v1/stores/{b['id']}/targets/2026-11", json={"sales_target": "1"}, headers=h
    )
    assert_problem(r, 404, "store_not_found")
    r = await api.client.post(
        "/v1/skus",
        json={"store_id": b["id"], "sku_code": unique("sku"), "title": "t", "price": "1"},
        headers=h,
    )
    assert_problem(r, 404, "store_not_found")
    r = await api.client.get("/v1/skus", params={"store_id": b["id"]}, headers=h)
    assert_problem(r, 404, "store_not_found")
    r = await api.client.get("/v1/events", params={"store_id": b["id"]}, headers=h)
    assert_problem(r, 404, "store_not_found")

    # The same answer as for a store that does not exist at all.
    r = await api.client.get("/v1/stores/999999999", headers=h)
    assert_problem(r, 404, "store_not_found")

    # Lists hold only the key's store.
    r = await api.client.get("/v1/skus", params={"limit": 500}, headers=h)
    assert r.status_code == 200, r.text
    assert {s["store_id"] for s in r.json()["items"]} == {a["id"]}
    assert sku_a["id"] in {s["id"] for s in r.json()["items"]}
    r = await api.client.get("/v1/stores", params={"limit": 500}, headers=h)
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["items"]] == [a["id"]]

    # In-scope reads and writes succeed.
    r = await api.client.get(f"/v1/stores/{a['id']}", headers=h)
    assert r.status_code == 200, r.text
    r = await api.client.get(f"/v1/skus/{sku_a['id']}", headers=h)
    assert r.status_code == 200, r.text
    r = await api.client.get("/v1/skus", params={"store_id": a["id"]}, headers=h)
    assert [s["id"] for s in r.json()["items"]] == [sku_a["id"]]
    r = await api.client.post(
        "/v1/skus",
        json={"store_id": a["id"], "sku_code": unique("sku"), "title": "t", "price": "1"},
        headers=h,
    )
    assert r.status_code == 201, r.text

    # Nothing in B changed.
    r = await api.client.get(f"/v1/skus/{sku_b['id']}", headers=ADMIN)
    assert r.json()["version"] == 1


async def test_key_scoped_to_several_stores(api: Api) -> None:
    a, b, c = await api.store(), await api.store(), await api.store()
    h = await api.key("warehouse", [a["id"], c["id"]])
    r = await api.client.get("/v1/stores", params={"limit": 500}, headers=h)
    assert [s["id"] for s in r.json()["items"]] == sorted([a["id"], c["id"]], key=int)
    r = await api.client.get(f"/v1/stores/{b['id']}", headers=h)
    assert_problem(r, 404, "store_not_found")


async def test_all_stores_key_sees_everything(api: Api) -> None:
    a = await api.store()
    b = await api.store()
    sku_a = await api.sku(a["id"])
    sku_b = await api.sku(b["id"])
    h = await api.key("warehouse", None)
    for store in (a, b):
        r = await api.client.get(f"/v1/stores/{store['id']}", headers=h)
        assert r.status_code == 200, r.text
    for sku in (sku_a, sku_b):
        r = await api.client.get(f"/v1/skus/{sku['id']}", headers=h)
        assert r.status_code == 200, r.text
    ids = {s["id"] for s in await list_all(api, "/v1/stores", h)}
    assert {a["id"], b["id"]} <= ids
    ids = {s["id"] for s in await list_all(api, "/v1/skus", h)}
    assert {sku_a["id"], sku_b["id"]} <= ids


# ---------------------------------------------------------------------------------------------
# Store-scoped admins and API key administration


async def test_scoped_admin_cannot_create_stores(api: Api) -> None:
    a = await api.store()
    h = await api.key("admin", [a["id"]])
    r = await api.client.post(
        "/v1/stores", json={"code": unique("st"), "name": "n", "platform": "pdd"}, headers=h
    )
    assert_problem(r, 403, "forbidden_scope")


async def test_scoped_admin_key_creation(api: Api) -> None:
    a = await api.store()
    b = await api.store()
    h = await api.key("admin", [a["id"]])

    r = await create_key(api, "operator", None, headers=h)
    assert_problem(r, 403, "forbidden_scope")

    r = await create_key(api, "operator", [a["id"]], headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["store_ids"] == [a["id"]]
    assert created["role"] == "operator"
    r = await api.client.get(f"/v1/stores/{a['id']}", headers=bearer(created["secret"]))
    assert r.status_code == 200, r.text

    for store_ids in ([b["id"]], [a["id"], b["id"]], ["999999999"]):
        r = await create_key(api, "operator", store_ids, headers=h)
        problem = assert_problem(r, 422, "unknown_store")
        assert problem["errors"][0]["loc"] == ["body", "store_ids"]

    # A scoped admin lists and revokes only keys inside its scope.
    listed = await list_all(api, "/v1/api-keys", h)
    assert created["id"] in {k["id"] for k in listed}
    assert all(k["store_ids"] is not None and set(k["store_ids"]) <= {a["id"]} for k in listed)
    other = await create_key(api, "operator", [b["id"]])
    r = await api.client.delete(f"/v1/api-keys/{other.json()['id']}", headers=h)
    assert_problem(r, 404, "api_key_not_found")


async def test_key_for_unknown_store_is_422(api: Api) -> None:
    r = await create_key(api, "warehouse", ["999999999"])
    assert_problem(r, 422, "unknown_store")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "k", "role": "warehouse", "store_ids": []}, "invalid_store_ids"),
        ({"name": "k", "role": "superuser", "store_ids": None}, "validation_error"),
        ({"name": "", "role": "warehouse", "store_ids": None}, "validation_error"),
        ({"name": "k", "role": "warehouse", "store_ids": ["abc"]}, "validation_error"),
        ({"name": "k", "role": "warehouse", "store_ids": None, "x": 1}, "validation_error"),
    ],
)
async def test_key_create_rejects_bad_input(api: Api, body: dict[str, Any], code: str) -> None:
    r = await api.client.post("/v1/api-keys", json=body, headers=ADMIN)
    problem = assert_problem(r, 422, code)
    assert problem["errors"]
    for err in problem["errors"]:
        assert {"loc", "msg"} <= err.keys()


async def test_secret_shown_once(api: Api) -> None:
    store = await api.store()
    r = await api.client.post(
        "/v1/api-keys",
        json={"name": "仓库 app", "role": "warehouse", "store_ids": [store["id"]]},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("sk_")
    assert len(created["secret"]) > 20
    assert isinstance(created["id"], str)
    assert created["name"] == "仓库 app"
    assert created["store_ids"] == [store["id"]]
    assert created["secret_prefix"] == created["secret"][:8]

    for params in ({}, {"include_revoked": "true"}):
        items = await list_all(api, "/v1/api-keys", ADMIN, **params)
        assert created["id"] in {k["id"] for k in items}
        for item in items:
            assert "secret" not in item
            assert created["secret"] not in item.values()
    r = await api.client.get("/v1/api-keys", params={"limit": 1}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert 'secret"' not in r.text


# ---------------------------------------------------------------------------------------------
# Bad input that must never reach PostgreSQL as a 500


async def test_key_for_store_id_beyond_bigint_is_422(api: Api) -> None:
    r = await api.client.post(
        "/v1/api-keys",
        json={"name": "k", "role": "warehouse", "store_ids": [2**63]},
        headers=ADMIN,
    )
    assert_problem(r, 422)


async def test_forged_api_keys_cursor_is_422(api: Api) -> None:
    cursor = base64.urlsafe_b64encode(b'["api-keys", "abc"]').decode().rstrip("=")
    r = await api.client.get("/v1/api-keys", params={"cursor": cursor}, headers=ADMIN)
    assert_problem(r, 422, "invalid_cursor")
