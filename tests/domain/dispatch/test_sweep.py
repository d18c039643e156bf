"""The dispatch sweep against real PostgreSQL: each event exactly once, penalties recorded once,
the fake-shipment guard and auto-completion (DOMAIN.md §1–§2, §7)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.domain.dispatch import rules
from app.domain.dispatch.sweep import BATCH, sweep_orders
from app.domain.store.rules import DispatchPolicy, effective_policy
from app.models import Order
from tests.helpers import ADMIN, Api, SettableClock, assert_problem, unique

ORDERS = Order.__table__  # type: ignore[attr-defined]
T = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T")
H = timedelta(hours=1)
D = timedelta(days=1)
S = timedelta(seconds=1)
# A whole buyer, so the read model the API returns can be built.
BUYER = {
    "name": "张三",
    "phone": "13800138000",
    "province": "浙江省",
    "city": "杭州市",
    "address": "西湖区文三路 1 号",
}
NOTHING = {"at_risk": 0, "overdue": 0, "fake_shipment_risk": 0, "completed": 0}


def awaiting(paid_at: datetime, policy: DispatchPolicy, **cols: Any) -> dict[str, Any]:
    """Columns of an awaiting-shipment order paid at ``paid_at``, clock stored as intake does."""
    due = rules.deadline(paid_at, None, policy)
    assert due is not None
    return {
        "status": "awaiting_shipment",
        "paid_at": paid_at,
        "clock_started_at": paid_at,
        "dispatch_deadline": due,
        "at_risk_at": rules.at_risk_from(paid_at, due, policy),
        **cols,
    }


def shipped(shipped_at: datetime, **cols: Any) -> dict[str, Any]:
    """Columns of an order shipped at ``shipped_at`` (paid a day before)."""
    return {
        "status": "shipped",
        "paid_at": shipped_at - D,
        "clock_started_at": shipped_at - D,
        "dispatch_deadline": shipped_at + D,
        "carrier": "SF",
        "tracking_number": "SF" + uuid.uuid4().hex[:13].upper(),
        "shipped_at": shipped_at,
        **cols,
    }


# Every row of one INSERT names the same columns.
OPTIONAL: dict[str, Any] = {
    "paid_at": None,
    "clock_started_at": None,
    "dispatch_deadline": None,
    "at_risk_at": None,
    "carrier": None,
    "tracking_number": None,
    "shipped_at": None,
    "picked_up_at": None,
    "delivered_at": None,
    "penalty": Decimal("0.00"),
    "refund_pending": False,
    "fake_shipment_risk": False,
}


async def insert_orders(app: Any, store_id: int, orders: list[dict[str, Any]]) -> list[int]:
    """Insert orders by SQL (every NOT NULL column given); their ids in input order."""
    rows = []
    for cols in orders:
        total = Decimal(cols.pop("total", "59.90"))
        rows.append(
            {
                "store_id": store_id,
                "external_id": unique("pdd"),
                "allocation": "full",
                "placed_at": cols.get("paid_at") or T,
                "buyer": {"name": "张三", "phone": "13800138000", "province": "浙江省"},
                "buyer_phone": "13800138000",
                "subtotal": total,
                "discount": Decimal("0.00"),
                "shipping_fee": Decimal("0.00"),
                "total": total,
                "content_hash": uuid.uuid4().hex,
                "version": 1,
                **OPTIONAL,
                **cols,
            }
        )
    async with app.state.sessionmaker() as session:
        ids = (
            await session.execute(
                sa.insert(ORDERS).returning(ORDERS.c.id, sort_by_parameter_order=True), rows
            )
        ).scalars()
        out = list(ids)
        await session.commit()
    return out


async def new_store(api: Api, platform: str = "pdd", **policy: Any) -> tuple[int, DispatchPolicy]:
    """A store and its effective policy."""
    store = await api.store(platform, **({"dispatch_policy": policy} if policy else {}))
    return int(store["id"]), effective_policy(platform, policy)


def _instants(data: dict[str, Any]) -> dict[str, Any]:
    # Payload instants compared as instants: they are written in store time, whatever zone
    # the expected value is spelt in (test_store_time checks the offsets).
    return {
        k: datetime.fromisoformat(v) if isinstance(v, str) and _ISO.match(v) else v
        for k, v in data.items()
    }


async def events_of(app: Any, store_id: int) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the store's events, oldest first; payload instants parsed."""
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            sa.text("SELECT type, data FROM events WHERE store_id = :s ORDER BY id"),
            {"s": store_id},
        )
        return [(r.type, _instants(r.data)) for r in rows]


