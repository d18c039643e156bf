"""The stock ledger over HTTP: kinds, signs, the invariant, concurrency, ledger = balance."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tests.helpers import ADMIN, Api, assert_problem


async def _move(api: Api, sku_id: str, kind: str, quantity: int, **extra: Any) -> Any:
    return await api.client.post(
        "/v1/stock-movements",
        json={"sku_id": sku_id, "kind": kind, "quantity": quantity, **extra},
        headers=ADMIN,
    )


async def _stock(api: Api, sku_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/skus/{sku_id}/stock", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _ledger_sum(api: Api, sku_id: str) -> int:
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"sku_id": sku_id, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/v1/stock-movements", params=params, headers=ADMIN)).json()
        total += sum(m["quantity"] for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return total


async def test_kinds_and_signs(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    r = await _move(api, sku["id"], "receive", 100, reference="PO-1", reason="到货")
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["quantity"] == 100
    assert entry["on_hand_after"] == 100
    assert entry["kind"] == "receive"
    assert entry["reference"] == "PO-1"
    assert entry["reason"] == "到货"
    assert entry["api_key_id"] is not None
    assert (await _move(api, sku["id"], "damage", 3)).json()["quantity"] == -3
    assert (await _move(api, sku["id"], "return", 2)).json()["quantity"] == 2
    assert (await _move(api, sku["id"], "adjust", -9)).json()["on_hand_after"] == 90
    stock = await _stock(api, sku["id"])
    assert stock | {"avg_daily_sales": None} == {
        "sku_id": sku["id"],
        "on_hand": 90,
        "reserved": 0,
        "available": 90,
        "low_stock": False,
        "threshold": 0,
        "reorder_point": 0,
        "velocity_class": "slow",
        "avg_daily_sales": None,
        "backordered": 0,
    }
    assert await _ledger_sum(api, sku["id"]) == 90
    r = await api.client.get("/v1/stock-movements", params={"sku_id": sku["id"]}, headers=ADMIN)
    assert [m["kind"] for m in r.json()["items"]] == ["adjust", "return", "damage", "receive"]
    r = await api.client.get(
        "/v1/stock-movements", params={"store_id": store["id"], "kind": "damage"}, headers=ADMIN
    )
    assert [m["quantity"] for m in r.json()["items"]] == [-3]


async def test_bad_movements_change_nothing(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    await _move(api, sku["id"], "receive", 5)
    for kind, qty in [
        ("receive", 0),
        ("receive", -1),
        ("damage", 0),
        ("damage", -2),
        ("return", 0),
        ("adjust", 0),
        ("ship", 1),
        ("stocktake", 1),
        ("steal", 1),
    ]:
        assert_problem(await _move(api, sku["id"], kind, qty), 422)
    assert_problem(await _move(api, sku["id"], "receive", 1.5), 422)  # type: ignore[arg-type]
    assert_problem(await _move(api, sku["id"], "damage", 6), 409, "insufficient_stock")
    assert_problem(await _move(api, sku["id"], "adjust", -6), 409, "insufficient_stock")
    assert_problem(await _move(api, "99999999", "receive", 1), 404, "sku_not_found")
    assert (await _stock(api, sku["id"]))["on_hand"] == 5
    assert await _ledger_sum(api, sku["id"]) == 5


async def test_roles_and_scope(api: Api) -> None:
    store, other = await api.store(), await api.store()
    sku, foreign = await api.sku(store["id"]), await api.sku(other["id"])
    warehouse = await api.key("warehouse", [store["id"]])
    integration = await api.key("integration", [store["id"]])
    body = {"sku_id": sku["id"], "kind": "receive", "quantity": 1}
    r = await api.client.post("/v1/stock-movements", json=body, headers=warehouse)
    assert r.status_code == 201
    r = await api.client.post("/v1/stock-movements", json=body, headers=integration)
    assert_problem(r, 403, "forbidden_role")
    r = await api.client.post(
        "/v1/stock-movements", json={**body, "sku_id": foreign["id"]}, headers=warehouse
    )
    assert_problem(r, 404, "sku_not_found")
    r = await api.client.get(f"/v1/skus/{foreign['id']}/stock", headers=warehouse)
    assert_problem(r, 404, "sku_not_found")


async def test_parallel_removals_never_oversell(api: Api) -> None:
    """60 parallel single-unit removals on 20 units: exactly 20 succeed, on_hand ends at 0."""
    store = await api.store()
    sku = await api.sku(store["id"])
    await _move(api, sku["id"], "receive", 20)
    responses = await asyncio.gather(*(_move(api, sku["id"], "damage", 1) for _ in range(60)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 20
    assert statuses.count(409) == 40
    stock = await _stock(api, sku["id"])
    assert stock["on_hand"] == 0
    assert await _ledger_sum(api, sku["id"]) == 0


async def test_ledger_sum_equals_balance_for_random_sequences(api: Api) -> None:
    """Whatever the sequence (rejected movements included), on_hand equals the ledger sum."""
    rng = random.Random(20261126)
    store = await api.store()
    for _ in range(12):
        sku = await api.sku(store["id"])
        for _ in range(rng.randint(1, 12)):
            kind = rng.choice(["receive", "damage", "return", "adjust"])
            qty = rng.randint(1, 30)
            if kind == "adjust" and rng.random() < 0.5:
                qty = -qty
            r = await _move(api, sku["id"], kind, qty)
            assert r.status_code in (201, 409), r.text
        stock = await _stock(api, sku["id"])
        assert stock["on_hand"] == await _ledger_sum(api, sku["id"])
        assert stock["on_hand"] >= 0


async def test_random_concurrent_mix_keeps_ledger_and_balance_equal(api: Api) -> None:
    """50 concurrent movements: each is applied (201, its signed quantity) or refused for want
    of stock (409); the balance is the start plus exactly the applied ones."""
    rng = random.Random(20261201)
    store = await api.store()
    sku = await api.sku(store["id"])
    await _move(api, sku["id"], "receive", 30)
    ops = [
        rng.choice([("damage", 2, -2), ("receive", 3, 3), ("adjust", -4, -4), ("return", 1, 1)])
        for _ in range(50)
    ]
    responses = await asyncio.gather(*(_move(api, sku["id"], k, q) for k, q, _ in ops))
    applied = 0
    for (kind, _, delta), r in zip(ops, responses, strict=True):
        if r.status_code == 409 and delta < 0:
            assert_problem(r, 409, "insufficient_stock")
            continue
        assert r.status_code == 201, (kind, r.text)
        assert (r.json()["kind"], r.json()["quantity"]) == (kind, delta)
        applied += delta
    stock = await _stock(api, sku["id"])
    assert stock["on_hand"] == 30 + applied
    assert stock["on_hand"] == await _ledger_sum(api, sku["id"])
    assert stock["on_hand"] >= 0
