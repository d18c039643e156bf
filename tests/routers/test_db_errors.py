"""One error boundary: values PostgreSQL cannot hold are 422 naming the field, a bulk item
that carries one fails alone, and database errors from either driver path are translated."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from pydantic import Field

from app.domain.inventory import schemas as inventory_schemas
from app.domain.inventory import service as inventory_service
from app.domain.order import bulk, intake, lifecycle
from app.domain.order import schemas as order_schemas
from tests.helpers import ADMIN, Api, assert_problem
from tests.routers.test_orders import order_body, stock, stocked_sku

EXTREME_INSTANTS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-10:00",
    "9999-06-01T00:00:00+00:00",  # convertible, but no room left for deadlines
]
HUGE = "999999999999.99"  # fits numeric(14,2) alone; twice it does not


def _line(sku: dict[str, Any], qty: int = 1, price: str = "10.00") -> list[dict[str, Any]]:
    return [{"sku_id": sku["id"], "quantity": qty, "unit_price": price}]


def _locs(problem: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in problem["errors"]]


@pytest.mark.parametrize("instant", EXTREME_INSTANTS)
@pytest.mark.parametrize("field", ["placed_at", "paid_at", "promised_ship_by"])
async def test_extreme_instants_are_422_naming_the_field(
    api: Api, field: str, instant: str
) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    body = order_body(store["id"], _line(sku), **{field: instant})
    if field == "placed_at":
        body.pop("paid_at")
    problem = assert_problem(
        await api.client.post("/v1/orders", json=body, headers=ADMIN), 422, "validation_error"
    )
    assert ["body", field] in _locs(problem)


async def test_extreme_instants_in_queries_and_shipments_are_422(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    r = await api.client.post("/v1/orders", json=order_body(store["id"], _line(sku)), headers=ADMIN)
    assert r.status_code == 201, r.text
    for instant in EXTREME_INSTANTS:
        problem = assert_problem(
            await api.client.get("/v1/orders", params={"placed_from": instant}, headers=ADMIN),
            422,
        )
        assert ["query", "placed_from"] in _locs(problem)
        shipped = await api.client.post(
            f"/v1/orders/{r.json()['id']}/ship",
            json={"carrier": "YTO", "tracking_number": "YT0000000000091", "shipped_at": instant},
            headers=ADMIN,
        )
        assert ["body", "shipped_at"] in _locs(assert_problem(shipped, 422))


@pytest.mark.parametrize(
    ("items", "extra", "loc"),
    [
        ([(2, HUGE)], {}, ["body", "items", 0]),  # one line's total
        ([(1, HUGE), (1, HUGE)], {}, ["body", "items"]),  # the subtotal
        ([(1, HUGE)], {"shipping_fee": "1.00"}, ["body", "shipping_fee"]),  # the total
        ([(100_000, "99999999.99")], {}, ["body", "items", 0]),
    ],
)
async def test_amounts_that_overflow_storage_are_422_naming_the_field(
    api: Api, items: list[tuple[int, str]], extra: dict[str, str], loc: list[Any]
) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 0)
    lines = [{"sku_id": sku["id"], "quantity": q, "unit_price": p} for q, p in items]
    r = await api.client.post(
        "/v1/orders", json=order_body(store["id"], lines, **extra), headers=ADMIN
    )
    problem = assert_problem(r, 422, "validation_error")
    assert loc in _locs(problem), problem


async def test_largest_storable_amount_is_taken(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 1)
    r = await api.client.post(
        "/v1/orders", json=order_body(store["id"], _line(sku, 1, HUGE)), headers=ADMIN
    )
    assert r.status_code == 201, r.text
    assert r.json()["total"] == HUGE


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("items", 0, "sku_code"), "TEA\x00"),
        (("coupon_code",), "C\x00"),
        (("group_buy",), {"group_id": "g\x00"}),
        (("buyer", "address"), "路\x00"),
        (("buyer", "name"), "张\x00"),
    ],
)
async def test_nul_in_any_order_string_is_422(api: Api, path: tuple[Any, ...], value: Any) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    body = order_body(
        store["id"], [{"sku_code": sku["sku_code"], "quantity": 1, "unit_price": "1"}]
    )
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    problem = assert_problem(await api.client.post("/v1/orders", json=body, headers=ADMIN), 422)
    assert any(loc[: len(path) + 1] == ["body", *path] for loc in _locs(problem)), problem


async def test_bulk_poisoned_items_fail_alone(api: Api) -> None:
    """NUL, an overflowing amount and extreme instants among good orders: each bad one gets
    its own 422 naming the field, the good ones are created."""
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 10)
    good = [order_body(store["id"], _line(sku)) for _ in range(3)]
    nul = order_body(store["id"], [{"sku_code": "TEA\x00", "quantity": 1, "unit_price": "1"}])
    overflow = order_body(store["id"], _line(sku, 2, HUGE))
    early = order_body(store["id"], _line(sku), placed_at=EXTREME_INSTANTS[0], paid_at=None)
    late = order_body(store["id"], _line(sku), paid_at=EXTREME_INSTANTS[1])
    orders = [good[0], nul, good[1], overflow, early, late, good[2]]
    r = await api.client.post("/v1/orders/bulk", json={"orders": orders}, headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 422, 201, 422, 422, 422, 201]
    wanted = {1: ["items", 0, "sku_code"], 3: ["items", 0], 4: ["placed_at"], 5: ["paid_at"]}
    for n, loc in wanted.items():
        assert results[n]["error"]["code"] == "validation_error"
        assert loc in _locs(results[n]["error"]), results[n]
    assert (await stock(api, sku["id"]))["reserved"] == 3


async def test_bulk_item_refused_by_the_database_fails_alone(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value that gets past validation and overflows in the set-based COPY: the batch is
    redone order by order, so only that order fails (422 invalid_value)."""
    monkeypatch.setattr(order_schemas, "check_amount", lambda value, what: value)
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 10)
    orders = [
        order_body(store["id"], _line(sku)),
        order_body(store["id"], _line(sku, 2, HUGE)),
        order_body(store["id"], _line(sku, 3)),
    ]
    orders.append(dict(orders[0]))  # a copy in the batch: still answered 200 with the id
    r = await api.client.post("/v1/orders/bulk", json={"orders": orders}, headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 422, 201, 200]
    assert results[1]["error"]["code"] == "invalid_value"
    assert results[3]["id"] == results[0]["id"]
    assert (await stock(api, sku["id"]))["reserved"] == 4
    for n in (0, 2):
        order = await api.client.get(f"/v1/orders/{results[n]['id']}", headers=ADMIN)
        assert order.status_code == 200
    listed = await api.client.get("/v1/orders", params={"store_id": store["id"]}, headers=ADMIN)
    assert len(listed.json()["items"]) == 2


