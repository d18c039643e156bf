"""Board and pick-list order by deadline (DOMAIN.md §2: risk is a label, not the sort key);
pick-list orders with their lines and ship-to address, paged with a stable cursor."""

from __future__ import annotations

from typing import Any

from tests.helpers import ADMIN, Api, SettableClock, assert_problem
from tests.routers.test_dispatch_board import BUYER, H, M, T, external_ids, insert, order


async def test_a_short_window_with_5h_left_comes_before_a_48h_order_with_8h_left(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store = await api.store("pdd")
    ids = await insert(
        app,
        store["id"],
        order("window48", T + 8 * H),  # at risk since T - 16 h
        order("window6", T + 5 * H, window=6 * H),  # promised ship in 6 h: on track
    )
    clock.set(T)
    r = await api.client.get("/v1/dispatch-board", params={"store_id": store["id"]}, headers=ADMIN)
    items = r.json()["items"]
    assert external_ids(items, ids) == ["window6", "window48"]
    assert [i["risk"] for i in items] == ["on_track", "at_risk"]
    assert r.json()["counts"] == {"on_track": 1, "at_risk": 1, "overdue": 0, "short": 0}
    r = await api.client.get("/v1/pick-list", params={"store_id": store["id"]}, headers=ADMIN)
    assert external_ids(r.json()["orders"], ids) == ["window6", "window48"]


async def test_pick_list_gives_lines_and_address_and_pages_with_a_cursor(
    api: Api, app: Any, clock: SettableClock
) -> None:
    store = await api.store("pdd")
    tea = await api.sku(store["id"], sku_code="TEA", barcode="6901234567892")
    cup = await api.sku(store["id"], sku_code="CUP", title="茶杯")
    elsewhere = {**BUYER, "name": "李四", "address": "南山区科技园 2 号", "city": "深圳市"}
    ids = await insert(
        app,
        store["id"],
        order("late", T - 2 * H),
        order("later1", T + 1 * H + 30 * M),  # falls due while the packer pages
        order("chased", T + 30 * H, urgent=True),
        order("tie-b", T + 2 * H, window=24 * H),  # placed after tie-a: same deadline
        order("tie-a", T + 2 * H, buyer=elsewhere),
        order("last", T + 40 * H),
        order("held", T - 5 * H, on_hold=True),
        lines={"late": [(tea["id"], 2), (cup["id"], 1)], "tie-a": [(cup["id"], 3)]},
    )
    clock.set(T)
    expected = ["late", "chased", "later1", "tie-a", "tie-b", "last"]
    r = await api.client.get("/v1/pick-list", params={"store_id": store["id"]}, headers=ADMIN)
    whole = r.json()
    assert external_ids(whole["orders"], ids) == expected
    assert whole["next_cursor"] is None
    late = whole["orders"][0]
    assert late["ship_to"] == BUYER
    assert late["items"] == [
        {
            "line_no": 1,
            "sku_id": tea["id"],
            "sku_code": "TEA",
            "title": tea["title"],
            "barcode": "6901234567892",
            "quantity": 2,
        },
        {
            "line_no": 2,
            "sku_id": cup["id"],
            "sku_code": "CUP",
            "title": "茶杯",
            "barcode": None,
            "quantity": 1,
        },
    ]
    assert whole["orders"][3]["ship_to"] == elsewhere
    assert whole["orders"][1]["items"] == []

    # Pages of two: every order once, in the same order, although "later1" falls due (and
    # would now sort first) between the first page and the second.
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"store_id": store["id"], "limit": 2}
    pages = 0
    while True:
        r = await api.client.get("/v1/pick-list", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["orders"]
        pages += 1
        clock.set(T + 2 * H)
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == 3
    assert external_ids(seen, ids) == expected
    # Risk labels are of the clock at read time.
    assert seen[-1]["risk"] == "on_track"
    assert [o["risk"] for o in seen[2:4]] == ["overdue", "at_risk"]

    page = await api.client.get(
        "/v1/pick-list", params={"store_id": store["id"], "limit": 1}, headers=ADMIN
    )
    assert [s["sku_code"] for s in page.json()["skus"]] == ["CUP", "TEA"]
    for bad in ("nope", page.json()["next_cursor"][:-3] + "AAA"):
        assert_problem(
            await api.client.get("/v1/pick-list", params={"cursor": bad}, headers=ADMIN),
            422,
            "invalid_cursor",
        )
