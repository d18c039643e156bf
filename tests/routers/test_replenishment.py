"""``GET /v1/replenishment``: vector numbers end to end, ordering, CSV export, roles and scope."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import pytest
from fastapi.openapi.utils import get_openapi

from app.domain.inventory.report_schemas import REPLENISHMENT_CSV_FIELDS
from app.routers.replenishment import wants_csv
from tests.helpers import ADMIN, Api, assert_problem, unique
from tests.routers.test_low_stock import bulk_skus, set_stock

CSV = {**ADMIN, "Accept": "text/csv"}


async def table(api: Api, store_id: str, headers: dict[str, str] | None = None) -> Any:
    r = await api.client.get(
        "/v1/replenishment", params={"store_id": store_id}, headers=headers or ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


async def vector_store(api: Api, app: Any) -> tuple[str, dict[str, dict[str, Any]]]:
    """A store with one SKU per situation; codes chosen so that ties sort by code."""
    store = await api.store()
    sid = store["id"]
    p = unique("r")
    specs: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        # name, SKU fields, stock
        ("hot_5d", {"sku_code": f"{p}-m"}, {"on_hand": 60, "reserved": 10, "shipped": 280}),
        ("hot_40d", {"sku_code": f"{p}-a"}, {"on_hand": 200, "shipped": 140}),
        ("hot_1d", {"sku_code": f"{p}-z"}, {"on_hand": 10, "shipped": 280}),
        ("hot_5d_tie", {"sku_code": f"{p}-b"}, {"on_hand": 50, "shipped": 280}),
        (
            "regular",
            {"sku_code": f"{p}-c", "lead_time_days": 10},
            {"on_hand": 5, "shipped": 56, "backordered": 3},
        ),
        ("slow_sold", {"sku_code": f"{p}-y"}, {"on_hand": 0, "shipped": 3}),
        ("idle_stocked", {"sku_code": f"{p}-x"}, {"on_hand": 4}),
        ("idle_empty", {"sku_code": f"{p}-d", "title": "云南普洱 357g 饼茶"}, {"on_hand": 0}),
        ("delisted", {"sku_code": f"{p}-e"}, {"on_hand": 0, "shipped": 280}),
    ]
    skus: dict[str, dict[str, Any]] = {}
    for name, fields, stock in specs:
        skus[name] = await api.sku(sid, **fields)
        await set_stock(app, skus[name]["id"], **stock)
    r = await api.client.patch(
        f"/v1/skus/{skus['delisted']['id']}", json={"status": "delisted"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    return sid, skus


async def test_table_numbers_and_order(api: Api, app: Any) -> None:
    sid, skus = await vector_store(api, app)
    before = datetime.now().astimezone()
    body = await table(api, sid)
    assert body["store_id"] == sid
    assert body["cover_days"] == 14
    assert datetime.fromisoformat(body["generated_at"]) >= before
    order = [i["sku_id"] for i in body["items"]]
    names = {s["id"]: n for n, s in skus.items()}
    assert [names[i] for i in order] == [
        "hot_1d",
        "hot_5d_tie",  # same cover as hot_5d, earlier code
        "hot_5d",
        "hot_40d",
        "regular",
        "slow_sold",  # cover 0.0 before no cover at all
        "idle_empty",  # no cover: by code (d < x)
        "idle_stocked",
    ]
    rows = {names[i["sku_id"]]: i for i in body["items"]}
    assert rows["hot_5d"] == {
        "sku_id": skus["hot_5d"]["id"],
        "store_id": sid,
        "sku_code": skus["hot_5d"]["sku_code"],
        "title": "西湖龙井 500g",
        "status": "active",
        "velocity_class": "hot",
        "avg_daily_sales": "10.0000",
        "on_hand": 60,
        "reserved": 10,
        "available": 50,
        "backordered": 0,
        "days_of_cover": "5.0",
        "lead_time_days": 7,
        "safety_days": 7,
        "reorder_point": 140,
        "suggested_qty": 230,
    }
    assert list(rows["hot_5d"]) == list(REPLENISHMENT_CSV_FIELDS)

    def pick(name: str, *fields: str) -> tuple[Any, ...]:
        return tuple(rows[name][f] for f in fields)

    cols = (
        "avg_daily_sales",
        "velocity_class",
        "available",
        "backordered",
        "days_of_cover",
        "lead_time_days",
        "safety_days",
        "reorder_point",
        "suggested_qty",
    )
    assert pick("hot_40d", *cols) == ("5.0000", "hot", 200, 0, "40.0", 7, 7, 70, 0)
    assert pick("hot_1d", *cols) == ("10.0000", "hot", 10, 0, "1.0", 7, 7, 140, 270)
    assert pick("regular", *cols) == ("2.0000", "regular", 5, 3, "2.5", 10, 3, 26, 52)
    assert pick("slow_sold", *cols) == ("0.1071", "slow", 0, 0, "0.0", 7, 1, 1, 3)
    assert pick("idle_stocked", *cols) == ("0.0000", "slow", 4, 0, None, 7, 1, 0, 0)
    assert pick("idle_empty", *cols) == ("0.0000", "slow", 0, 0, None, 7, 1, 0, 1)
    assert rows["idle_empty"]["title"] == "云南普洱 357g 饼茶"
    r = await api.client.get("/v1/replenishment", params={"store_id": sid}, headers=ADMIN)
    assert "云南普洱 357g 饼茶" in r.text  # not \u-escaped
    assert "\\u" not in r.text


async def test_csv_export(api: Api, app: Any) -> None:
    sid, skus = await vector_store(api, app)
    as_json = await table(api, sid)
    r = await api.client.get("/v1/replenishment", params={"store_id": sid}, headers=CSV)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    text = r.content.decode("utf-8-sig")
    assert "云南普洱 357g 饼茶" in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(REPLENISHMENT_CSV_FIELDS)
    assert len(rows) == 1 + len(as_json["items"])
    for line, item in zip(rows[1:], as_json["items"], strict=True):
        assert line == ["" if item[f] is None else str(item[f]) for f in REPLENISHMENT_CSV_FIELDS]
    idle = next(row for row in rows[1:] if row[0] == skus["idle_empty"]["id"])
    assert idle[rows[0].index("title")] == "云南普洱 357g 饼茶"
    assert idle[rows[0].index("days_of_cover")] == ""


async def test_csv_of_empty_store_is_header_only(api: Api) -> None:
    store = await api.store()
    r = await api.client.get("/v1/replenishment", params={"store_id": store["id"]}, headers=CSV)
    assert r.status_code == 200, r.text
    assert r.content.decode("utf-8-sig") == ",".join(REPLENISHMENT_CSV_FIELDS) + "\r\n"


@pytest.mark.parametrize(
    ("accept", "is_csv"),
    [
        (None, False),
        ("", False),
        ("application/json", False),
        ("*/*", False),
        ("text/csv", True),
        ("TEXT/CSV; charset=utf-8", True),
        ("text/csv, application/json", True),
        ("application/json, text/csv;q=0.5", False),
        ("application/json;q=0.4, text/csv;q=0.9", True),
        ("text/csv;q=0", False),
        ("text/csv;q=abc", False),
    ],
)
def test_wants_csv(accept: str | None, is_csv: bool) -> None:
    assert wants_csv(accept) is is_csv


async def test_more_than_one_batch(api: Api, app: Any) -> None:
    store = await api.store()
    ids = await bulk_skus(app, store["id"], 1_250, on_hand=3)
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params = {"store_id": store["id"], "limit": 500, **({"cursor": cursor} if cursor else {})}
        r = await api.client.get("/v1/replenishment", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        pages += 1
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    got = [i["sku_id"] for i in items]
    assert len(got) == len(set(got)) == 1_250
    assert set(got) == {str(i) for i in ids}
    codes = [i["sku_code"] for i in items]
    assert codes == sorted(codes)  # all slow with no cover: by code


# ---------------------------------------------------------------------------------------------
# Roles and scope


@pytest.mark.parametrize("role", ["admin", "operator", "integration"])
async def test_report_roles(api: Api, role: str) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    key = await api.key(role, [store["id"]])
    body = await table(api, store["id"], key)
    assert [i["sku_id"] for i in body["items"]] == [sku["id"]]


async def test_warehouse_is_forbidden(api: Api) -> None:
    store = await api.store()
    key = await api.key("warehouse", [store["id"]])
    r = await api.client.get("/v1/replenishment", params={"store_id": store["id"]}, headers=key)
    assert_problem(r, 403, "forbidden_role")
    r = await api.client.get(
        "/v1/replenishment", params={"store_id": store["id"]}, headers={**key, "Accept": "text/csv"}
    )
    assert_problem(r, 403, "forbidden_role")


async def test_scope(api: Api) -> None:
    mine = await api.store()
    other = await api.store()
    mine_sku = await api.sku(mine["id"])
    await api.sku(other["id"])
    key = await api.key("operator", [mine["id"]])
    r = await api.client.get("/v1/replenishment", params={"store_id": other["id"]}, headers=key)
    assert_problem(r, 404, "store_not_found")
    r = await api.client.get("/v1/replenishment", headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["store_id"] is None
    assert [i["sku_id"] for i in r.json()["items"]] == [mine_sku["id"]]
    for store_id in ("999999999", "abc"):
        r = await api.client.get("/v1/replenishment", params={"store_id": store_id}, headers=ADMIN)
        assert_problem(r, 404, "store_not_found")
    assert_problem(await api.client.get("/v1/replenishment"), 401)


def test_openapi_documents_csv(app: Any) -> None:
    schema = get_openapi(title="t", version="1", routes=app.routes)
    op = schema["paths"]["/v1/replenishment"]["get"]
    assert op["tags"] == ["inventory"]
    assert op["description"]
    ok = op["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/csv"}
    assert ok["text/csv"]["example"].lstrip("\ufeff").startswith("sku_id,")
    assert {"401", "403", "404", "422"} <= set(op["responses"])
    low = schema["paths"]["/v1/low-stock"]["get"]
    assert low["tags"] == ["inventory"]
    assert {"401", "404", "422"} <= set(low["responses"])
