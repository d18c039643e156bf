"""``GET /v1/reports/daily`` and ``/range``: a hand-built day, store time, CSV, bad input,
roles, rollups under concurrent writers, compaction."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.domain.report import rollup
from tests.helpers import ADMIN, Api, SettableClock, assert_problem, unique

CSV = {**ADMIN, "Accept": "text/csv"}
ROOT = Path(__file__).resolve().parents[2]
SH = "+08:00"
# The hand-built day D = 2026-11-11 in Shanghai; "now" is three days later.
NOW = datetime(2026, 11, 14, 4, 0, tzinfo=UTC)


def order(
    store_id: str,
    sku_id: str,
    placed: str,
    paid: str | None,
    total: str,
    phone: str,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "store_id": store_id,
        "external_id": unique("R"),
        "placed_at": placed,
        "buyer": {
            "name": "李四",
            "phone": "138" + phone.encode().hex(),  # distinct per label
            "province": "浙江省",
            "city": "杭州市",
            "address": "西湖区文三路 1 号",
        },
        "items": [{"sku_id": sku_id, "quantity": 1, "unit_price": total}],
        **extra,
    }
    if paid is not None:
        body["paid_at"] = paid
    return body


async def create(api: Api, body: dict[str, Any]) -> str:
    r = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    oid: str = r.json()["id"]
    return oid


async def stocked(api: Api, store_id: str, on_hand: int = 1000) -> str:
    sku = await api.sku(store_id)
    r = await api.client.post(
        "/v1/stock-movements",
        json={"sku_id": sku["id"], "kind": "receive", "quantity": on_hand},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    sku_id: str = sku["id"]
    return sku_id


async def ship(api: Api, oid: str, at: str, tracking: str) -> None:
    r = await api.client.post(
        f"/v1/orders/{oid}/ship",
        json={"carrier": "ZTO", "tracking_number": tracking, "shipped_at": at},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text


async def in_session(app: Any, *calls: Any) -> None:
    """Run rollup entry points in one committed transaction (as refunds and tickets will)."""
    async with app.state.sessionmaker() as session:
        for fn, args in calls:
            await fn(session, *args)
        await session.commit()


async def daily(api: Api, store_id: str, day: str, headers: dict[str, str] = ADMIN) -> Any:
    r = await api.client.get(
        "/v1/reports/daily", params={"store_id": store_id, "date": day}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()


async def date_range(api: Api, store_id: str, start: str, end: str) -> Any:
    r = await api.client.get(
        "/v1/reports/range", params={"store_id": store_id, "from": start, "to": end}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    return r.json()


async def hand_built_store(api: Api, app: Any, clock: SettableClock) -> str:
    """A PDD store in Shanghai with orders, refunds, tickets, traffic and a target around D."""
    clock.set(NOW)
    store = await api.store("pdd")
    sid = store["id"]
    sku = await stocked(api, sid)
    # A: placed the evening before D, paid just after midnight: placed D-1, paid D.
    await create(
        api, order(sid, sku, f"2026-11-10T23:50:00{SH}", f"2026-11-11T00:10:00{SH}", "100", "P1")
    )
    # B: the same buyer again on D: a second paid order, not a second buyer.
    await create(
        api, order(sid, sku, f"2026-11-11T00:05:00{SH}", f"2026-11-11T00:06:00{SH}", "50", "P1")
    )
    # C: placed D just before midnight, paid after it: placed D, paid D+1.
    await create(
        api, order(sid, sku, f"2026-11-11T23:59:30{SH}", f"2026-11-12T00:00:30{SH}", "80", "P2")
    )
    # E: placed D, never paid.
    await create(api, order(sid, sku, f"2026-11-11T10:00:00{SH}", None, "70", "P3"))
    # F: paid D, shipped on time on D.
    f = await create(
        api, order(sid, sku, f"2026-11-11T09:00:00{SH}", f"2026-11-11T09:01:00{SH}", "200", "P4")
    )
    await ship(api, f, f"2026-11-11T20:00:00{SH}", "73100000000011")
    # G: paid 11-09 (deadline D 10:01), shipped late on D 12:00: shipped, overdue, penalty on D.
    g = await create(
        api, order(sid, sku, f"2026-11-09T10:00:00{SH}", f"2026-11-09T10:01:00{SH}", "90", "P6")
    )
    await ship(api, g, f"2026-11-11T12:00:00{SH}", "73100000000012")
    # H: paid 11-09 20:00 (deadline D 20:00), still awaiting now: overdue on D, penalty estimated.
    await create(
        api, order(sid, sku, f"2026-11-09T19:59:00{SH}", f"2026-11-09T20:00:00{SH}", "40", "P7")
    )
    # I: paid D (deadline D+2), cancelled now, after its deadline: overdue on D+2.
    i = await create(
        api, order(sid, sku, f"2026-11-11T08:00:00{SH}", f"2026-11-11T08:00:00{SH}", "60", "P5")
    )
    r = await api.client.post(f"/v1/orders/{i}/cancel", json={"reason": "缺货"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    at = datetime.fromisoformat
    await in_session(
        app,
        (rollup.record_refund, (int(sid), at(f"2026-11-11T15:00:00{SH}"), Decimal("30.00"))),
        # A late refund of a D order, made on D+1: counts on D+1.
        (rollup.record_refund, (int(sid), at(f"2026-11-12T10:00:00{SH}"), Decimal("20.00"))),
        (rollup.record_ticket_opened, (int(sid), at(f"2026-11-10T23:30:00{SH}"))),
        (rollup.record_ticket_opened, (int(sid), at(f"2026-11-11T10:00:00{SH}"))),
        (rollup.record_ticket_opened, (int(sid), at(f"2026-11-11T10:30:00{SH}"))),
        (rollup.record_ticket_resolved, (int(sid), at(f"2026-11-11T12:00:00{SH}"), True)),
        (rollup.record_ticket_resolved, (int(sid), at(f"2026-11-11T13:00:00{SH}"), False)),
    )
    r = await api.client.put(
        f"/v1/stores/{sid}/traffic/2026-11-11",
        json={"visitors": 100, "ad_spend": "20.00"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    r = await api.client.put(
        f"/v1/stores/{sid}/targets/2026-11", json={"sales_target": "3000.00"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    return sid  # type: ignore[no-any-return]


EXPECTED_D = {
    "date": "2026-11-11",
    "orders_placed": 5,  # B, C, E, F, I
    "orders_paid": 4,  # A, B, F, I
    "payment_rate": 0.8,
    "gmv": "410.00",
    "aov": "102.50",
    "buyers": 3,  # P1 (twice), P4, P5
    "visitors": 100,
    "conversion_rate": 0.03,
    "shipped": 2,  # F on time, G late
    "shipped_on_time": 1,
    "on_time_dispatch_rate": 0.5,
    "overdue": 2,  # G shipped late, H still awaiting
    "penalties": "6.00",  # G recorded at its late shipment, H estimated (PDD 3.00 each)
    "refunds": 1,
    "refund_amount": "30.00",
    "refund_rate": 0.25,
    "tickets_opened": 2,
    "tickets_resolved": 2,
    "tickets_resolved_within_sla": 1,
    "ticket_sla_rate": 0.5,
    "target": "100.00",  # 3000.00 over November's 30 days
    "target_progress": 4.1,
    "ad_spend": "20.00",
}


async def test_hand_built_day(api: Api, app: Any, clock: SettableClock) -> None:
    sid = await hand_built_store(api, app, clock)
    body = await daily(api, sid, "2026-11-11")
    assert body == {**EXPECTED_D, "store_id": sid, "timezone": "Asia/Shanghai"}

    before = await date_range(api, sid, "2026-11-10", "2026-11-13")
    days = {d["date"]: d for d in before["days"]}
    assert list(days) == ["2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"]
    assert days["2026-11-11"] == EXPECTED_D
    d0, d1, d2 = days["2026-11-10"], days["2026-11-12"], days["2026-11-13"]
    assert (d0["orders_placed"], d0["orders_paid"], d0["tickets_opened"]) == (1, 0, 1)
    assert (d0["payment_rate"], d0["aov"], d0["conversion_rate"]) == (0.0, None, None)
    assert (d1["orders_placed"], d1["orders_paid"], d1["gmv"], d1["buyers"]) == (0, 1, "80.00", 1)
    assert (d1["refunds"], d1["refund_amount"], d1["refund_rate"]) == (1, "20.00", 1.0)
    assert d1["payment_rate"] is None  # nothing placed that day
    # I cancelled after its deadline (no penalty recorded), A and B awaiting past theirs.
    assert (d2["overdue"], d2["penalties"]) == (3, "6.00")
    assert (d2["visitors"], d2["target"], d2["target_progress"]) == (0, "100.00", 0.0)

    totals = before["totals"]
    assert totals["date"] == "total"
    assert (totals["orders_placed"], totals["orders_paid"], totals["gmv"]) == (6, 5, "490.00")
    assert totals["payment_rate"] == round(5 / 6, 4)
    assert (totals["buyers"], totals["visitors"], totals["conversion_rate"]) == (4, 100, 0.04)
    assert (totals["overdue"], totals["refunds"], totals["refund_rate"]) == (5, 2, 0.4)
    assert (totals["target"], totals["target_progress"]) == ("400.00", 1.225)
    assert (before["from"], before["to"], before["timezone"]) == (
        "2026-11-10",
        "2026-11-13",
        "Asia/Shanghai",
    )

    # The sweep records H's penalty and folds every delta: no figure of a past day moves.
    r = await api.client.post("/v1/admin/sweep", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["housekeeping"]["report_deltas_compacted"] > 0
    assert await pending_deltas(app, sid) == 0
    assert await date_range(api, sid, "2026-11-10", "2026-11-13") == before


async def pending_deltas(app: Any, store_id: str) -> int:
    async with app.state.sessionmaker() as session:
        n: int = (
            await session.execute(
                sa.text("SELECT count(*) FROM report_day_deltas WHERE store_id = :s"),
                {"s": int(store_id)},
            )
        ).scalar_one()
    return n


async def test_csv_equals_json(api: Api, app: Any, clock: SettableClock) -> None:
    sid = await hand_built_store(api, app, clock)
    body = await date_range(api, sid, "2026-11-10", "2026-11-13")
    r = await api.client.get(
        "/v1/reports/range",
        params={"store_id": sid, "from": "2026-11-10", "to": "2026-11-13"},
        headers=CSV,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8").removeprefix("\ufeff"))))
    assert [row["date"] for row in rows] == [*(d["date"] for d in body["days"]), "total"]
    for row, expected in zip(rows, [*body["days"], body["totals"]], strict=True):
        assert list(row) == [k for k in expected]
        for name, value in expected.items():
            if value is None:
                assert row[name] == "", name
            elif isinstance(value, float):
                assert Decimal(row[name]) == Decimal(str(value)), name
                assert len(row[name].split(".")[1]) == 4, row[name]
            else:
                assert row[name] == str(value), name

    # docs/reports.md shows this very CSV.
    doc = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    block = doc.split("\n```\ndate,", 1)[1].split("\n```", 1)[0]
    lines = r.content.decode("utf-8").removeprefix("\ufeff").splitlines()
    assert lines == ("date," + block).splitlines()

    one = await api.client.get(
        "/v1/reports/daily", params={"store_id": sid, "date": "2026-11-11"}, headers=CSV
    )
    assert one.status_code == 200, one.text
    (row,) = list(csv.DictReader(io.StringIO(one.content.decode("utf-8").removeprefix("\ufeff"))))
    assert row == next(r for r in rows if r["date"] == "2026-11-11")


async def test_days_are_the_stores_local_days(api: Api, app: Any, clock: SettableClock) -> None:
    """Los Angeles (UTC-8 in November): 07:30Z is the evening before, 08:30Z the new day."""
    clock.set(NOW)
    store = await api.store("jd", timezone="America/Los_Angeles")
    sid = store["id"]
    sku = await stocked(api, sid)
    await create(api, order(sid, sku, "2026-11-11T07:30:00Z", "2026-11-11T07:40:00Z", "10", "A"))
    await create(api, order(sid, sku, "2026-11-11T08:30:00Z", "2026-11-11T08:40:00Z", "20", "B"))
    await in_session(
        app, (rollup.record_ticket_opened, (int(sid), datetime(2026, 11, 11, 7, 59, tzinfo=UTC)))
    )
    body = await date_range(api, sid, "2026-11-10", "2026-11-11")
    assert body["timezone"] == "America/Los_Angeles"
    ten, eleven = body["days"]
    assert (ten["orders_placed"], ten["gmv"], ten["tickets_opened"]) == (1, "10.00", 1)
    assert (eleven["orders_placed"], eleven["gmv"], eleven["tickets_opened"]) == (1, "20.00", 0)
    # In Shanghai both orders would be on 11-11: the zone, not UTC or Shanghai, decides.
    shanghai = await api.store("jd")
    sku2 = await stocked(api, shanghai["id"])
    for placed in ("2026-11-11T07:30:00Z", "2026-11-11T08:30:00Z"):
        await create(api, order(shanghai["id"], sku2, placed, placed, "10", "A"))
    assert (await daily(api, shanghai["id"], "2026-11-11"))["orders_placed"] == 2


async def test_daily_defaults_to_the_stores_today(api: Api, clock: SettableClock) -> None:
    clock.set(datetime(2026, 11, 11, 17, 0, tzinfo=UTC))  # 11-12 01:00 in Shanghai
    store = await api.store()
    r = await api.client.get("/v1/reports/daily", params={"store_id": store["id"]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["date"] == "2026-11-12"


async def test_bad_input(api: Api) -> None:
    store = await api.store()
    sid = store["id"]
    get = api.client.get
    r = await get(
        "/v1/reports/daily", params={"store_id": "999999999", "date": "2026-11-11"}, headers=ADMIN
    )
    assert_problem(r, 404, "store_not_found")
    r = await get(
        "/v1/reports/range",
        params={"store_id": "abc", "from": "2026-11-01", "to": "2026-11-02"},
        headers=ADMIN,
    )
    assert_problem(r, 404, "store_not_found")
    r = await get(
        "/v1/reports/range",
        params={"store_id": sid, "from": "2026-11-12", "to": "2026-11-11"},
        headers=ADMIN,
    )
    assert_problem(r, 422, "invalid_date_range")
    r = await get(
        "/v1/reports/range",
        params={"store_id": sid, "from": "2026-01-01", "to": "2027-01-02"},
        headers=ADMIN,
    )
    body = assert_problem(r, 422, "date_range_too_long")
    assert "367" in body["detail"]
    r = await get(
        "/v1/reports/range",
        params={"store_id": sid, "from": "2024-01-01", "to": "2024-12-31"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text  # a leap year: 366 days is allowed
    assert len(r.json()["days"]) == 366
    for bad in ("2026-13-01", "20261111", "2026-11-31", "yesterday", "0"):
        r = await get("/v1/reports/daily", params={"store_id": sid, "date": bad}, headers=ADMIN)
        assert_problem(r, 422, "validation_error")
        r = await get(
            "/v1/reports/range",
            params={"store_id": sid, "from": bad, "to": "2026-11-11"},
            headers=ADMIN,
        )
        assert_problem(r, 422, "validation_error")
    r = await get(
        "/v1/reports/range", params={"store_id": sid, "from": "2026-11-11"}, headers=ADMIN
    )
    assert_problem(r, 422, "validation_error")
    # The ends of the calendar are dates too.
    r = await get(
        "/v1/reports/range",
        params={"store_id": sid, "from": "9999-12-01", "to": "9999-12-31"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    r = await get(
        "/v1/reports/daily", params={"store_id": sid, "date": "0001-01-01"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text


async def test_roles_and_scope(api: Api) -> None:
    store = await api.store()
    other = await api.store()
    params = {"store_id": store["id"], "date": "2026-11-11"}
    for role in ("warehouse", "integration"):
        key = await api.key(role, None)
        assert_problem(
            await api.client.get("/v1/reports/daily", params=params, headers=key),
            403,
            "forbidden_role",
        )
    operator = await api.key("operator", [store["id"]])
    assert (await daily(api, store["id"], "2026-11-11", operator))["orders_placed"] == 0
    r = await api.client.get(
        "/v1/reports/range",
        params={"store_id": other["id"], "from": "2026-11-11", "to": "2026-11-11"},
        headers=operator,
    )
    assert_problem(r, 404, "store_not_found")


async def test_concurrent_orders_are_counted_exactly(
    api: Api, app: Any, clock: SettableClock
) -> None:
    """Parallel intakes and payments of one store: no lost count, each buyer once a day."""
    clock.set(NOW)
    store = await api.store("taobao")
    sid = store["id"]
    sku = await stocked(api, sid)
    phones = [f"1390000000{n % 5}" for n in range(30)]
    bodies = [
        order(sid, sku, f"2026-11-13T10:00:00{SH}", f"2026-11-13T10:05:00{SH}", "12.50", p)
        for p in phones[:20]
    ]
    unpaid = [order(sid, sku, f"2026-11-13T11:00:00{SH}", None, "10", p) for p in phones[20:]]
    ids = await asyncio.gather(*(create(api, b) for b in [*bodies, *unpaid]))

    async def pay(oid: str) -> None:
        r = await api.client.post(
            f"/v1/orders/{oid}/pay", json={"paid_at": f"2026-11-13T12:00:00{SH}"}, headers=ADMIN
        )
        assert r.status_code == 200, r.text

    await asyncio.gather(*(pay(oid) for oid in ids[20:]))
    body = await daily(api, sid, "2026-11-13")
    assert (body["orders_placed"], body["orders_paid"], body["buyers"]) == (30, 30, 5)
    assert body["gmv"] == "350.00"
    assert body["payment_rate"] == 1.0
    r = await api.client.post("/v1/admin/sweep", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert await daily(api, sid, "2026-11-13") == body


async def test_a_bulk_intake_that_drops_an_item_leaves_its_buyer_out(
    api: Api, clock: SettableClock
) -> None:
    clock.set(NOW)
    store = await api.store()
    sid = store["id"]
    sku = await stocked(api, sid, on_hand=1)
    ok = order(sid, sku, f"2026-11-13T10:00:00{SH}", f"2026-11-13T10:00:00{SH}", "10", "X1")
    short = order(
        sid,
        sku,
        f"2026-11-13T10:00:00{SH}",
        f"2026-11-13T10:00:00{SH}",
        "10",
        "X2",
        allow_backorder=False,
    )
    r = await api.client.post("/v1/orders/bulk", json={"orders": [ok, short]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [i["status"] for i in r.json()["results"]] == [201, 409]
    body = await daily(api, sid, "2026-11-13")
    assert (body["orders_placed"], body["orders_paid"], body["buyers"]) == (1, 1, 1)


def brute_force(rows: list[Any], now: datetime, tz: Any) -> dict[str, dict[str, Any]]:
    """The order figures of each local day, one order at a time (PDD: 3.00 a late order)."""
    out: dict[str, dict[str, Any]] = {}

    def day(at: datetime) -> dict[str, Any]:
        key = at.astimezone(tz).date().isoformat()
        return out.setdefault(
            key,
            {"placed": 0, "paid": 0, "gmv": Decimal(0), "buyers": set(), "shipped": 0,
             "on_time": 0, "overdue": 0, "penalties": Decimal(0)},
        )  # fmt: skip

    for o in rows:
        day(o.placed_at)["placed"] += 1
        if o.paid_at is not None:
            d = day(o.paid_at)
            d["paid"] += 1
            d["gmv"] += o.total
            d["buyers"].add(o.buyer_phone)
        if o.shipped_at is not None:
            day(o.shipped_at)["shipped"] += 1
            day(o.shipped_at)["on_time"] += not o.shipped_late
        deadline = o.dispatch_deadline
        if deadline is None:
            continue
        late = o.shipped_late or (
            o.shipped_at is None and o.cancelled_at is not None and o.cancelled_at > deadline
        )
        waiting = o.status == "awaiting_shipment" and deadline < now
        if late or waiting:
            day(deadline)["overdue"] += 1
        if o.penalty:
            day(deadline)["penalties"] += o.penalty
        elif waiting:
            day(deadline)["penalties"] += Decimal("3.00")
    return out


async def test_rollups_equal_a_count_of_the_orders(
    api: Api, app: Any, clock: SettableClock
) -> None:
    """Random orders through intake, payment, shipment (late or not), cancellation and the
    sweep, around midnight: the report equals counting the orders one by one, before and
    after the sweep folds the deltas."""
    rnd = random.Random(1111)
    clock.set(NOW)
    store = await api.store("pdd")
    sid = store["id"]
    sku = await stocked(api, sid)
    start = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)
    ids: list[str] = []
    for _ in range(40):
        placed = start + timedelta(minutes=rnd.randrange(0, 4 * 24 * 60))
        paid = placed + timedelta(minutes=rnd.randrange(0, 600)) if rnd.random() < 0.7 else None
        body = order(sid, sku, placed.isoformat(), paid and paid.isoformat(),
                     f"{rnd.randrange(100, 9999) / 100:.2f}", f"B{rnd.randrange(8)}")  # fmt: skip
        ids.append(await create(api, body))
    for n, oid in enumerate(ids):
        r = await api.client.get(f"/v1/orders/{oid}", headers=ADMIN)
        o = r.json()
        action = rnd.random()
        if o["status"] == "pending_payment" and action < 0.5:
            paid_at = datetime.fromisoformat(o["placed_at"]) + timedelta(hours=rnd.randrange(30))
            r = await api.client.post(
                f"/v1/orders/{oid}/pay", json={"paid_at": paid_at.isoformat()}, headers=ADMIN
            )
            assert r.status_code == 200, r.text
        elif o["status"] == "awaiting_shipment" and action < 0.6:
            deadline = datetime.fromisoformat(o["dispatch_deadline"])
            at = min(deadline + timedelta(hours=rnd.randrange(-40, 20)), NOW)
            at = max(at, datetime.fromisoformat(o["paid_at"]))
            await ship(api, oid, at.isoformat(), f"7310000000{n:04d}")
        elif action < 0.8:
            await api.client.post(f"/v1/orders/{oid}/cancel", json={"reason": "x"}, headers=ADMIN)
    async with app.state.sessionmaker() as session:
        rows = (
            await session.execute(sa.text("SELECT * FROM orders WHERE store_id = :s"),
                                  {"s": int(sid)})
        ).all()  # fmt: skip
    expected = brute_force(rows, NOW, ZoneInfo("Asia/Shanghai"))

    def figures(body: Any) -> dict[str, dict[str, Any]]:
        return {
            d["date"]: {
                "placed": d["orders_placed"], "paid": d["orders_paid"],
                "gmv": Decimal(d["gmv"]), "buyers": d["buyers"], "shipped": d["shipped"],
                "on_time": d["shipped_on_time"], "overdue": d["overdue"],
                "penalties": Decimal(d["penalties"]),
            }
            for d in body["days"]
            if d["orders_placed"] or d["orders_paid"] or d["shipped"] or d["overdue"]
        }  # fmt: skip

    want = {k: {**v, "buyers": len(v["buyers"])} for k, v in expected.items()}
    want = {
        k: v for k, v in want.items() if v["placed"] or v["paid"] or v["shipped"] or v["overdue"]
    }
    body = await date_range(api, sid, "2026-11-01", "2026-11-30")
    assert figures(body) == want
    r = await api.client.post("/v1/admin/sweep", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert await date_range(api, sid, "2026-11-01", "2026-11-30") == body


async def test_rollup_entry_points_take_the_stores_day_and_need_an_offset(
    api: Api, app: Any
) -> None:
    """A refund at 23:30 in Los Angeles is that day's, though it is the next day in UTC."""
    store = await api.store("jd", timezone="America/Los_Angeles")
    sid = int(store["id"])
    late = datetime(2026, 11, 12, 7, 30, tzinfo=UTC)  # 11-11 23:30 in Los Angeles
    await in_session(
        app,
        (rollup.record_refund, (sid, late, Decimal("12.34"))),
        (rollup.record_refund, (sid, late, Decimal("0.66"))),
        (rollup.record_ticket_resolved, (sid, late, True)),
    )
    body = await date_range(api, store["id"], "2026-11-11", "2026-11-12")
    eleven, twelve = body["days"]
    assert (eleven["refunds"], eleven["refund_amount"], eleven["refund_rate"]) == (2, "13.00", None)
    assert (eleven["tickets_resolved"], eleven["ticket_sla_rate"]) == (1, 1.0)
    assert (twelve["refunds"], twelve["tickets_resolved"]) == (0, 0)
    async with app.state.sessionmaker() as session:
        with pytest.raises(ValueError, match="time zone"):
            await rollup.record_ticket_opened(session, sid, datetime(2026, 11, 11, 12, 0))