async def test_ship_bulk_item_refused_by_the_database_fails_alone(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Loose(order_schemas.ShipBulkItem):
        tracking_number: str = Field(min_length=1)  # type: ignore[assignment]

    monkeypatch.setattr(lifecycle, "ShipBulkItem", Loose)
    monkeypatch.setattr(lifecycle.dispatch, "is_valid_tracking_number", lambda number: True)
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 3)
    ids = []
    for _ in range(3):
        r = await api.client.post(
            "/v1/orders", json=order_body(store["id"], _line(sku)), headers=ADMIN
        )
        ids.append(r.json()["id"])
    items = [
        {"order_id": ids[0], "carrier": "YTO", "tracking_number": "YT0000000000011"},
        {"order_id": ids[1], "carrier": "YTO", "tracking_number": "YT00\x0000000012"},
        {"order_id": ids[2], "carrier": "YTO", "tracking_number": "YT0000000000013"},
    ]
    r = await api.client.post("/v1/orders/ship-bulk", json={"items": items}, headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 422, 200]
    assert results[1]["error"]["code"] == "invalid_value"
    assert (await stock(api, sku["id"]))["on_hand"] == 1


async def test_ship_bulk_poisoned_items_fail_alone(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 2)
    ids = []
    for _ in range(2):
        r = await api.client.post(
            "/v1/orders", json=order_body(store["id"], _line(sku)), headers=ADMIN
        )
        ids.append(r.json()["id"])
    items = [
        {"order_id": ids[0], "carrier": "YTO", "tracking_number": "YT0000000000021"},
        {"order_id": ids[1], "carrier": "YTO", "tracking_number": "YT\x00"},
        {
            "order_id": ids[1],
            "carrier": "YTO",
            "tracking_number": "YT0000000000022",
            "shipped_at": EXTREME_INSTANTS[0],
        },
        {"order_id": ids[1], "carrier": "YTO", "tracking_number": "YT0000000000023"},
    ]
    r = await api.client.post("/v1/orders/ship-bulk", json={"items": items}, headers=ADMIN)
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 422, 422, 200]
    assert ["tracking_number"] in _locs(results[1]["error"])
    assert ["shipped_at"] in _locs(results[2]["error"])
    assert (await stock(api, sku["id"]))["on_hand"] == 0


