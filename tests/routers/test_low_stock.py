"""``GET /v1/low-stock``: live thresholds from 28-day sales, auto-delisted SKUs included, full
pages across scan batches, cursor walk, roles and store scope."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from app.pagination import encode_cursor
from tests.helpers import ADMIN, Api, assert_problem, unique


async def set_stock(
    app: Any,
    sku_id: str,
    *,
    on_hand: int,
    reserved: int = 0,
    shipped: int = 0,
    shipped_days_ago: int = 1,
    backordered: int = 0,
) -> None:
    """Put a balance, 28-day sales (one ``ship`` movement) and waiting lines on a SKU."""
    params = {"id": int(sku_id), "on_hand": on_hand, "reserved": reserved}
    async with app.state.sessionmaker() as session:
        await session.execute(
            sa.text(
                "UPDATE stock_levels SET on_hand = :on_hand, reserved = :reserved "
                "WHERE sku_id = :id"
            ),
            params,
        )
        if shipped:
            await session.execute(
                sa.text(
                    "INSERT INTO stock_movements (sku_id, store_id, kind, quantity, "
                    "on_hand_after, reason, created_at) "
                    "SELECT id, store_id, 'ship', -CAST(:q AS int), :on_hand, 'test', "
                    "now() - make_interval(days => :days) FROM skus WHERE id = :id"
                ),
                {**params, "q": shipped, "days": shipped_days_ago},
            )
        if backordered:
            await session.execute(
                sa.text(
                    "INSERT INTO reservations (sku_id, store_id, line_ref, requested, reserved, "
                    "placed_at) SELECT id, store_id, :ref, :q, 0, now() FROM skus WHERE id = :id"
                ),
                {**params, "q": backordered, "ref": unique("line")},
            )
        await session.commit()


async def bulk_skus(app: Any, store_id: str, count: int, on_hand: int) -> list[int]:
    """Insert ``count`` SKUs with balances straight into the tables (fast), ids ascending."""
    async with app.state.sessionmaker() as session:
        ids = (
            await session.execute(
                sa.text(
                    "INSERT INTO skus (store_id, sku_code, title, price, version) "
                    "SELECT :store, :prefix || lpad(n::text, 5, '0'), '批量商品 ' || n, 9.90, 1 "
                    "FROM generate_series(1, :count) AS n RETURNING id"
                ),
                {"store": int(store_id), "prefix": unique("bulk") + "-", "count": count},
            )
        ).scalars()
        ids_sorted = sorted(ids)
        await session.execute(
            sa.text(
                "INSERT INTO stock_levels (sku_id, store_id, on_hand) "
                "SELECT id, :store, :on_hand FROM unnest(CAST(:ids AS bigint[])) AS id"
            ),
            {"store": int(store_id), "on_hand": on_hand, "ids": ids_sorted},
        )
        await session.commit()
    return ids_sorted


async def low(api: Api, headers: dict[str, str] | None = None, **params: Any) -> Any:
    r = await api.client.get("/v1/low-stock", params=params, headers=headers or ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


async def walk(api: Api, store_id: str, limit: int) -> list[dict[str, Any]]:
    """Every item of the list, page by page."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        params: dict[str, Any] = {"store_id": store_id, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = await low(api, **params)
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["items"]) == limit  # pages before the last are full
    raise AssertionError("cursor never ended")


# ---------------------------------------------------------------------------------------------
# Figures


