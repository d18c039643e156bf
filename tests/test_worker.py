"""The sweep loop: advisory-lock leadership, the admin endpoint, threshold refresh."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.domain.clock import FixedClock
from app.domain.dispatch.sweep import sweep_orders
from app.worker import SWEEP_LOCK_KEY, Sweeper, run_sweeps
from tests.domain.dispatch.test_sweep import H, T, awaiting, events_of, insert_orders, new_store
from tests.helpers import ADMIN, Api, SettableClock, assert_problem


async def test_only_the_lock_holder_sweeps(app: Any) -> None:
    state = app.state
    async with state.engine.connect() as holder:
        await holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": SWEEP_LOCK_KEY})
        await holder.commit()
        try:
            skipped = await run_sweeps(
                state.engine, state.sessionmaker, FixedClock(datetime.now(UTC)), 24, wait=False
            )
            assert skipped is None
        finally:
            await holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": SWEEP_LOCK_KEY})
            await holder.commit()
    report = await run_sweeps(
        state.engine, state.sessionmaker, FixedClock(datetime.now(UTC)), 24, wait=False
    )
    assert report is not None
    assert set(report) == {"dispatch", "inventory", "tickets", "promotions", "housekeeping"}


async def _lock_waiters(conn: Any, n: int) -> None:
    """Return once ``n`` sessions wait for the sweep lock."""
    # pg_locks splits a bigint advisory key into its high (classid) and low (objid) halves.
    waiting = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid::bigint = :hi AND objid::bigint = :lo "
        # Advisory locks are per database; other databases on the server sweep too.
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    params = {"hi": SWEEP_LOCK_KEY >> 32, "lo": SWEEP_LOCK_KEY & 0xFFFF_FFFF}
    while (await conn.execute(waiting, params)).scalar_one() < n:
        await conn.commit()
        await asyncio.sleep(0.01)
    await conn.commit()


async def test_parallel_admin_sweeps_take_turns(api: Api, app: Any, clock: SettableClock) -> None:
    """Three admin sweeps at once run one after another: the first does the work, the others
    find it done; each reports every sweep."""
    now = T + 24 * H
    await sweep_orders(app.state.sessionmaker, now)  # settle every other test's orders first
    store, policy = await new_store(api, "pdd")
    await insert_orders(app, store, [awaiting(T, policy) for _ in range(25)])
    clock.set(now)
    async with app.state.sessionmaker() as session:
        skus = (await session.execute(sa.text("SELECT count(*) FROM stock_levels"))).scalar_one()
    # Hold the sweep lock: all three requests must queue behind it, none may sweep meanwhile.
    async with app.state.engine.connect() as holder:
        await holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": SWEEP_LOCK_KEY})
        await holder.commit()
        try:
            requests = [
                asyncio.create_task(api.client.post("/v1/admin/sweep", headers=ADMIN))
                for _ in range(3)
            ]
            await asyncio.wait_for(_lock_waiters(holder, 3), timeout=30)
            assert not any(task.done() for task in requests)
        finally:
            await holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": SWEEP_LOCK_KEY})
            await holder.commit()
        responses = await asyncio.gather(*requests)
    reports = []
    for r in responses:
        assert r.status_code == 200, r.text
        reports.append(r.json())
    for report in reports:
        assert set(report) == {"dispatch", "inventory", "tickets", "promotions", "housekeeping"}
        assert report["inventory"]["skus_checked"] == skus
    # Taking turns, the first sweep notifies all 25 orders and the later two find nothing.
    assert sorted(report["dispatch"]["at_risk"] for report in reports) == [0, 0, 25]
    kinds = Counter(kind for kind, _ in await events_of(app, store))
    assert kinds == {"order.at_risk": 25}
    operator = await api.key("operator", None)
    assert_problem(await api.client.post("/v1/admin/sweep", headers=operator), 403)


async def test_sweep_refreshes_thresholds_as_sales_age(
    api: Api, app: Any, clock: SettableClock
) -> None:
    """Velocity comes from the last 28 days: as sales age out, the threshold falls."""
    store = await api.store()
    sku = await api.sku(store["id"])
    sku_id = int(sku["id"])
    now = datetime.now(UTC)
    async with app.state.sessionmaker() as session:
        await session.execute(
            sa.text(
                "UPDATE stock_levels SET on_hand = 100, low_notified = false, "
                "out_notified = false WHERE sku_id = :id"
            ),
            {"id": sku_id},
        )
        await session.execute(
            sa.text(
                "INSERT INTO stock_movements (sku_id, store_id, kind, quantity, on_hand_after, "
                "created_at) VALUES (:id, :store, 'ship', -140, 100, :at)"
            ),
            {"id": sku_id, "store": int(store["id"]), "at": now - timedelta(days=1)},
        )
        await session.commit()
    r = await api.client.post("/v1/admin/sweep", headers=ADMIN)
    assert r.json()["inventory"]["thresholds_changed"] >= 1
    stock = (await api.client.get(f"/v1/skus/{sku_id}/stock", headers=ADMIN)).json()
    assert (stock["velocity_class"], stock["threshold"], stock["low_stock"]) == ("hot", 70, False)
    clock.set(now + timedelta(days=30))
    await api.client.post("/v1/admin/sweep", headers=ADMIN)
    stock = (await api.client.get(f"/v1/skus/{sku_id}/stock", headers=ADMIN)).json()
    assert (stock["velocity_class"], stock["threshold"]) == ("slow", 0)


class _Records(logging.Handler):
    """Collects the sweep loop's log records (the loop itself swallows every failure)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, event: str) -> list[str]:
        """Messages of the records of one log event."""
        return [m for r in self.records if (m := r.getMessage()).startswith(event)]


async def test_sweeper_loop_runs_and_stops(api: Api, app: Any) -> None:
    """The background loop completes whole sweeps on its own (an order turns at risk), logs
    no failure, and stops when told."""
    state = app.state
    store, policy = await new_store(api, "pdd")
    (order_id,) = await insert_orders(app, store, [awaiting(T, policy)])
    logs = _Records()
    worker_log = logging.getLogger("storeops.worker")
    level = worker_log.level
    worker_log.addHandler(logs)
    worker_log.setLevel(logging.INFO)
    sweeper = Sweeper(
        state.engine, state.sessionmaker, FixedClock(T + 24 * H), interval=0.01, ttl_hours=24
    )
    sweeper.start()
    try:

        async def swept() -> None:
            while not logs.named("sweep.done"):
                assert not logs.named("sweep.failed"), logs.records[-1].exc_info
                await asyncio.sleep(0.02)

        await asyncio.wait_for(swept(), timeout=30)
    finally:
        await sweeper.stop()
        worker_log.removeHandler(logs)
        worker_log.setLevel(level)
    assert logs.named("sweep.failed") == []
    assert [(kind, data["order_id"]) for kind, data in await events_of(app, store)] == [
        ("order.at_risk", str(order_id))
    ]
    task = sweeper._task
    assert task is not None
    assert task.done()
    assert task.cancelled()
