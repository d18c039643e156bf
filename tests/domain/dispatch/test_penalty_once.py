"""A late-shipment penalty is recorded exactly once, by whichever comes first: the overdue sweep
or a late shipment; either way ``order.overdue`` carries the amount and ``order.shipped`` the
penalty on the order (DOMAIN.md §1–§2, §7)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

from app.domain.dispatch.sweep import sweep_orders
from tests.domain.dispatch.test_sweep import (
    NOTHING,
    D,
    H,
    T,
    awaiting,
    events_of,
    insert_orders,
    new_store,
    orders_of,
)
from tests.helpers import ADMIN, Api, SettableClock

BUYER = {
    "name": "张三",
    "phone": "13800138000",
    "province": "浙江省",
    "city": "杭州市",
    "address": "西湖区文三路 1 号",
}


def due(paid_at: Any, policy: Any, **cols: Any) -> dict[str, Any]:
    """An awaiting order with a whole buyer (the HTTP read model needs the address)."""
    return awaiting(paid_at, policy, buyer=BUYER, **cols)


def _ship_body() -> dict[str, str]:
    return {"carrier": "OTHER", "tracking_number": "X" + uuid.uuid4().hex[:15].upper()}


async def _ship(api: Api, order_id: int) -> dict[str, Any]:
    r = await api.client.post(f"/v1/orders/{order_id}/ship", json=_ship_body(), headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _of(evs: list[tuple[str, dict[str, Any]]], order_id: int) -> list[tuple[str, dict[str, Any]]]:
    return [(t, d) for t, d in evs if d["order_id"] == str(order_id)]


async def test_late_shipment_before_any_sweep_records_the_penalty(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store, policy = await new_store(api, "taobao")
    (late,) = await insert_orders(app, store, [due(T, policy, total="300.00")])
    clock.set(T + 50 * H)  # due at T + 48 h; no sweep ran
    shipped = await _ship(api, late)
    assert shipped["penalty"] == "30.00"
    assert "shipped_late" in shipped["flags"]

    evs = _of(await events_of(app, store), late)
    assert [t for t, _ in evs] == ["order.overdue", "order.shipped"]
    (row,) = await orders_of(app, [late])
    assert evs[0][1] == {
        "order_id": str(late),
        "external_id": row.external_id,
        "dispatch_deadline": T + 48 * H,
        "penalty": "30.00",
    }
    assert evs[1][1]["penalty"] == "30.00"
    assert evs[1][1]["late"] is True
    assert row.penalty == Decimal("30.00")

    # The sweep afterwards finds nothing left to record.
    assert await sweep_orders(app.state.sessionmaker, T + 60 * H) == NOTHING
    assert [t for t, _ in _of(await events_of(app, store), late)] == [
        "order.overdue",
        "order.shipped",
    ]


async def test_sweep_first_then_late_shipment_keeps_the_one_penalty(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store, policy = await new_store(api, "pdd")
    late, on_time = await insert_orders(app, store, [due(T, policy), due(T, policy)])
    clock.set(T + 10 * H)
    shipped = await _ship(api, on_time)
    assert (shipped["penalty"], "shipped_late" in shipped["flags"]) == ("0.00", False)

    assert (await sweep_orders(app.state.sessionmaker, T + 49 * H))["overdue"] == 1
    clock.set(T + 50 * H)
    shipped = await _ship(api, late)
    assert shipped["penalty"] == "3.00"
    assert "shipped_late" in shipped["flags"]

    evs = await events_of(app, store)
    assert [t for t, _ in _of(evs, late)] == ["order.overdue", "order.shipped"]
    assert _of(evs, late)[0][1]["penalty"] == "3.00"
    assert _of(evs, late)[1][1]["penalty"] == "3.00"
    # (The sweep also saw no pickup scan of the on-time order: fake-shipment risk.)
    shipments = [d for t, d in _of(evs, on_time) if t == "order.shipped"]
    assert [(d["late"], d["penalty"]) for d in shipments] == [(False, "0.00")]


async def test_sweep_racing_late_shipments_emits_one_overdue_each(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store, policy = await new_store(api, "taobao")
    now = T + 30 * D
    await sweep_orders(app.state.sessionmaker, now)  # settle every other test's orders first
    ids = await insert_orders(
        app, store, [due(now - 49 * H, policy, total="123.45") for _ in range(40)]
    )
    clock.set(now)
    results = await asyncio.gather(
        sweep_orders(app.state.sessionmaker, now),
        *(_ship(api, i) for i in ids),
        sweep_orders(app.state.sessionmaker, now),
    )
    assert {r["penalty"] for r in results[1:-1]} == {"12.35"}  # type: ignore[index]

    evs = await events_of(app, store)
    assert Counter(t for t, _ in evs) == {"order.overdue": 40, "order.shipped": 40}
    assert sorted(int(d["order_id"]) for t, d in evs if t == "order.overdue") == sorted(ids)
    assert {d["penalty"] for _, d in evs} == {"12.35"}
    rows = await orders_of(app, ids)
    assert {(str(r.penalty), r.shipped_late, r.status) for r in rows} == {
        ("12.35", True, "shipped")
    }