async def orders_of(app: Any, ids: list[int]) -> list[Any]:
    """Order rows by id, in the order given."""
    async with app.state.sessionmaker() as session:
        rows = {
            r.id: r
            for r in await session.execute(
                sa.text("SELECT * FROM orders WHERE id = ANY(:ids)"), {"ids": ids}
            )
        }
    return [rows[i] for i in ids]


async def sweep_twice(app: Any, now: datetime) -> dict[str, int]:
    """Sweep at ``now``, then again: the repeat finds nothing to do."""
    first = await sweep_orders(app.state.sessionmaker, now)
    assert await sweep_orders(app.state.sessionmaker, now) == NOTHING
    return first


def of_type(events: list[tuple[str, dict[str, Any]]], type_: str) -> list[str]:
    """Order ids of the events of one type."""
    return [data["order_id"] for t, data in events if t == type_]


# ---------------------------------------------------------------------------------------------
# At risk and overdue


async def overdue_data(order_id: int, deadline: datetime, penalty: str, app: Any) -> dict[str, Any]:
    """The data of an ``order.overdue`` event."""
    (row,) = await orders_of(app, [order_id])
    return {
        "order_id": str(order_id),
        "external_id": row.external_id,
        "dispatch_deadline": deadline,
        "penalty": penalty,
    }


async def test_at_risk_then_overdue_each_once(api: Api, app: Any) -> None:
    store, policy = await new_store(api, "pdd")
    a, b, late, unpaid = await insert_orders(
        app,
        store,
        [
            awaiting(T, policy),  # at risk from T + 24 h, due T + 48 h
            awaiting(T + 10 * H, policy),  # at risk from T + 34 h, due T + 58 h
            awaiting(T - 100 * H, policy),  # already overdue at the first sweep
            {"status": "pending_payment"},
        ],
    )

    await sweep_twice(app, T + 24 * H - S)
    assert await events_of(app, store) == [
        ("order.overdue", await overdue_data(late, T - 52 * H, "3.00", app)),
    ]

    await sweep_twice(app, T + 24 * H)
    evs = await events_of(app, store)
    assert of_type(evs, "order.at_risk") == [str(a)]
    at_risk = evs[-1][1]
    (row,) = await orders_of(app, [a])
    assert at_risk == {
        "order_id": str(a),
        "external_id": row.external_id,
        "dispatch_deadline": T + 48 * H,
        "at_risk_at": T + 24 * H,
        "seconds_left": 24 * 3600,
    }

    # Exactly at the deadline an order is at risk, not yet overdue.
    await sweep_twice(app, T + 48 * H)
    evs = await events_of(app, store)
    assert of_type(evs, "order.at_risk") == [str(a), str(b)]
    assert of_type(evs, "order.overdue") == [str(late)]

    await sweep_twice(app, T + 48 * H + S)
    evs = await events_of(app, store)
    assert of_type(evs, "order.overdue") == [str(late), str(a)]
    assert evs[-1][1]["penalty"] == "3.00"
    # An order that turns overdue is not "at risk" again; later sweeps add nothing.
    await sweep_twice(app, T + 100 * H)
    evs = await events_of(app, store)
    assert Counter(t for t, _ in evs) == {"order.at_risk": 2, "order.overdue": 3}
    assert sorted(of_type(evs, "order.overdue")) == sorted([str(late), str(a), str(b)])

    rows = await orders_of(app, [a, b, late, unpaid])
    assert [(r.penalty, r.version) for r in rows] == [
        (Decimal("3.00"), 2),
        (Decimal("3.00"), 2),
        (Decimal("3.00"), 2),
        (Decimal("0.00"), 1),
    ]
    assert all(r.status == "awaiting_shipment" for r in rows[:3])


