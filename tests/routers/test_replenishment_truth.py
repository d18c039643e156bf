"""Replenishment tells the truth (issue 8): auto-delisted SKUs are in the table, SKUs delisted
by hand are not, and every low-stock SKU gets the same positive suggestion in ``/v1/low-stock``
and ``/v1/replenishment``; the SQL of both reports agrees with the pure rules over many
generated SKUs."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.domain.inventory import rules
from app.domain.inventory.report_schemas import (
    REPLENISHMENT_CSV_FIELDS,
    LowStockItem,
    ReplenishmentRow,
)
from app.domain.inventory.reports import replenishment_position
from tests.helpers import ADMIN, Api, unique, vector_cases
from tests.routers.test_low_stock import set_stock
from tests.routers.test_low_stock import walk as walk_low
from tests.routers.test_orders import order_body, stocked_sku
from tests.routers.test_replenishment_stream import walk as walk_table


async def replenishment_by_id(api: Api, store_id: str) -> dict[str, dict[str, Any]]:
    items, _ = await walk_table(api, store_id, limit=500)
    return {i["sku_id"]: i for i in items}


async def test_auto_delisted_sku_with_backorders_is_in_the_table(api: Api) -> None:
    store = await api.store()
    sid = store["id"]
    sku = await stocked_sku(api, sid, 2)
    # 5 ordered, 2 in stock: 3 wait, and the SKU runs out and is delisted automatically.
    r = await api.client.post(
        "/v1/orders",
        json=order_body(sid, [{"sku_id": sku["id"], "quantity": 5, "unit_price": "129.90"}]),
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    assert r.json()["allocation"] == "partial"
    r = await api.client.get(f"/v1/skus/{sku['id']}", headers=ADMIN)
    assert (r.json()["status"], r.json()["delisted_by"]) == ("delisted", "auto")

    row = (await replenishment_by_id(api, sid))[sku["id"]]
    assert row["status"] == "delisted"
    assert (row["available"], row["backordered"]) == (0, 3)
    # Nothing sold yet: the 3 waiting units, and one more so the SKU is no longer out of stock.
    assert row["suggested_qty"] == 4
    [low] = await walk_low(api, sid, limit=50)
    assert low["sku_id"] == sku["id"]
    assert low["suggested_reorder"] == row["suggested_qty"]
    r = await api.client.get("/v1/replenishment", params={"store_id": sid}, headers=CSV)
    lines = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["sku_id"], x["status"], x["suggested_qty"]) for x in lines] == [
        (sku["id"], "delisted", "4")
    ]


async def test_manually_delisted_sku_is_left_out(api: Api, app: Any) -> None:
    store = await api.store()
    sid = store["id"]
    kept = await api.sku(sid)
    await set_stock(app, kept["id"], on_hand=0, shipped=28, backordered=2)
    by_hand = await api.sku(sid)
    await set_stock(app, by_hand["id"], on_hand=0, shipped=28, backordered=2)
    r = await api.client.patch(
        f"/v1/skus/{by_hand['id']}", json={"status": "delisted"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["delisted_by"] == "manual"

    assert list(await replenishment_by_id(api, sid)) == [kept["id"]]
    assert [i["sku_id"] for i in await walk_low(api, sid, limit=50)] == [kept["id"]]
    r = await api.client.get("/v1/replenishment", params={"store_id": sid}, headers=CSV)
    lines = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [x["sku_id"] for x in lines] == [kept["id"]]


async def test_every_low_stock_sku_gets_the_same_positive_suggestion(api: Api, app: Any) -> None:
    store = await api.store()
    sid = store["id"]
    # Each of these was low stock with a suggestion of 0 before.
    explicit = await api.sku(sid, low_stock_threshold=100)  # 1/day needs 24, seller keeps 100
    await set_stock(app, explicit["id"], on_hand=50, shipped=28)
    trickle = await api.sku(sid)  # 1 unit in 28 days: reorder point 1, need 1, available 1
    await set_stock(app, trickle["id"], on_hand=1, shipped=1)
    empty = await api.sku(sid)  # nothing sold, nothing left
    hot = await api.sku(sid)  # the worked vector: 230
    await set_stock(app, hot["id"], on_hand=60, reserved=10, shipped=280)
    stocked = await api.sku(sid)  # not low: not in /v1/low-stock, nothing to order
    await set_stock(app, stocked["id"], on_hand=500, shipped=28)

    table = await replenishment_by_id(api, sid)
    low = {i["sku_id"]: i for i in await walk_low(api, sid, limit=2)}
    assert set(low) == {explicit["id"], trickle["id"], empty["id"], hot["id"]}
    for sku_id, item in low.items():
        assert item["suggested_reorder"] == table[sku_id]["suggested_qty"] > 0, item
    assert {
        k: low[v["id"]]["suggested_reorder"]
        for k, v in _named(explicit=explicit, trickle=trickle, empty=empty, hot=hot).items()
    } == {"explicit": 51, "trickle": 1, "empty": 1, "hot": 230}
    assert table[stocked["id"]]["suggested_qty"] == 0


def _named(**skus: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return skus


async def test_vectors_end_to_end(api: Api, app: Any) -> None:
    """Every case of tests/vectors/replenishment.json through the SQL of both reports."""
    store = await api.store()
    sid = store["id"]
    cases = {}
    for case in vector_cases("replenishment"):
        fields: dict[str, Any] = {"lead_time_days": case["lead_time_days"]}
        if case.get("low_stock_threshold") is not None:
            fields["low_stock_threshold"] = case["low_stock_threshold"]
        sku = await api.sku(sid, **fields)
        await set_stock(
            app,
            sku["id"],
            on_hand=case["available"],
            shipped=case["units_shipped_last_28_days"],
            backordered=case["backordered"],
        )
        cases[sku["id"]] = case
    table = await replenishment_by_id(api, sid)
    low = {i["sku_id"]: i for i in await walk_low(api, sid, limit=50)}
    assert set(table) == set(cases)
    assert set(low) == {i for i, c in cases.items() if c["expect"]["low_stock"]}
    for sku_id, case in cases.items():
        expect, row = case["expect"], table[sku_id]
        assert (
            Decimal(row["avg_daily_sales"]),
            row["velocity_class"],
            row["reorder_point"],
            row["backordered"],
            row["suggested_qty"],
        ) == (
            Decimal(str(expect["avg_daily_sales"])),
            expect["velocity_class"],
            expect["reorder_point"],
            case["backordered"],
            expect["suggested_qty"],
        ), case
        if sku_id in low:
            assert low[sku_id]["suggested_reorder"] == expect["suggested_qty"] > 0


# ---------------------------------------------------------------------------------------------
# The SQL of both reports against the pure rules, over many generated SKUs


@dataclass(frozen=True)
class Spec:
    """A generated SKU: what it is and what happened to it."""

    code: str
    status: str
    delisted_by: str | None
    threshold: int | None
    lead: int | None
    safety: int | None
    on_hand: int
    reserved: int
    shipped: int
    shipped_long_ago: int
    waiting: tuple[int, ...]


def generate(rng: random.Random, prefix: str, count: int) -> list[Spec]:
    """SKUs across every class, status, override and boundary the rules have."""
    units = [0, 0, 1, 3, 5, 6, 27, 28, 55, 56, 139, 140, 141, 280, 600]
    specs = []
    for n in range(count):
        status, by = rng.choice(
            [("active", None)] * 6 + [("delisted", "auto")] * 2 + [("delisted", "manual")] * 2
        )
        on_hand = rng.choice([0, 0, 1, 2, 5, 10, 24, 50, 140, 141, rng.randint(0, 400)])
        reserved = rng.choice([0, 0, on_hand, rng.randint(0, on_hand)])
        waiting = rng.choice([(), (), (), (3,), (1, 4), (rng.randint(1, 30),)])
        specs.append(
            Spec(
                # Codes collide in their first characters so that ties sort by code, then id.
                code=f"{prefix}-{rng.choice('aBz_中')}{n % 7}-{n}",
                status=status,
                delisted_by=by,
                threshold=rng.choice([None, None, None, 0, 1, 10, 100, rng.randint(0, 300)]),
                lead=rng.choice([None, None, 0, 3, 10, 30]),
                safety=rng.choice([None, None, 0, 2, 9]),
                on_hand=on_hand,
                reserved=reserved,
                shipped=rng.choice([*units, rng.randint(0, 900)]),
                shipped_long_ago=rng.choice([0, 0, 100]),
                waiting=waiting,
            )
        )
    return specs


async def insert(app: Any, store_id: int, specs: list[Spec]) -> list[int]:
    """Write the generated SKUs straight into the tables; their ids in ``specs`` order."""
    ids = []
    now = datetime.now(UTC)
    async with app.state.sessionmaker() as session:
        for s in specs:
            sku_id = (
                await session.execute(
                    sa.text(
                        "INSERT INTO skus (store_id, sku_code, title, price, version, status, "
                        "delisted_by, low_stock_threshold, lead_time_days, safety_days) "
                        "VALUES (:store, :code, '生成商品', 9.90, 1, :status, :by, :threshold, "
                        ":lead, :safety) RETURNING id"
                    ),
                    {
                        "store": store_id,
                        "code": s.code,
                        "status": s.status,
                        "by": s.delisted_by,
                        "threshold": s.threshold,
                        "lead": s.lead,
                        "safety": s.safety,
                    },
                )
            ).scalar_one()
            ids.append(sku_id)
            await session.execute(
                sa.text(
                    "INSERT INTO stock_levels (sku_id, store_id, on_hand, reserved) "
                    "VALUES (:id, :store, :on_hand, :reserved)"
                ),
                {"id": sku_id, "store": store_id, "on_hand": s.on_hand, "reserved": s.reserved},
            )
            for qty, at in (
                (s.shipped, now - timedelta(days=1)),
                (s.shipped_long_ago, now - timedelta(days=29)),
            ):
                if qty:
                    await session.execute(
                        sa.text(
                            "INSERT INTO stock_movements (sku_id, store_id, kind, quantity, "
                            "on_hand_after, reason, created_at) "
                            "VALUES (:id, :store, 'ship', :q, :on_hand, 'generated', :at)"
                        ),
                        {
                            "id": sku_id,
                            "store": store_id,
                            "q": -qty,
                            "on_hand": s.on_hand,
                            "at": at,
                        },
                    )
            # Lines waiting for stock, and lines that wait for nothing: fully reserved, shipped
            # (consumed) or cancelled (released) before they were served.
            lines = [(q, 0, "open") for q in s.waiting]
            lines += [(2, 2, "open"), (3, 0, "released"), (4, 1, "released"), (5, 5, "consumed")]
            for requested, held, state in lines:
                await session.execute(
                    sa.text(
                        "INSERT INTO reservations (sku_id, store_id, line_ref, requested, "
                        "reserved, status, placed_at) "
                        "VALUES (:id, :store, :ref, :q, :held, :state, now())"
                    ),
                    {
                        "id": sku_id,
                        "store": store_id,
                        "ref": unique("line"),
                        "q": requested,
                        "held": held,
                        "state": state,
                    },
                )
        await session.commit()
    return ids


def expected_row(sku_id: int, store_id: int, s: Spec) -> ReplenishmentRow:
    """The table's row for ``s``, from the pure rules alone."""
    fig = rules.stock_figures(
        on_hand=s.on_hand,
        reserved=s.reserved,
        units_shipped_28d=s.shipped,
        low_stock_threshold=s.threshold,
        lead_time_days=s.lead,
        safety_days=s.safety,
    )
    return ReplenishmentRow(
        sku_id=sku_id,
        store_id=store_id,
        sku_code=s.code,
        title="生成商品",
        status=s.status,
        velocity_class=fig.velocity_class,
        avg_daily_sales=rules.display_avg(fig.avg_daily_sales),
        on_hand=s.on_hand,
        reserved=s.reserved,
        available=fig.available,
        backordered=sum(s.waiting),
        days_of_cover=rules.days_of_cover(fig.available, s.shipped),
        lead_time_days=fig.lead_time_days,
        safety_days=fig.safety_days,
        reorder_point=fig.reorder_point,
        suggested_qty=rules.suggested_qty(fig, backordered=sum(s.waiting)),
    )


