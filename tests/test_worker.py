"""The sweep loop: advisory-lock leadership, the admin endpoint, threshold refresh."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.domain.clock import FixedClock
from app.worker import SWEEP_LOCK_KEY, Sweeper, run_sweeps
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
    assert set(report) == {"dispatch", "inventory", "housekeeping"}


async def test_parallel_admin_sweeps_take_turns(api: Api) -> None:
    responses = await asyncio.gather(
        *(api.client.post("/v1/admin/sweep", headers=ADMIN) for _ in range(3))
    )
    for r in responses:
        assert r.status_code == 200, r.text
        assert r.json()["inventory"]["skus_checked"] >= 0
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


async def test_sweeper_loop_runs_and_stops(app: Any) -> None:
    state = app.state
    sweeper = Sweeper(
        state.engine, state.sessionmaker, FixedClock(datetime.now(UTC)), interval=0.01, ttl_hours=24
    )
    sweeper.start()
    await asyncio.sleep(0.3)
    await sweeper.stop()
