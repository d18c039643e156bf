"""Stock transitions and SKU changes under real concurrency (issue 7, item 5).

Every request here runs in parallel with others through the HTTP API: ``asyncio.gather``
over the in-process client, each request on its own pooled connection and transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy.engine import make_url

from tests.helpers import ADMIN, Api, assert_problem, unique
from tests.routers.test_orders import order_body, stock, stocked_sku


async def _events(app: Any, store_id: str, type_: str) -> list[dict[str, Any]]:
    """The store's events of ``type_`` in feed order, read from the table itself.

    The feed hides events until every older transaction of the whole server has ended,
    and other test runs share this server: reading the rows keeps the test exact.
    """
    con = await asyncpg.connect(_dsn(app))
    try:
        rows = await con.fetch(
            "SELECT data::text FROM events WHERE store_id = $1 AND type = $2 ORDER BY tx_id, id",
            int(store_id),
            type_,
        )
    finally:
        await con.close()
    return [{"data": orjson.loads(r[0])} for r in rows]


def _dsn(app: Any) -> str:
    url = make_url(app.state.settings.database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def test_parallel_orders_cross_each_line_once(api: Api, app: Any) -> None:
    """on_hand 100, threshold 10, 20 parallel orders of 5: low, out and delist exactly once."""
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 100, low_stock_threshold=10)

    async def place() -> int:
        body = order_body(
            store["id"],
            [{"sku_id": sku["id"], "quantity": 5, "unit_price": "1.00"}],
            allow_backorder=False,
        )
        return (await api.client.post("/v1/orders", json=body, headers=ADMIN)).status_code

    statuses = await asyncio.gather(*(place() for _ in range(20)))
    assert statuses == [201] * 20
    s = await stock(api, sku["id"])
    assert (s["on_hand"], s["reserved"], s["available"]) == (100, 100, 0)
    got = (await api.client.get(f"/v1/skus/{sku['id']}", headers=ADMIN)).json()
    assert (got["status"], got["delisted_by"]) == ("delisted", "auto")
    low = await _events(app, store["id"], "stock.low")
    out = await _events(app, store["id"], "stock.out")
    delisted = await _events(app, store["id"], "sku.delisted")
    assert [e["data"]["sku_id"] for e in low] == [sku["id"]]
    assert [e["data"]["sku_id"] for e in out] == [sku["id"]]
    assert [e["data"]["sku_id"] for e in delisted] == [sku["id"]]
    assert 0 <= low[0]["data"]["available"] <= 10
    assert out[0]["data"]["available"] == 0
    assert delisted[0]["data"]["manual"] is False


async def test_backorder_order_is_never_refused_after_retries(api: Api, app: Any) -> None:
    """Stock taken at commit found gone on every attempt: the retry takes the exact path.

    An adversary connection takes every unit in an open transaction, waits until someone
    waits for its row lock, commits, gives the units back at once and takes them again. A
    request that saw plenty left and deferred its take finds the stock gone at each
    commit; only the exact path (lock first, then read) escapes, as a backorder.
    """
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 50)
    sku_id = int(sku["id"])
    done = asyncio.Event()
    con = await asyncpg.connect(_dsn(app))
    watcher = await asyncpg.connect(_dsn(app))
    take_all = (
        "UPDATE stock_levels l SET reserved = l.on_hand FROM (SELECT reserved FROM stock_levels"
        " WHERE sku_id = $1 FOR UPDATE) o WHERE l.sku_id = $1 RETURNING l.on_hand - o.reserved"
    )
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))"
    blocker = con.get_server_pid()

    # The first take is in place before the request starts.
    await con.execute("BEGIN")
    first: int = await con.fetchval(take_all, sku_id)

    async def adversary() -> int:
        rounds, taken = 0, first
        while not done.is_set():
            if not await watcher.fetchval(waiting, blocker):
                await asyncio.sleep(0.001)
                continue
            rounds += 1
            await con.execute("COMMIT")
            await con.execute(
                "UPDATE stock_levels SET reserved = reserved - $2 WHERE sku_id = $1",
                sku_id,
                taken,
            )
            await con.execute("BEGIN")
            taken = await con.fetchval(take_all, sku_id)
        await con.execute("COMMIT")
        await con.execute(
            "UPDATE stock_levels SET reserved = reserved - $2 WHERE sku_id = $1", sku_id, taken
        )
        return rounds

    async def order() -> Any:
        try:
            body = order_body(
                store["id"],
                [{"sku_id": sku["id"], "quantity": 3, "unit_price": "1.00"}],
                allow_backorder=True,
            )
            return await api.client.post("/v1/orders", json=body, headers=ADMIN)
        finally:
            done.set()

    try:
        rounds, r = await asyncio.wait_for(asyncio.gather(adversary(), order()), 60)
    finally:
        await con.close()
        await watcher.close()
    assert r.status_code == 201, r.text
    assert rounds >= 1  # the request waited for the adversary's lock at least once
    s = await stock(api, sku["id"])
    assert s["reserved"] == sum(i["reserved"] for i in r.json()["items"])


async def _locked_while_blocked(app: Any, sku_ids: list[int], blocked_on: int, post: Any) -> Any:
    """Run ``post`` while ``blocked_on``'s balance is locked: the balances it held then, the
    statement it waited in, and its response.

    Another connection holds the lock on one balance; once the request waits for it, a
    probe lists the balances it does *not* hold (``SKIP LOCKED``). A request that locks in
    SKU-id order holds exactly the balances with lower ids at that moment.
    """
    blocker = await asyncpg.connect(_dsn(app))
    probe = await asyncpg.connect(_dsn(app))
    try:
        await blocker.execute("BEGIN")
        await blocker.execute("SELECT 1 FROM stock_levels WHERE sku_id = $1 FOR UPDATE", blocked_on)
        task = asyncio.ensure_future(post())
        waiting = "SELECT query FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))"
        for _ in range(2000):
            statement = await probe.fetchval(waiting, blocker.get_server_pid())
            if statement is not None:
                break
            await asyncio.sleep(0.005)
        else:
            raise AssertionError("the request never waited for the locked balance")
        async with probe.transaction():
            free = await probe.fetch(
                "SELECT sku_id FROM stock_levels WHERE sku_id = ANY($1::bigint[])"
                " AND sku_id <> $2 FOR UPDATE SKIP LOCKED",
                sku_ids,
                blocked_on,
            )
        await blocker.execute("COMMIT")
        response = await asyncio.wait_for(task, 30)
    finally:
        await blocker.close()
        await probe.close()
    held = sorted(set(sku_ids) - {blocked_on} - {r["sku_id"] for r in free})
    return held, statement, response


async def _skus_stored_backwards(api: Api, store_id: str, n: int) -> list[int]:
    """``n`` stocked SKUs whose rows lie on disk in descending id order.

    A statement that locks balances in the order it happens to scan ``skus`` or
    ``stock_levels`` then locks them backwards.
    """
    skus = [int((await api.sku(store_id))["id"]) for _ in range(n)]
    for sku in reversed(skus):  # each change writes a new row version at the end
        r = await api.client.post(
            "/v1/stock-movements",
            json={"sku_id": str(sku), "kind": "receive", "quantity": 100_000},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        r = await api.client.patch(f"/v1/skus/{sku}", json={"title": "反"}, headers=ADMIN)
        assert r.status_code == 200, r.text
    return skus


async def test_bulk_batch_locks_balances_in_sku_order(api: Api, app: Any) -> None:
    """The optimistic bulk path locks in SKU-id order whatever the order of the lines."""
    store = await api.store()
    skus = await _skus_stored_backwards(api, store["id"], 6)
    body = {
        "orders": [
            order_body(
                store["id"],
                [{"sku_id": str(s), "quantity": 1, "unit_price": "1.00"} for s in skus[::-1]],
            )
        ]
    }

    async def post() -> Any:
        return await api.client.post("/v1/orders/bulk", json=body, headers=ADMIN)

    held, _, r = await _locked_while_blocked(app, skus, skus[3], post)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == [201]
    assert held == skus[:3]


@pytest.mark.parametrize("key", [None, "intake-1"])
async def test_multi_line_order_takes_stock_at_commit_in_sku_order(
    api: Api, app: Any, key: str | None
) -> None:
    """Plenty left on every SKU: a multi-line order locks nothing until COMMIT, where the
    deferred trigger takes the balances in SKU-id order whatever the order of the lines.

    Without an Idempotency-Key the order is written by one statement that is a transaction
    by itself (its COMMIT is the end of that statement); with one, in the request's
    transaction with the stored response."""
    store = await api.store()
    skus = await _skus_stored_backwards(api, store["id"], 6)
    body = order_body(
        store["id"],
        [{"sku_id": str(s), "quantity": 2, "unit_price": "1.00"} for s in skus[::-1]],
    )

    async def post() -> Any:
        headers = ADMIN if key is None else {**ADMIN, "Idempotency-Key": key}
        return await api.client.post("/v1/orders", json=body, headers=headers)

    held, statement, r = await _locked_while_blocked(app, skus, skus[3], post)
    assert r.status_code == 201, r.text
    assert r.json()["allocation"] == "full"
    # The statement that waits for the balance lock is the one whose COMMIT runs the trigger.
    if key is None:
        assert "INSERT INTO orders" in statement
    else:
        assert statement.rstrip(";") == "COMMIT"
    assert held == skus[:3]
    for s in skus:
        assert (await stock(api, str(s)))["reserved"] == 2


async def test_manual_delist_and_relist_emit_events(api: Api, app: Any) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 7)
    url = f"/v1/skus/{sku['id']}"
    r = await api.client.patch(url, json={"status": "delisted"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = await api.client.patch(url, json={"status": "delisted", "title": "x"}, headers=ADMIN)
    assert r.status_code == 200, r.text  # no change of status: no second event
    r = await api.client.patch(url, json={"status": "active"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    delisted = await _events(app, store["id"], "sku.delisted")
    relisted = await _events(app, store["id"], "sku.relisted")
    assert [(e["data"]["sku_id"], e["data"]["manual"]) for e in delisted] == [(sku["id"], True)]
    assert [(e["data"]["sku_id"], e["data"]["manual"]) for e in relisted] == [(sku["id"], True)]
    assert delisted[0]["data"]["available"] == 7


@pytest.mark.parametrize("attempt", range(3))
async def test_parallel_renames_to_one_code(api: Api, attempt: int) -> None:
    """Two SKUs renamed to one code at once: one 200, one 409 duplicate_sku, never a 500."""
    store = await api.store()
    pairs = [(await api.sku(store["id"]), await api.sku(store["id"])) for _ in range(5)]
    codes = [unique("same") for _ in pairs]
    results = await asyncio.gather(
        *(
            api.client.patch(f"/v1/skus/{sku['id']}", json={"sku_code": code}, headers=ADMIN)
            for pair, code in zip(pairs, codes, strict=True)
            for sku in pair
        )
    )
    for n in range(len(pairs)):
        a, b = results[2 * n], results[2 * n + 1]
        assert sorted((a.status_code, b.status_code)) == [200, 409], (a.text, b.text)
        assert_problem(a if a.status_code == 409 else b, 409, "duplicate_sku")