async def test_vector_numbers_end_to_end(api: Api, app: Any) -> None:
    store = await api.store()
    sid = store["id"]
    hot_low = await api.sku(sid, title="西湖龙井 明前特级 500g")
    await set_stock(app, hot_low["id"], on_hand=60, reserved=10, shipped=280)
    hot_ok = await api.sku(sid)
    await set_stock(app, hot_ok["id"], on_hand=200, shipped=140)
    regular = await api.sku(sid, lead_time_days=10)
    await set_stock(app, regular["id"], on_hand=5, shipped=56, backordered=3)
    slow = await api.sku(sid)
    await set_stock(app, slow["id"], on_hand=0, shipped=3)
    idle_empty = await api.sku(sid)
    idle_stocked = await api.sku(sid)
    await set_stock(app, idle_stocked["id"], on_hand=4)
    explicit = await api.sku(sid, low_stock_threshold=5)
    await set_stock(app, explicit["id"], on_hand=5, shipped=280)
    above_explicit = await api.sku(sid, low_stock_threshold=5)
    await set_stock(app, above_explicit["id"], on_hand=6, shipped=280)

    items = (await low(api, store_id=sid))["items"]
    by_id = {i["sku_id"]: i for i in items}
    assert list(by_id) == [
        hot_low["id"],
        regular["id"],
        slow["id"],
        idle_empty["id"],
        explicit["id"],
    ]
    assert by_id[hot_low["id"]] == {
        "sku_id": hot_low["id"],
        "store_id": sid,
        "sku_code": hot_low["sku_code"],
        "title": "西湖龙井 明前特级 500g",
        "status": "active",
        "available": 50,
        "threshold": 140,
        "backordered": 0,
        "velocity_class": "hot",
        "avg_daily_sales": "10.0000",
        "suggested_reorder": 230,
    }
    assert (
        by_id[regular["id"]]["avg_daily_sales"],
        by_id[regular["id"]]["velocity_class"],
        by_id[regular["id"]]["threshold"],
        by_id[regular["id"]]["suggested_reorder"],
    ) == ("2.0000", "regular", 26, 52)
    s = by_id[slow["id"]]
    assert (s["avg_daily_sales"], s["velocity_class"], s["threshold"], s["suggested_reorder"]) == (
        "0.1071",
        "slow",
        1,
        3,
    )
    e = by_id[idle_empty["id"]]
    assert (e["available"], e["threshold"], e["velocity_class"], e["suggested_reorder"]) == (
        0,
        0,
        "slow",
        1,  # never sold, but out of stock: one brings it above its threshold of 0
    )
    x = by_id[explicit["id"]]
    assert (x["available"], x["threshold"], x["suggested_reorder"]) == (5, 5, 275)


async def test_only_last_28_days_count(api: Api, app: Any) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    await set_stock(app, sku["id"], on_hand=60, shipped=140, shipped_days_ago=27)
    await set_stock(app, sku["id"], on_hand=60, shipped=1000, shipped_days_ago=29)
    [item] = (await low(api, store_id=store["id"]))["items"]
    assert (item["avg_daily_sales"], item["velocity_class"], item["threshold"]) == (
        "5.0000",
        "hot",
        70,
    )


async def test_auto_delisted_sku_listed_manually_delisted_not(api: Api, app: Any) -> None:
    store = await api.store()
    auto = await api.sku(store["id"])
    by_hand = await api.sku(store["id"])
    for sku in (auto, by_hand):
        for kind in ("receive", "damage"):  # 1 in, 1 out: out of stock, delisted automatically
            r = await api.client.post(
                "/v1/stock-movements",
                json={"sku_id": sku["id"], "kind": kind, "quantity": 1},
                headers=ADMIN,
            )
            assert r.status_code == 201, r.text
        await set_stock(app, sku["id"], on_hand=0, shipped=10)
    r = await api.client.patch(
        f"/v1/skus/{by_hand['id']}", json={"status": "delisted"}, headers=ADMIN
    )
    assert (r.status_code, r.json()["delisted_by"]) == (200, "manual"), r.text
    r = await api.client.get(f"/v1/skus/{auto['id']}", headers=ADMIN)
    assert (r.json()["status"], r.json()["delisted_by"]) == ("delisted", "auto")
    items = (await low(api, store_id=store["id"]))["items"]
    assert [(i["sku_id"], i["status"]) for i in items] == [(auto["id"], "delisted")]