async def test_penalty_recorded_once_with_the_platform_amount(api: Api, app: Any) -> None:
    cases = {
        "pdd": [("59.90", "3.00"), ("2000.00", "3.00")],
        "taobao": [
            ("20.00", "5.00"),
            ("300.00", "30.00"),
            ("2000.00", "100.00"),
            ("123.45", "12.35"),
            ("50.05", "5.01"),
        ],
        "tmall": [("300.00", "30.00")],
        "douyin": [("59.90", "10.00")],
        "jd": [("59.90", "0.00")],
    }
    expected: dict[int, tuple[int, str]] = {}
    for platform, amounts in cases.items():
        store, policy = await new_store(api, platform)
        ids = await insert_orders(
            app, store, [awaiting(T, policy, total=total) for total, _ in amounts]
        )
        for order_id, (_, penalty) in zip(ids, amounts, strict=True):
            expected[order_id] = (store, penalty)

    await sweep_twice(app, T + 48 * H + S)
    await sweep_twice(app, T + 96 * H)

    for store in {s for s, _ in expected.values()}:
        evs = await events_of(app, store)
        assert {t for t, _ in evs} == {"order.overdue"}
        overdue = {data["order_id"]: data["penalty"] for t, data in evs if t == "order.overdue"}
        mine = {str(o): p for o, (s, p) in expected.items() if s == store}
        assert overdue == mine
        assert len(of_type(evs, "order.overdue")) == len(mine)
    rows = await orders_of(app, list(expected))
    assert [str(r.penalty) for r in rows] == [p for _, p in expected.values()]
    assert {r.version for r in rows} == {2}


async def test_penalty_follows_store_overrides_and_a_stored_penalty_is_kept(
    api: Api, app: Any
) -> None:
    store, policy = await new_store(api, "taobao", late_penalty={"max": "50.00"}, dispatch_hours=24)
    capped, preset = await insert_orders(
        app,
        store,
        [awaiting(T, policy, total="2000.00"), awaiting(T, policy, penalty=Decimal("7.77"))],
    )
    assert policy.dispatch_hours == 24
    await sweep_twice(app, T + 24 * H + S)
    evs = await events_of(app, store)
    overdue = {data["order_id"]: data["penalty"] for t, data in evs if t == "order.overdue"}
    assert overdue == {str(capped): "50.00", str(preset): "7.77"}
    rows = await orders_of(app, [capped, preset])
    assert [(str(r.penalty), r.version) for r in rows] == [("50.00", 2), ("7.77", 2)]


# ---------------------------------------------------------------------------------------------
# Concurrency: two sweeps at once, more than one batch


async def test_two_sweeps_at_once_emit_each_event_once(api: Api, app: Any) -> None:
    now = T + 20 * D
    await sweep_orders(app.state.sessionmaker, now)  # settle every other test's orders first
    store, policy = await new_store(api, "taobao")
    n_overdue, n_at_risk, n_fake, n_done = BATCH + 40, 60, 30, 30
    overdue = await insert_orders(
        app, store, [awaiting(now - 49 * H, policy, total="300.00") for _ in range(n_overdue)]
    )
    at_risk = await insert_orders(
        app, store, [awaiting(now - 30 * H, policy) for _ in range(n_at_risk)]
    )
    fake = await insert_orders(app, store, [shipped(now - 25 * H) for _ in range(n_fake)])
    done = await insert_orders(
        app,
        store,
        [shipped(now - 11 * D, picked_up_at=now - 10 * D - H) for _ in range(n_done)],
    )

    reports = await asyncio.gather(
        sweep_orders(app.state.sessionmaker, now), sweep_orders(app.state.sessionmaker, now)
    )
    total = Counter[str]()
    for report in reports:
        total.update(report)
    assert dict(total) == {
        "at_risk": n_at_risk,
        "overdue": n_overdue,
        "fake_shipment_risk": n_fake,
        "completed": n_done,
    }
    assert await sweep_orders(app.state.sessionmaker, now) == NOTHING

    evs = await events_of(app, store)
    assert Counter(t for t, _ in evs) == {
        "order.overdue": n_overdue,
        "order.at_risk": n_at_risk,
        "order.fake_shipment_risk": n_fake,
        "order.completed": n_done,
    }
    assert sorted(map(int, of_type(evs, "order.completed"))) == sorted(done)
    assert sorted(map(int, of_type(evs, "order.overdue"))) == sorted(overdue)
    assert sorted(map(int, of_type(evs, "order.at_risk"))) == sorted(at_risk)
    assert sorted(map(int, of_type(evs, "order.fake_shipment_risk"))) == sorted(fake)

    rows = await orders_of(app, overdue)
    assert {(str(r.penalty), r.version) for r in rows} == {("30.00", 2)}
    rows = await orders_of(app, fake)
    assert {(r.fake_shipment_risk, r.version) for r in rows} == {(True, 2)}
    rows = await orders_of(app, done)
    assert {(r.status, r.completed_at, r.version) for r in rows} == {("completed", now, 2)}
    rows = await orders_of(app, at_risk)
    assert {(str(r.penalty), r.version) for r in rows} == {("0.00", 1)}


