"""``GET /v1/dispatch-board`` and ``GET /v1/pick-list``: order across risk groups with urgent
first, exact counts and accrued penalties (pdd fixed, taobao rate clamped) also at the edges of
the count bins and after every kind of write, pick-list filters and SKU totals, roles, scope
and limits (DOMAIN.md §1–§2)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from app.domain.dispatch.board import BIN
from app.domain.dispatch.sweep import compact_board
from app.models import Order, OrderLine
from tests.helpers import ADMIN, Api, SettableClock, assert_problem

ORDERS = Order.__table__  # type: ignore[attr-defined]
LINES = OrderLine.__table__  # type: ignore[attr-defined]
# Seven minutes into a count bin, so the current bin holds orders on both sides of now.
T = datetime(2026, 11, 12, 10, 7, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)
BUYER = {
    "name": "张三",
    "phone": "13800138000",
    "province": "浙江省",
    "city": "杭州市",
    "address": "西湖区文三路 1 号",
}


def order(
    external_id: str,
    deadline: datetime | None,
    *,
    window: timedelta = 48 * H,
    **cols: Any,
) -> dict[str, Any]:
    """An awaiting order due at ``deadline`` whose clock started ``window`` before it."""
    start = None if deadline is None else deadline - window
    at_risk = None
    if deadline is not None and start is not None:
        # DOMAIN.md §2: at risk once min(internal target 24 h, half the window) has elapsed.
        at_risk = start + min(24 * H, window / 2)
    total = Decimal(cols.pop("total", "100.00"))
    return {
        "external_id": external_id,
        "status": "awaiting_shipment",
        "allocation": "full",
        "placed_at": (start or T) - M,
        "paid_at": start or T - M,
        "clock_started_at": start,
        "dispatch_deadline": deadline,
        "at_risk_at": at_risk,
        "buyer": BUYER,
        "buyer_phone": BUYER["phone"],
        "subtotal": total,
        "discount": Decimal("0.00"),
        "shipping_fee": Decimal("0.00"),
        "total": total,
        "content_hash": uuid.uuid4().hex,
        "version": 1,
        **cols,
    }


async def insert(
    app: Any,
    store_id: str,
    *orders: dict[str, Any],
    lines: dict[str, list[tuple[str, int]]] | None = None,
) -> dict[str, str]:
    """Insert orders (and lines by external id) straight into the tables; ids by external id."""
    ids: dict[str, str] = {}
    async with app.state.sessionmaker() as session:
        for values in orders:
            new_id = (
                await session.execute(
                    sa.insert(ORDERS)
                    .values(store_id=int(store_id), **values)
                    .returning(ORDERS.c.id)
                )
            ).scalar_one()
            ids[values["external_id"]] = str(new_id)
            for line_no, (sku_id, quantity) in enumerate(
                (lines or {}).get(values["external_id"], []), 1
            ):
                await session.execute(
                    sa.insert(LINES).values(
                        order_id=new_id,
                        line_no=line_no,
                        sku_id=int(sku_id),
                        quantity=quantity,
                        unit_price=Decimal("10.00"),
                        line_total=Decimal("10.00") * quantity,
                        reserved=quantity,
                    )
                )
        await session.commit()
    return ids


async def execute(app: Any, sql: str, **params: Any) -> None:
    """Run one write statement and commit."""
    async with app.state.sessionmaker() as session:
        await session.execute(sa.text(sql), params)
        await session.commit()


async def get_board(api: Api, store_id: str, **params: Any) -> dict[str, Any]:
    """The board of ``store_id`` as admin (must be 200)."""
    r = await api.client.get(
        "/v1/dispatch-board", params={"store_id": store_id, **params}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def external_ids(items: list[dict[str, Any]], ids: dict[str, str]) -> list[str]:
    """External ids of listed orders, in order."""
    by_id = {v: k for k, v in ids.items()}
    return [by_id[item["id"]] for item in items]


async def test_board_orders_groups_urgent_first_then_deadline(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store = await api.store("pdd")
    ids = await insert(
        app,
        store["id"],
        order("A", T - 5 * H),
        order("B", T - 10 * H, penalty=Decimal("3.00")),
        order("C", T - 1 * H, urgent=True),
        order("D", T - 2 * H, allocation="short"),
        order("E", T + 10 * H),
        order("F", T + 20 * H),
        order("G", T + 11 * H, allocation="partial"),
        order("H", T + 13 * H, allocation="short"),  # short, but 13 h left: not urgent
        order("O", T),  # due this instant: at risk, not yet overdue
        order("I", T + 30 * H),
        order("J", T + 40 * H, urgent=True),
        order("K", T + 11 * H, window=12 * H, allocation="short"),  # on track, urgent
        order("L", None),  # group not formed: no deadline
        order("M", None, urgent=True),
        order("N", T - 3 * H, status="shipped"),
        order("P", T - 4 * H, status="pending_payment"),
    )
    clock.set(T)
    body = await get_board(api, store["id"])
    # Overdue; then urgent (G and K tie on the deadline: G was placed first); then the others.
    assert external_ids(body["items"], ids) == list("BADCGKJMOEHFIL")
    assert body["counts"] == {"on_track": 3, "at_risk": 5, "overdue": 4, "short": 4}
    assert body["penalty_accrued"] == "12.00"  # pdd: 3.00 for each overdue order
    first = body["items"][2]
    assert first["risk"] == "overdue"
    assert first["seconds_left"] == -2 * 3600
    assert first["penalty"] == "3.00"
    assert set(first["flags"]) == {"stock_short", "urgent"}
    risks = [item["risk"] for item in body["items"]]
    assert risks == (
        ["overdue"] * 4
        + ["at_risk", "on_track", "on_track", None]
        + ["at_risk"] * 4
        + ["on_track", None]
    )
    assert [body["items"][i]["flags"] for i in (7, -1)] == [["urgent"], []]

    for limit, expected in ((1, "B"), (5, "BADCG"), (11, "BADCGKJMOEH")):
        page = await get_board(api, store["id"], limit=limit)
        assert external_ids(page["items"], ids) == list(expected)
        assert page["counts"] == body["counts"]

    # A day later everything dated is overdue; the stored penalty is not charged twice.
    clock.set(T + 48 * H)
    later = await get_board(api, store["id"])
    assert later["counts"] == {"on_track": 0, "at_risk": 0, "overdue": 12, "short": 4}
    assert later["penalty_accrued"] == "36.00"
    assert external_ids(later["items"], ids) == list("BADCOEGKHFIJML")


async def test_taobao_penalty_is_ten_percent_clamped_and_recorded_penalties_win(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store = await api.store("taobao")
    await insert(
        app,
        store["id"],
        order("low", T - H, total="30.00"),  # 3.00 → min 5.00
        order("mid", T - 2 * H, total="123.45"),  # 12.345 → 12.35 (half up)
        order("high", T - 3 * H, total="2000.00"),  # 200.00 → max 100.00
        order("recorded", T - 4 * H, total="500.00", penalty=Decimal("7.77")),
        order("edge", T - S, total="64.00"),  # current bin, one second late: 6.40
        order("due", T + S, total="999.00"),  # not overdue yet
    )
    clock.set(T)
    body = await get_board(api, store["id"])
    assert body["counts"] == {"on_track": 0, "at_risk": 1, "overdue": 5, "short": 0}
    assert body["penalty_accrued"] == "131.52"
    assert sum(Decimal(i["penalty"]) for i in body["items"]) == Decimal("131.52")


# DOMAIN.md §1, written out here rather than taken from app code: (rate, min, max) of the
# late penalty; a fixed penalty is rate 0 with min = max.
PENALTY = {
    "pdd": (Decimal("0"), Decimal("3.00"), Decimal("3.00")),
    "taobao": (Decimal("0.10"), Decimal("5.00"), Decimal("100.00")),
}


def late_penalty(platform: str, paid: Decimal) -> Decimal:
    """``clamp(rate × paid_amount, min, max)`` rounded half up to the fen (DOMAIN.md §1)."""
    rate, low, high = PENALTY[platform]
    return min(max(rate * paid, low), high).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def brute_force(rows: list[dict[str, Any]], now: datetime, platform: str) -> dict[str, Any]:
    """Counts, penalty and item order of ``rows`` at ``now``, one order at a time, by the
    rules of DOMAIN.md §1–§2 written out (an oracle independent of app code)."""
    counts = {"on_track": 0, "at_risk": 0, "overdue": 0, "short": 0}
    accrued = Decimal("0.00")
    keys = []
    for r in rows:
        if r["status"] != "awaiting_shipment":
            continue
        short = r["allocation"] != "full"
        counts["short"] += short
        due, at_risk = r["dispatch_deadline"], r["at_risk_at"]
        # Short stock is urgent within 12 h of the deadline (or past it).
        urgent = r["urgent"] or (short and due is not None and due - now <= 12 * H)
        if due is None:  # last within its group (DOMAIN.md §2: overdue, urgent, the others)
            keys.append((1 if urgent else 2, 1, T, r["placed_at"], r["id"]))
            continue
        if now > due:
            group = "overdue"
            accrued += r["penalty"] if r["penalty"] > 0 else late_penalty(platform, r["total"])
        elif at_risk is not None and at_risk <= now:
            group = "at_risk"
        else:
            group = "on_track"
        counts[group] += 1
        rank = 0 if group == "overdue" else 1 if urgent else 2
        keys.append((rank, 0, due, r["placed_at"], r["id"]))
    return {
        "counts": counts,
        "penalty_accrued": str(accrued),
        "items": [str(k[-1]) for k in sorted(keys)],
    }


async def stored_rows(app: Any, store_id: str) -> list[dict[str, Any]]:
    """Every order row of a store."""
    async with app.state.sessionmaker() as session:
        result = await session.execute(sa.select(ORDERS).where(ORDERS.c.store_id == int(store_id)))
        return [dict(r._mapping) for r in result]


def around(rnd: random.Random, spread: timedelta) -> datetime:
    """An instant within ``spread`` of T, often right on a bin edge or on T itself."""
    if rnd.random() < 0.3:
        return T + rnd.choice([-BIN, -S, 0 * S, S, BIN - 7 * M, BIN - 7 * M - S, 2 * BIN])
    return T + timedelta(
        seconds=rnd.randint(-int(spread.total_seconds()), int(spread.total_seconds()))
    )


def random_orders(rnd: random.Random, count: int) -> Iterator[dict[str, Any]]:
    """Orders of every shape: statuses, windows, stock, chases, recorded penalties."""
    for i in range(count):
        deadline = None if rnd.random() < 0.05 else around(rnd, 30 * H)
        window = rnd.choice([48 * H, 48 * H, 12 * H, 30 * M, 72 * H])
        cols: dict[str, Any] = {
            "allocation": rnd.choice(["full", "full", "full", "partial", "short"]),
            "urgent": rnd.random() < 0.1,
            "total": f"{rnd.randint(100, 200_000) / 100:.2f}",
        }
        if rnd.random() < 0.2:
            cols["penalty"] = Decimal(rnd.randint(1, 5000)) / 100
        if rnd.random() < 0.1:
            cols["status"] = rnd.choice(["shipped", "pending_payment", "cancelled"])
        yield order(f"R{i}", deadline, window=window, **cols)


@pytest.mark.parametrize("platform", ["pdd", "taobao"])
async def test_counts_match_one_by_one_classification_at_bin_edges_and_after_writes(
    api: Api, app: Any, clock: SettableClock, platform: str
) -> None:
    rnd = random.Random(f"board-{platform}")
    store = await api.store(platform)
    ids = await insert(app, store["id"], *random_orders(rnd, 150))
    instants = [T, T - 7 * M, T - 7 * M - S, T + 8 * M, T + 8 * M - S, T - 30 * H, T + 31 * H]

    async def check() -> None:
        rows = await stored_rows(app, store["id"])
        for now in instants:
            clock.set(now)
            body = await get_board(api, store["id"], limit=500)
            expected = brute_force(rows, now, platform)
            assert body["counts"] == expected["counts"], now
            assert body["penalty_accrued"] == expected["penalty_accrued"], now
            assert [i["id"] for i in body["items"]] == expected["items"], now

    await check()
    # Every kind of write the histogram must follow; many to one bin forces compaction.
    chosen = [int(v) for v in rnd.sample(sorted(ids.values()), 60)]
    for order_id in chosen[:10]:
        await execute(app, "UPDATE orders SET status = 'shipped' WHERE id = :id", id=order_id)
    for order_id in chosen[10:20]:
        await execute(
            app,
            "UPDATE orders SET allocation = CASE allocation WHEN 'full' THEN 'short' "
            "ELSE 'full' END WHERE id = :id",
            id=order_id,
        )
    for order_id in chosen[20:30]:
        await execute(app, "UPDATE orders SET penalty = 4.56 WHERE id = :id", id=order_id)
    for order_id in chosen[30:40]:
        await execute(
            app,
            "UPDATE orders SET status = 'awaiting_shipment', dispatch_deadline = :due, "
            "at_risk_at = CAST(:due AS timestamptz) - interval '1 hour' WHERE id = :id",
            id=order_id,
            due=T + 2 * M,
        )
    await execute(app, "DELETE FROM orders WHERE id = ANY(:ids)", ids=chosen[40:45])
    for _ in range(3):
        await execute(
            app,
            "UPDATE orders SET dispatch_deadline = dispatch_deadline + interval '1 second', "
            "at_risk_at = at_risk_at + interval '1 second' WHERE id = ANY(:ids)",
            ids=chosen[45:60],
        )
    await check()


async def test_histogram_stays_small_and_compaction_keeps_the_sums(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store = await api.store("pdd")
    store_id = int(store["id"])
    count_rows = sa.text("SELECT count(*) FROM dispatch_board_counts WHERE store_id = :s")
    async with app.state.engine.connect() as conn:
        # The trigger compacts one statement in 8 at random: make that repeatable.
        await conn.execute(sa.text("SELECT setseed(0.25)"))
        for i in range(100):
            await conn.execute(
                sa.insert(ORDERS).values(store_id=store_id, **order(f"X{i}", T + 30 * H))
            )
            await conn.commit()
        await conn.execute(
            sa.text("UPDATE orders SET penalty = 1 WHERE store_id = :s AND external_id < 'X5'"),
            {"s": store_id},
        )
        await conn.commit()
        assert 0 < (await conn.execute(count_rows, {"s": store_id})).scalar_one() < 30
        await conn.execute(
            sa.text(
                "SELECT dispatch_board_compact(:s, deadline_bin) FROM "
                "(SELECT DISTINCT deadline_bin FROM dispatch_board_counts WHERE store_id = :s) b"
            ),
            {"s": store_id},
        )
        await conn.commit()
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT n, unpenalized, penalty FROM dispatch_board_counts WHERE store_id = :s"
                ),
                {"s": store_id},
            )
        ).all()
    assert [tuple(r) for r in rows] == [(100, 55, Decimal("45.00"))]  # X0–X4, X10–X49
    clock.set(T)
    body = await get_board(api, store["id"])
    assert body["counts"] == {"on_track": 100, "at_risk": 0, "overdue": 0, "short": 0}


# Histogram groups still holding delta rows: more than one row per (at_risk_bin, short) key.
LOOSE = sa.text(
    "SELECT store_id, deadline_bin FROM dispatch_board_counts GROUP BY store_id, deadline_bin "
    "HAVING count(*) > count(DISTINCT (at_risk_bin, short)) ORDER BY 1, 2"
)
SUMS = sa.text(
    "SELECT deadline_bin, at_risk_bin, short, sum(n), sum(unpenalized), sum(penalty), count(*) "
    "FROM dispatch_board_counts WHERE store_id = :s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)


async def board_sums(app: Any, store_id: int) -> list[tuple[Any, ...]]:
    """Per histogram key of a store: (bin, at-risk bin, short, n, unpenalized, penalty, rows)."""
    async with app.state.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(SUMS, {"s": store_id})]


async def loose_groups(app: Any) -> list[tuple[Any, ...]]:
    """Every (store, deadline bin) group of the histogram not yet compacted."""
    async with app.state.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(LOOSE)]


async def test_sweep_compacts_the_histogram_and_the_counts_stay_exact(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store = await api.store("taobao")
    store_id = int(store["id"])
    rnd = random.Random("compact")
    ids = await insert(app, store["id"], *random_orders(rnd, 80))
    chosen = [int(v) for v in sorted(ids.values())]
    # The dispatch sweep runs first and writes orders too: let it settle at T beforehand.
    clock.set(T)
    r = await api.client.post("/v1/admin/sweep", headers=ADMIN)
    assert r.status_code == 200, r.text
    # Writes one statement at a time, each appending delta rows; a fixed seed makes the
    # trigger's own 1-in-8 compaction repeatable.
    async with app.state.engine.connect() as conn:
        await conn.execute(sa.text("SELECT setseed(0.5)"))
        for n, order_id in enumerate(chosen):
            change = ("penalty = penalty + 1", "status = 'shipped'", "allocation = 'short'")
            await conn.execute(
                sa.text(f"UPDATE orders SET {change[n % 3]} WHERE id = :id"), {"id": order_id}
            )
            await conn.commit()
    rows = await stored_rows(app, store["id"])
    instants = [T, T - 7 * M, T + 8 * M, T - 30 * H, T + 31 * H]

    async def check() -> None:
        for now in instants:
            clock.set(now)
            body = await get_board(api, store["id"], limit=500)
            expected = brute_force(rows, now, "taobao")
            assert body["counts"] == expected["counts"], now
            assert body["penalty_accrued"] == expected["penalty_accrued"], now

    await check()
    before = await board_sums(app, store_id)
    loose = await loose_groups(app)
    assert [g for g in loose if g[0] == store_id], "the writes above left no delta rows"
    assert any(key[-1] > 1 for key in before)

    clock.set(T)
    r = await api.client.post("/v1/admin/sweep", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["dispatch"] == {
        "at_risk": 0,
        "overdue": 0,
        "fake_shipment_risk": 0,
        "completed": 0,
    }
    assert r.json()["housekeeping"]["board_groups_compacted"] == len(loose)
    assert await loose_groups(app) == []
    after = await board_sums(app, store_id)
    # One row per key now, and the same sums; keys that summed to nothing are gone.
    assert {key[-1] for key in after} == {1}
    assert [key[:-1] for key in after] == [key[:-1] for key in before if any(key[3:6])]
    await check()
    clock.set(T)
    r = await api.client.post("/v1/admin/sweep", headers=ADMIN)
    assert r.json()["housekeeping"]["board_groups_compacted"] == 0


async def test_compaction_skips_a_group_another_transaction_is_compacting(
    api: Api, app: Any
) -> None:
    store = await api.store("pdd")
    store_id = int(store["id"])
    due = [T + 30 * H, T + 40 * H]
    await insert(app, store["id"], *(order(f"C{i}", due[i % 2]) for i in range(4)))
    async with app.state.sessionmaker() as session:
        # The board's triggers compact the groups a statement touched one time in 8, at
        # random(): seeded so that neither update does (setseed(0.2) starts with ten draws
        # of 0.5 or more), the two groups are left loose for the sweep to find.
        await session.execute(sa.text("SELECT setseed(0.2)"))
        for sql in (
            "UPDATE orders SET penalty = 1 WHERE store_id = :s",
            "UPDATE orders SET urgent = true, penalty = 2 WHERE store_id = :s",
        ):
            await session.execute(sa.text(sql), {"s": store_id})
        await session.commit()
    loose = await loose_groups(app)
    mine = [g for g in loose if g[0] == store_id]
    assert len(mine) == 2
    busy = mine[0]
    async with app.state.engine.connect() as holder:
        # The lock dispatch_board_compact() takes for a group (migration 0004).
        await holder.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(1684632420, "
                "hashtext(CAST(:s AS bigint)::text || '@' || "
                "extract(epoch FROM CAST(:b AS timestamptz))::text))"
            ),
            {"s": busy[0], "b": busy[1]},
        )
        compacted = await compact_board(app.state.sessionmaker)
        await holder.rollback()
    assert compacted == len(loose) - 1
    assert await loose_groups(app) == [busy]
    assert await compact_board(app.state.sessionmaker) == 1
    assert await loose_groups(app) == []


async def test_concurrent_writers_neither_block_nor_lose_counts(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store = await api.store("taobao")
    store_id = int(store["id"])

    async def writer(w: int) -> None:
        async with app.state.engine.connect() as conn:
            for i in range(25):
                # All in the same two bins, so compactions meet concurrent appends.
                due = T + (i % 2) * BIN + 30 * H
                await conn.execute(
                    sa.insert(ORDERS).values(store_id=store_id, **order(f"W{w}-{i}", due))
                )
                if i % 3 == 0:
                    await conn.execute(
                        sa.text(
                            "UPDATE orders SET status = 'shipped' WHERE id = (SELECT min(id) "
                            "FROM orders WHERE store_id = :s AND external_id LIKE :w "
                            "AND status = 'awaiting_shipment')"
                        ),
                        {"s": store_id, "w": f"W{w}-%"},
                    )
                if i % 4 == 0:
                    await conn.execute(
                        sa.text(
                            "UPDATE orders SET penalty = penalty + 1, allocation = 'short' "
                            "WHERE store_id = :s AND external_id = :e"
                        ),
                        {"s": store_id, "e": f"W{w}-{i}"},
                    )
                await conn.commit()

    writing = asyncio.gather(*(writer(w) for w in range(8)))
    # The sweep's compaction runs alongside, so it meets appends and the triggers' compactions.
    sweeps = 0
    async with asyncio.timeout(60):  # a stuck writer fails the test instead of hanging it
        while not writing.done():
            await compact_board(app.state.sessionmaker)
            sweeps += 1
            await asyncio.sleep(0)
        await writing
    assert sweeps > 1
    rows = await stored_rows(app, store["id"])
    for now in (T, T + 30 * H, T + 30 * H + BIN, T + 60 * H):
        clock.set(now)
        body = await get_board(api, store["id"], limit=500)
        expected = brute_force(rows, now, "taobao")
        assert body["counts"] == expected["counts"]
        assert body["penalty_accrued"] == expected["penalty_accrued"]


async def test_pick_list_skips_unshippable_orders_and_totals_skus(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store = await api.store("pdd")
    tea = await api.sku(store["id"], sku_code="B-TEA", barcode="6901234567892")
    cup = await api.sku(store["id"], sku_code="A-CUP", title="茶杯")
    ids = await insert(
        app,
        store["id"],
        order("late", T - 2 * H),
        order("chased", T + 30 * H, urgent=True),
        order("soon", T + 5 * H),
        order("later", T + 30 * H),
        order("held", T - 5 * H, on_hold=True),
        order("refund", T - 4 * H, refund_pending=True),
        order("short", T - 6 * H, allocation="short"),
        order("partial", T - 6 * H, allocation="partial", urgent=True),
        order("group", None),
        order("gone", T - 7 * H, status="shipped"),
        lines={
            "late": [(tea["id"], 2), (cup["id"], 1)],
            "chased": [(tea["id"], 3)],
            "soon": [(cup["id"], 4)],
            "later": [(tea["id"], 100)],
            "held": [(tea["id"], 50)],
            "short": [(cup["id"], 50)],
        },
    )
    clock.set(T)
    r = await api.client.get(
        "/v1/pick-list", params={"store_id": store["id"], "limit": 3}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert external_ids(body["orders"], ids) == ["late", "chased", "soon"]
    assert body["skus"] == [
        {
            "sku_id": cup["id"],
            "sku_code": "A-CUP",
            "title": "茶杯",
            "barcode": None,
            "quantity": 5,
        },
        {
            "sku_id": tea["id"],
            "sku_code": "B-TEA",
            "title": tea["title"],
            "barcode": "6901234567892",
            "quantity": 5,
        },
    ]
    r = await api.client.get("/v1/pick-list", params={"store_id": store["id"]}, headers=ADMIN)
    assert external_ids(r.json()["orders"], ids) == ["late", "chased", "soon", "later"]
    assert [s["quantity"] for s in r.json()["skus"]] == [5, 105]


async def test_scope_roles_and_limits(api: Api, app: Any, clock: SettableClock) -> None:
    mine = await api.store("pdd")
    other = await api.store("pdd")
    third = await api.store("taobao")
    ids = await insert(app, mine["id"], order("m1", T - H), order("m2", T + H))
    ids |= await insert(app, other["id"], order("o1", T - 2 * H))
    ids |= await insert(app, third["id"], order("t1", T - 3 * H, total="200.00"))
    clock.set(T)
    operator = await api.key("operator", [mine["id"], third["id"]])
    warehouse = await api.key("warehouse", [mine["id"]])
    integration = await api.key("integration", None)
    for path in ("/v1/dispatch-board", "/v1/pick-list"):
        r = await api.client.get(path, params={"store_id": other["id"]}, headers=operator)
        assert_problem(r, 404)
        r = await api.client.get(path, params={"store_id": "999999999"}, headers=ADMIN)
        assert_problem(r, 404)
        r = await api.client.get(path, params={"store_id": mine["id"]}, headers=integration)
        assert_problem(r, 403, "forbidden_role")
        r = await api.client.get(path, params={"store_id": mine["id"]})
        assert_problem(r, 401)
        for limit in (0, 501, "x"):
            r = await api.client.get(path, params={"limit": limit}, headers=ADMIN)
            assert_problem(r, 422)
        r = await api.client.get(path, params={"store_id": mine["id"]}, headers=warehouse)
        assert r.status_code == 200, r.text
        r = await api.client.get(path, params={"store_id": mine["id"], "limit": 500}, headers=ADMIN)
        assert r.status_code == 200, r.text

    # Without store_id: every store of the key, merged in urgency order.
    r = await api.client.get("/v1/dispatch-board", headers=operator)
    body = r.json()
    assert external_ids(body["items"], ids) == ["t1", "m1", "m2"]
    assert body["counts"] == {"on_track": 0, "at_risk": 1, "overdue": 2, "short": 0}
    assert body["penalty_accrued"] == "23.00"  # pdd 3.00 + taobao 10 % of 200.00
    r = await api.client.get("/v1/pick-list", headers=warehouse)
    assert external_ids(r.json()["orders"], ids) == ["m1", "m2"]


async def test_empty_store(api: Api, clock: SettableClock) -> None:
    store = await api.store("jd")
    clock.set(T)
    body = await get_board(api, store["id"])
    assert body == {
        "counts": {"on_track": 0, "at_risk": 0, "overdue": 0, "short": 0},
        "penalty_accrued": "0.00",
        "items": [],
    }
    r = await api.client.get("/v1/pick-list", params={"store_id": store["id"]}, headers=ADMIN)
    assert r.json() == {"orders": [], "skus": [], "next_cursor": None}


async def test_openapi_documents_both_paths(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    for path in ("/v1/dispatch-board", "/v1/pick-list"):
        get = schema["paths"][path]["get"]
        assert get["tags"] == ["orders"]
        assert {"401", "403", "404", "422"} <= set(get["responses"])
    assert "examples" in schema["components"]["schemas"]["DispatchBoard"]
    assert "examples" in schema["components"]["schemas"]["PickList"]