async def test_threshold_is_live_not_cached(api: Api, app: Any) -> None:
    """Sales written without refreshing ``stock_levels.threshold`` still count."""
    store = await api.store()
    sku = await api.sku(store["id"])
    await set_stock(app, sku["id"], on_hand=100, shipped=280)
    async with app.state.sessionmaker() as session:
        cached = (
            await session.execute(
                sa.text("SELECT threshold FROM stock_levels WHERE sku_id = :id"),
                {"id": int(sku["id"])},
            )
        ).scalar_one()
    assert cached == 0
    [item] = (await low(api, store_id=store["id"]))["items"]
    assert item["threshold"] == 140


# ---------------------------------------------------------------------------------------------
# Pagination


async def test_limit_1_walks_every_match_once(api: Api, app: Any) -> None:
    store = await api.store()
    expected = []
    for n in range(7):
        sku = await api.sku(store["id"])
        if n % 2 == 0:
            await set_stock(app, sku["id"], on_hand=0)
            expected.append(sku["id"])
        else:
            await set_stock(app, sku["id"], on_hand=10)
    for limit in (1, 2, 3, 4, 50):
        items = await walk(api, store["id"], limit)
        assert [i["sku_id"] for i in items] == expected, limit


async def test_pages_stay_full_across_scan_batches(api: Api, app: Any) -> None:
    """Matches far apart (more than one 1,000-SKU batch) still fill each page."""
    store = await api.store()
    ids = await bulk_skus(app, store["id"], 2_300, on_hand=10)
    chosen = [ids[2], ids[1_500], ids[2_250]]
    async with app.state.sessionmaker() as session:
        await session.execute(
            sa.text("UPDATE stock_levels SET on_hand = 0 WHERE sku_id = ANY(:ids)"),
            {"ids": chosen},
        )
        await session.commit()
    first = await low(api, store_id=store["id"], limit=2)
    assert [i["sku_id"] for i in first["items"]] == [str(ids[2]), str(ids[1_500])]
    assert first["next_cursor"] is not None
    second = await low(api, store_id=store["id"], limit=2, cursor=first["next_cursor"])
    assert [i["sku_id"] for i in second["items"]] == [str(ids[2_250])]
    assert second["next_cursor"] is None
    assert [i["sku_id"] for i in await walk(api, store["id"], 1)] == [str(i) for i in chosen]


async def test_bad_cursor_and_limit(api: Api) -> None:
    store = await api.store()
    for cursor in ("nope", encode_cursor("skus", 1), encode_cursor("low-stock", "x")):
        r = await api.client.get(
            "/v1/low-stock", params={"store_id": store["id"], "cursor": cursor}, headers=ADMIN
        )
        assert_problem(r, 422, "invalid_cursor")
    for limit in (0, 501, "x"):
        r = await api.client.get("/v1/low-stock", params={"limit": limit}, headers=ADMIN)
        assert_problem(r, 422)


# ---------------------------------------------------------------------------------------------
# Roles and scope


@pytest.mark.parametrize("role", ["admin", "operator", "warehouse", "integration"])
async def test_any_role_reads_its_stores(api: Api, app: Any, role: str) -> None:
    mine = await api.store()
    other = await api.store()
    mine_sku = await api.sku(mine["id"])
    await api.sku(other["id"])  # empty, so low
    key = await api.key(role, [mine["id"]])
    page = await low(api, headers=key)
    assert {i["store_id"] for i in page["items"]} == {mine["id"]}
    assert [i["sku_id"] for i in page["items"]] == [mine_sku["id"]]
    assert (await low(api, headers=key, store_id=mine["id"]))["items"] == page["items"]
    r = await api.client.get("/v1/low-stock", params={"store_id": other["id"]}, headers=key)
    assert_problem(r, 404, "store_not_found")


async def test_unknown_store_and_no_key(api: Api) -> None:
    for store_id in ("999999999", "abc"):
        r = await api.client.get("/v1/low-stock", params={"store_id": store_id}, headers=ADMIN)
        assert_problem(r, 404, "store_not_found")
    assert_problem(await api.client.get("/v1/low-stock"), 401)