async def test_stock_levels_item_refused_by_the_database_fails_alone(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Loose(inventory_schemas.StockLevelItem):
        on_hand: int  # type: ignore[assignment]

    monkeypatch.setattr(inventory_service, "StockLevelItem", Loose)
    store = await api.store()
    a, b, c = [await stocked_sku(api, store["id"], 5) for _ in range(3)]
    items = [
        {"store_id": store["id"], "sku_code": a["sku_code"], "on_hand": 7},
        {"store_id": store["id"], "sku_code": b["sku_code"], "on_hand": 3_000_000_000},
        {"store_id": store["id"], "sku_code": c["sku_code"], "on_hand": 9},
        {"store_id": store["id"], "sku_code": "TEA\x00", "on_hand": 1},
    ]
    r = await api.client.put("/v1/stock-levels", json={"items": items}, headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 422, 200, 422], results
    assert results[1]["error"]["code"] == "invalid_value"
    assert results[3]["error"]["code"] == "validation_error"
    assert [(await stock(api, s["id"]))["on_hand"] for s in (a, b, c)] == [7, 5, 9]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (asyncpg.exceptions.CharacterNotInRepertoireError("NUL"), 422, "invalid_value"),
        (asyncpg.exceptions.NumericValueOutOfRangeError("overflow"), 422, "invalid_value"),
        (asyncpg.exceptions.StringDataRightTruncationError("long"), 422, "invalid_value"),
        (ConnectionRefusedError(111, "refused"), 503, "database_unavailable"),
        (asyncpg.exceptions.ConnectionDoesNotExistError("gone"), 503, "database_unavailable"),
        (asyncpg.exceptions.AdminShutdownError("shutdown"), 503, "database_unavailable"),
        (asyncpg.exceptions.QueryCanceledError("timeout"), 503, "database_timeout"),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), 409, "conflict"),
    ],
)
async def test_raw_driver_errors_reaching_the_edge_are_translated(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, code: str
) -> None:
    """asyncpg's own errors (the raw-connection path of intake) get the same answers as
    SQLAlchemy's; a deadlock is retried first, then reported as a conflict."""
    calls = 0

    async def fail(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise error

    monkeypatch.setattr(intake, "take", fail)
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 1)
    r = await api.client.post("/v1/orders", json=order_body(store["id"], _line(sku)), headers=ADMIN)
    problem = assert_problem(r, status, code)
    assert calls == (4 if code == "conflict" else 1)
    if status == 503:
        assert r.headers["retry-after"] == "1"
        assert "request_id" not in problem


async def test_raw_path_deadlock_is_retried(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    original = bulk.take_bulk
    calls = 0

    async def deadlock_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        return await original(*args, **kwargs)

    monkeypatch.setattr(bulk, "take_bulk", deadlock_once)
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 1)
    r = await api.client.post(
        "/v1/orders/bulk", json={"orders": [order_body(store["id"], _line(sku))]}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == [201]
    assert calls == 2


async def test_every_operation_documents_503(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in {"get", "put", "post", "delete", "patch"}
    ]
    assert len(operations) > 20
    for path, method, op in operations:
        documented = op["responses"].get("503")
        assert documented is not None, (method, path)
        content = documented["content"]["application/problem+json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert content["example"]["code"] == "database_unavailable"


async def test_stock_that_overflows_its_column_is_422_not_500(api: Api) -> None:
    """on_hand is an int4: the third receipt of 10^9 cannot be stored; the database refuses
    it (SQLAlchemy path) and the answer is a clean 422, the balance untouched."""
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 1_000_000_000)
    body = {"sku_id": sku["id"], "kind": "receive", "quantity": 1_000_000_000}
    r = await api.client.post("/v1/stock-movements", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await api.client.post("/v1/stock-movements", json=body, headers=ADMIN)
    assert_problem(r, 422, "invalid_value")
    assert (await stock(api, sku["id"]))["on_hand"] == 2_000_000_000