async def test_sql_agrees_with_the_rules_over_generated_skus(api: Api, app: Any) -> None:
    store = await api.store()
    sid = int(store["id"])
    specs = generate(random.Random(8), unique("g"), 360)
    ids = await insert(app, sid, specs)
    listed = {
        i: (s, expected_row(i, sid, s))
        for i, s in zip(ids, specs, strict=True)
        if rules.is_replenished(s.status, s.delisted_by)
    }
    # Every kind of SKU is there: the comparison below is not vacuous.
    assert {s.delisted_by for s, _ in listed.values()} == {None, "auto"}
    assert len(listed) < len(specs)

    want = sorted((row for _, row in listed.values()), key=replenishment_position)
    items, pages = await walk_table(api, store["id"], limit=37)
    assert pages > 5
    assert items == [row.model_dump(mode="json") for row in want]
    r = await api.client.get("/v1/replenishment", params={"store_id": store["id"]}, headers=CSV)
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[0] == list(REPLENISHMENT_CSV_FIELDS)
    assert [line[0] for line in lines[1:]] == [str(row.sku_id) for row in want]

    low = await walk_low(api, store["id"], limit=23)
    want_low = [i for i, (s, row) in sorted(listed.items()) if _is_low(s)]
    assert len(want_low) > 20
    assert [int(i["sku_id"]) for i in low] == want_low
    for item in low:
        row = listed[int(item["sku_id"])][1]
        assert item["suggested_reorder"] == row.suggested_qty > 0, (item, row)
        assert item["status"] == row.status