async def test_parallel_sweeps_over_many_rounds(api: Api, app: Any) -> None:
    """Sweeps racing at successive instants still notify each order once per kind."""
    store, policy = await new_store(api, "pdd")
    ids = await insert_orders(app, store, [awaiting(T + i * H, policy) for i in range(40)])
    for step in range(0, 100, 5):
        now = T + step * H
        await asyncio.gather(*(sweep_orders(app.state.sessionmaker, now) for _ in range(3)))
    evs = await events_of(app, store)
    assert Counter(t for t, _ in evs) == {"order.overdue": 40, "order.at_risk": 40}
    assert sorted(map(int, of_type(evs, "order.overdue"))) == sorted(ids)
    assert {r.version for r in await orders_of(app, ids)} == {2}


# ---------------------------------------------------------------------------------------------
# Fake-shipment guard


async def test_fake_shipment_risk_flag_and_event(api: Api, app: Any) -> None:
    store, _ = await new_store(api, "pdd")
    patient, _ = await new_store(api, "pdd", pickup_grace_hours=48)
    no_scan, in_time, late_scan, delivered = await insert_orders(
        app,
        store,
        [
            shipped(T),
            shipped(T, picked_up_at=T + 2 * H),
            shipped(T, picked_up_at=T + 24 * H + S),
            shipped(T, status="delivered", picked_up_at=T + 30 * H, delivered_at=T + 30 * H),
        ],
    )
    (slow,) = await insert_orders(app, patient, [shipped(T)])

    await sweep_twice(app, T + 24 * H)  # exactly at the limit: within grace
    assert await events_of(app, store) == []

    await sweep_twice(app, T + 24 * H + S)
    await sweep_twice(app, T + 40 * H)
    evs = await events_of(app, store)
    assert sorted(map(int, of_type(evs, "order.fake_shipment_risk"))) == sorted(
        [no_scan, late_scan]
    )
    assert len(evs) == 2
    data = evs[0][1]
    (row,) = await orders_of(app, [no_scan])
    assert data == {
        "order_id": str(no_scan),
        "external_id": row.external_id,
        "carrier": "SF",
        "tracking_number": row.tracking_number,
        "shipped_at": T,
        "pickup_due": T + 24 * H,
        "picked_up_at": None,
    }
    rows = await orders_of(app, [no_scan, in_time, late_scan, delivered])
    assert [(r.fake_shipment_risk, r.version) for r in rows] == [
        (True, 2),
        (False, 1),
        (True, 2),
        (False, 1),
    ]

    # The store's own grace period: 48 h.
    assert await events_of(app, patient) == []
    await sweep_twice(app, T + 48 * H + S)
    assert of_type(await events_of(app, patient), "order.fake_shipment_risk") == [str(slow)]


# ---------------------------------------------------------------------------------------------
# Auto-complete