def _is_low(s: Spec) -> bool:
    return rules.stock_figures(
        on_hand=s.on_hand,
        reserved=s.reserved,
        units_shipped_28d=s.shipped,
        low_stock_threshold=s.threshold,
        lead_time_days=s.lead,
        safety_days=s.safety,
    ).low_stock


CSV = {**ADMIN, "Accept": "text/csv"}


def test_openapi_examples_are_valid_rows(app: Any) -> None:
    """The documented examples are rows the API could send, and tell the same story."""
    schema = app.openapi()
    parts = schema["components"]["schemas"]
    [low_example] = parts["LowStockItem"]["examples"]
    [row_example] = parts["ReplenishmentRow"]["examples"]
    low_item = LowStockItem.model_validate(low_example)
    row = ReplenishmentRow.model_validate(row_example)
    assert low_item.suggested_reorder == row.suggested_qty > 0
    for part in ("LowStockItem", "ReplenishmentRow"):
        assert "delisted by hand" in parts[part]["properties"]["status"]["description"]
    csv_example = schema["paths"]["/v1/replenishment"]["get"]["responses"]["200"]["content"][
        "text/csv"
    ]["example"]
    header, line = csv_example.lstrip("\ufeff").splitlines()
    assert dict(zip(header.split(","), line.split(","), strict=True)) == {
        k: "" if v is None else str(v) for k, v in row_example.items()
    }
    for path in ("/v1/replenishment", "/v1/low-stock"):
        description = " ".join(schema["paths"][path]["get"]["description"].split())
        assert "delisted by hand" in description
        assert "suggested_reorder" in description