async def test_auto_complete(api: Api, app: Any) -> None:
    store, _ = await new_store(api, "pdd")
    quick, _ = await new_store(api, "douyin", auto_complete_days=7)
    not_delivered, delivered, refund, refund_delivered, late_delivery = await insert_orders(
        app,
        store,
        [
            shipped(T, picked_up_at=T + H),
            shipped(T, status="delivered", picked_up_at=T + H, delivered_at=T + D),
            shipped(T, picked_up_at=T + H, refund_pending=True),
            shipped(
                T, status="delivered", picked_up_at=T + H, delivered_at=T + D, refund_pending=True
            ),
            shipped(T, status="delivered", picked_up_at=T + H, delivered_at=T + 8 * D),
        ],
    )
    (seven,) = await insert_orders(app, quick, [shipped(T, picked_up_at=T + H)])
    everyone = [not_delivered, delivered, refund, refund_delivered, late_delivery, seven]

    async def statuses() -> list[str]:
        return [r.status for r in await orders_of(app, everyone)]

    await sweep_twice(app, T + 4 * D - S)
    assert await statuses() == [
        "shipped",
        "delivered",
        "shipped",
        "delivered",
        "delivered",
        "shipped",
    ]
    await sweep_twice(app, T + 4 * D)  # delivery + 3 days
    assert (await statuses())[1] == "completed"
    await sweep_twice(app, T + 7 * D - S)
    assert (await statuses())[5] == "shipped"
    await sweep_twice(app, T + 7 * D)  # the store's 7 days
    assert (await statuses())[5] == "completed"
    await sweep_twice(app, T + 10 * D - S)
    assert (await statuses())[0] == "shipped"
    assert (await statuses())[4] == "delivered"
    await sweep_twice(app, T + 10 * D)  # 10 days after shipment, before delivery + 3 days
    assert await statuses() == [
        "completed",
        "completed",
        "shipped",
        "delivered",
        "completed",
        "completed",
    ]
    await sweep_twice(app, T + 60 * D)  # refund pending: never auto-completed
    rows = await orders_of(app, everyone)
    assert [r.status for r in rows] == [
        "completed",
        "completed",
        "shipped",
        "delivered",
        "completed",
        "completed",
    ]
    assert [r.completed_at for r in rows] == [
        T + 10 * D,
        T + 4 * D,
        None,
        None,
        T + 10 * D,
        T + 7 * D,
    ]
    assert [r.version for r in rows] == [2, 2, 1, 1, 2, 2]
    # order.completed once per completed order (DOMAIN.md §2), at the sweep's instant.
    assert await events_of(app, store) == [
        ("order.completed", completed_data(row, at, auto=True))
        for row, at in ((rows[1], T + 4 * D), (rows[0], T + 10 * D), (rows[4], T + 10 * D))
    ]
    assert await events_of(app, quick) == [
        ("order.completed", completed_data(rows[5], T + 7 * D, auto=True))
    ]


def completed_data(row: Any, at: datetime, *, auto: bool) -> dict[str, Any]:
    """The data of an ``order.completed`` event, spelled out as API.md's order events are."""
    return {
        "order_id": str(row.id),
        "external_id": row.external_id,
        "completed_at": at,
        "auto": auto,
    }


async def test_completed_once_by_hand_or_by_one_of_two_sweepers(
    api: Api, app: Any, clock: SettableClock
) -> None:
    """Hand completions race two sweeps: every order completes once, with one event."""
    now = T + 30 * D
    await sweep_orders(app.state.sessionmaker, now)  # settle every other test's orders first
    store, _ = await new_store(api, "pdd")
    delivered_at = now - 3 * D - H
    ids = await insert_orders(
        app,
        store,
        [
            shipped(
                now - 5 * D,
                status="delivered",
                picked_up_at=now - 5 * D,
                delivered_at=delivered_at,
                buyer=BUYER,
            )
            for _ in range(60)
        ],
    )
    clock.set(now)

    async def by_hand(order_id: int) -> int:
        r = await api.client.post(f"/v1/orders/{order_id}/complete", headers=ADMIN)
        if r.status_code != 200:
            assert_problem(r, 409, "invalid_transition")
        return r.status_code

    results = await asyncio.gather(
        sweep_orders(app.state.sessionmaker, now),
        *(by_hand(i) for i in ids[::2]),
        sweep_orders(app.state.sessionmaker, now),
    )
    first, *codes, second = results
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    evs = await events_of(app, store)
    assert Counter(t for t, _ in evs) == {"order.completed": 60}
    assert sorted(int(data["order_id"]) for _, data in evs) == sorted(ids)
    by_sweep = [data for _, data in evs if data["auto"]]
    assert len(by_sweep) == first["completed"] + second["completed"]
    assert len(evs) - len(by_sweep) == codes.count(200)
    rows = {r.id: r for r in await orders_of(app, ids)}
    for _, data in evs:
        row = rows[int(data["order_id"])]
        assert data == completed_data(row, now, auto=data["auto"])
        assert (row.status, row.completed_at, row.version) == ("completed", now, 2)
    # Completing again by hand is a conflict and emits nothing.
    assert_problem(
        await api.client.post(f"/v1/orders/{ids[1]}/complete", headers=ADMIN),
        409,
        "invalid_transition",
    )
    assert await sweep_orders(app.state.sessionmaker, now) == NOTHING
    assert len(await events_of(app, store)) == 60
