"""SKUs: creation, money validation, filters, patch with If-Match, cursor pagination."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.helpers import ADMIN, Api, assert_problem, unique


def sku_body(store_id: str, **fields: Any) -> dict[str, Any]:
    """A valid create body for ``store_id``."""
    return {
        "store_id": store_id,
        "sku_code": unique("sku"),
        "title": "西湖龙井 500g",
        "price": "129.90",
        **fields,
    }


def assert_validation_problem(body: dict[str, Any]) -> None:
    """A 422 problem lists its errors as ``{loc, msg}`` items."""
    assert isinstance(body.get("errors"), list), body
    assert body["errors"], body
    for err in body["errors"]:
        assert isinstance(err["loc"], list), err
        assert isinstance(err["msg"], str), err
        assert err["msg"], err


# ---------------------------------------------------------------------------------------------
# Create


async def test_create_returns_read_model(api: Api) -> None:
    store = await api.store()
    body = sku_body(store["id"], title="西湖龙井 明前特级 500g")
    r = await api.client.post("/v1/skus", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    sku = r.json()
    assert isinstance(sku["id"], str)
    assert sku["id"].isdigit()
    assert sku["store_id"] == store["id"]
    assert sku["sku_code"] == body["sku_code"]
    assert sku["status"] == "active"
    assert sku["delisted_by"] is None
    assert sku["velocity_class"] == "slow"
    assert sku["stock"] == {
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
        "low_stock": True,
        "threshold": 0,
    }
    assert sku["price"] == "129.90"
    assert sku["version"] == 1
    assert sku["title"] == "西湖龙井 明前特级 500g"
    assert "西湖龙井 明前特级 500g" in r.text
    assert "\\u" not in r.text
    assert r.headers["content-type"].startswith("application/json")

    r = await api.client.get(f"/v1/skus/{sku['id']}", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == sku
    assert "西湖龙井" in r.text
    assert "\\u" not in r.text


async def test_create_with_optional_fields(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(
        store["id"],
        floor_price="99",
        cost_price="80.5",
        barcode="6901234567892",
        low_stock_threshold=5,
        lead_time_days=3,
        safety_days=2,
    )
    assert sku["floor_price"] == "99.00"
    assert sku["cost_price"] == "80.50"
    assert sku["effective_floor_price"] == "99.00"
    assert sku["barcode"] == "6901234567892"
    assert sku["low_stock_threshold"] == 5
    assert sku["stock"]["threshold"] == 5
    assert sku["stock"]["low_stock"] is True


async def test_duplicate_sku_code(api: Api) -> None:
    a = await api.store()
    b = await api.store()
    code = unique("dup")
    first = await api.sku(a["id"], sku_code=code)
    r = await api.client.post("/v1/skus", json=sku_body(a["id"], sku_code=code), headers=ADMIN)
    assert_problem(r, 409, "duplicate_sku")
    # The same code in another store is another SKU.
    other = await api.sku(b["id"], sku_code=code)
    assert other["id"] != first["id"]
    assert other["sku_code"] == code


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (10, "10.00"),
        ("7.5", "7.50"),
        ("129.90", "129.90"),
        ("0", "0.00"),
        (0, "0.00"),
    ],
)
async def test_money_accepted(api: Api, price: Any, expected: str) -> None:
    store = await api.store()
    r = await api.client.post("/v1/skus", json=sku_body(store["id"], price=price), headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["price"] == expected


@pytest.mark.parametrize(
    "price",
    [
        pytest.param("1.234", id="three-decimals"),
        pytest.param(-5, id="negative-int"),
        pytest.param("-5.00", id="negative-string"),
        pytest.param(1.5, id="float"),
        pytest.param(10.0, id="whole-float"),
        pytest.param("abc", id="text"),
        pytest.param("", id="empty"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="null"),
        pytest.param("1e3", id="exponent"),
        pytest.param("NaN", id="nan"),
    ],
)
async def test_money_rejected(api: Api, price: Any) -> None:
    store = await api.store()
    r = await api.client.post("/v1/skus", json=sku_body(store["id"], price=price), headers=ADMIN)
    body = assert_problem(r, 422, "validation_error")
    assert_validation_problem(body)
    assert any("price" in err["loc"] for err in body["errors"]), body


async def test_missing_price_is_422(api: Api) -> None:
    store = await api.store()
    body = sku_body(store["id"])
    del body["price"]
    r = await api.client.post("/v1/skus", json=body, headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422, "validation_error"))


@pytest.mark.parametrize(
    "fields",
    [
        {"price": "10.00", "floor_price": "20.00"},
        {"price": "10.00", "cost_price": "10.01"},
        {"price": 5, "floor_price": 6, "cost_price": 1},
    ],
)
async def test_price_under_floor_is_422(api: Api, fields: dict[str, Any]) -> None:
    store = await api.store()
    r = await api.client.post("/v1/skus", json=sku_body(store["id"], **fields), headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422))


async def test_price_at_floor_is_fine(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"], price="20", floor_price="20.00")
    assert sku["price"] == sku["floor_price"] == "20.00"


async def test_unknown_or_malformed_store(api: Api) -> None:
    r = await api.client.post("/v1/skus", json=sku_body("999999999"), headers=ADMIN)
    assert_problem(r, 404, "store_not_found")
    r = await api.client.post("/v1/skus", json=sku_body("abc"), headers=ADMIN)
    body = assert_problem(r, 422, "validation_error")
    assert_validation_problem(body)
    assert any("store_id" in err["loc"] for err in body["errors"]), body


@pytest.mark.parametrize(
    "fields",
    [
        {"sku_code": ""},
        {"sku_code": " leading-space"},
        {"sku_code": "x" * 65},
        {"title": ""},
        {"title": "t" * 201},
        {"barcode": "12"},
        {"barcode": "bad barcode!"},
        {"low_stock_threshold": -1},
        {"lead_time_days": 366},
        {"unknown_field": 1},
    ],
)
async def test_create_rejects_bad_fields(api: Api, fields: dict[str, Any]) -> None:
    store = await api.store()
    r = await api.client.post("/v1/skus", json=sku_body(store["id"], **fields), headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422, "validation_error"))


async def test_malformed_json_is_422(api: Api) -> None:
    r = await api.client.post(
        "/v1/skus",
        content=b'{"store_id": ',
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert_problem(r, 422)


# ---------------------------------------------------------------------------------------------
# Reads and filters


async def test_get_unknown_sku_is_404(api: Api) -> None:
    for sid in ("999999999", "abc", "0", "-1"):
        r = await api.client.get(f"/v1/skus/{sid}", headers=ADMIN)
        assert_problem(r, 404, "sku_not_found")


async def test_filter_by_barcode(api: Api) -> None:
    store = await api.store()
    one = await api.sku(store["id"], barcode="6901234567892")
    await api.sku(store["id"], barcode="6901234567809")
    r = await api.client.get(
        "/v1/skus", params={"store_id": store["id"], "barcode": "6901234567892"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["items"]] == [one["id"]]
    # Exact match only: a prefix finds nothing.
    r = await api.client.get(
        "/v1/skus", params={"store_id": store["id"], "barcode": "690123456789"}, headers=ADMIN
    )
    assert r.json()["items"] == []
    r = await api.client.get("/v1/skus", params={"barcode": "bad code!"}, headers=ADMIN)
    assert_problem(r, 422, "validation_error")


async def test_filter_by_q(api: Api) -> None:
    store = await api.store()
    tea = await api.sku(store["id"], sku_code=unique("TEA-LONGJING"), title="西湖龙井 500g")
    pot = await api.sku(store["id"], sku_code=unique("POT"), title="紫砂壶 宜兴")
    cup = await api.sku(store["id"], sku_code=unique("CUP"), title="Glass cup 玻璃杯")

    async def found(q: str) -> list[str]:
        params = {"store_id": store["id"], "q": q}
        r = await api.client.get("/v1/skus", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["items"]]

    assert await found("龙井") == [tea["id"]]
    assert await found("longjing") == [tea["id"]]  # code substring, case-insensitive
    assert await found("宜兴") == [pot["id"]]
    assert await found("GLASS") == [cup["id"]]
    assert await found("POT-") == [pot["id"]]
    assert await found("%") == []
    assert await found("_") == []
    assert await found("nothing-like-this") == []


async def test_filter_by_status(api: Api) -> None:
    store = await api.store()
    active = await api.sku(store["id"])
    gone = await api.sku(store["id"])
    r = await api.client.patch(f"/v1/skus/{gone['id']}", json={"status": "delisted"}, headers=ADMIN)
    assert r.status_code == 200, r.text

    async def found(status: str) -> list[str]:
        r = await api.client.get(
            "/v1/skus", params={"store_id": store["id"], "status": status}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["items"]]

    assert await found("delisted") == [gone["id"]]
    assert await found("active") == [active["id"]]
    r = await api.client.get("/v1/skus", params={"status": "gone"}, headers=ADMIN)
    assert_problem(r, 422, "validation_error")


async def test_filter_by_store(api: Api) -> None:
    a = await api.store()
    b = await api.store()
    in_a = [await api.sku(a["id"]), await api.sku(a["id"])]
    in_b = await api.sku(b["id"])
    r = await api.client.get("/v1/skus", params={"store_id": a["id"]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["items"]] == [s["id"] for s in in_a]
    r = await api.client.get("/v1/skus", params={"store_id": b["id"]}, headers=ADMIN)
    assert [s["id"] for s in r.json()["items"]] == [in_b["id"]]
    r = await api.client.get("/v1/skus", params={"store_id": "abc"}, headers=ADMIN)
    assert_problem(r, 404, "store_not_found")


# ---------------------------------------------------------------------------------------------
# Patch


async def test_patch_price_bumps_version_and_if_match(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    url = f"/v1/skus/{sku['id']}"

    r = await api.client.patch(url, json={"price": "119.9"}, headers={**ADMIN, "If-Match": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["price"] == "119.90"
    assert r.json()["version"] == 2

    r = await api.client.patch(url, json={"price": "99"}, headers={**ADMIN, "If-Match": "1"})
    assert_problem(r, 412, "version_mismatch")
    r = await api.client.get(url, headers=ADMIN)
    assert r.json()["price"] == "119.90"
    assert r.json()["version"] == 2

    r = await api.client.patch(url, json={"price": "99"}, headers={**ADMIN, "If-Match": '"2"'})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3

    # Without If-Match the change applies to whatever is current.
    r = await api.client.patch(url, json={"title": "新品 龙井"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 4
    assert r.json()["title"] == "新品 龙井"
    assert r.json()["price"] == "99.00"


@pytest.mark.parametrize("if_match", ["abc", "", "1.5", "-1"])
async def test_patch_malformed_if_match_is_422(api: Api, if_match: str) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    r = await api.client.patch(
        f"/v1/skus/{sku['id']}", json={"title": "x"}, headers={**ADMIN, "If-Match": if_match}
    )
    assert_validation_problem(assert_problem(r, 422))


async def test_patch_status_delisted_and_back(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    url = f"/v1/skus/{sku['id']}"
    r = await api.client.patch(url, json={"status": "delisted"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "delisted"
    assert r.json()["delisted_by"] == "manual"
    r = await api.client.get(url, headers=ADMIN)
    assert r.json()["delisted_by"] == "manual"

    r = await api.client.patch(url, json={"status": "active"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert r.json()["delisted_by"] is None


async def test_patch_duplicate_sku_code(api: Api) -> None:
    store = await api.store()
    taken = await api.sku(store["id"])
    sku = await api.sku(store["id"])
    url = f"/v1/skus/{sku['id']}"
    r = await api.client.patch(url, json={"sku_code": taken["sku_code"]}, headers=ADMIN)
    assert_problem(r, 409, "duplicate_sku")
    # Its own code, or a code used only in another store, is fine.
    r = await api.client.patch(url, json={"sku_code": sku["sku_code"]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    other = await api.store()
    elsewhere = await api.sku(other["id"])
    r = await api.client.patch(url, json={"sku_code": elsewhere["sku_code"]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["sku_code"] == elsewhere["sku_code"]


@pytest.mark.parametrize(
    "body",
    [
        {"title": None},
        {"sku_code": None},
        {"price": None},
        {"status": None},
        {"title": ""},
        {"price": "1.234"},
        {"price": 1.5},
        {"status": "archived"},
        {"store_id": "1"},
    ],
)
async def test_patch_rejects_bad_fields(api: Api, body: dict[str, Any]) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    r = await api.client.patch(f"/v1/skus/{sku['id']}", json=body, headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422))
    r = await api.client.get(f"/v1/skus/{sku['id']}", headers=ADMIN)
    assert r.json()["version"] == 1


async def test_patch_price_under_floor_is_422(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"], price="50", floor_price="40")
    url = f"/v1/skus/{sku['id']}"
    r = await api.client.patch(url, json={"price": "39.99"}, headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422, "price_below_floor"))
    r = await api.client.patch(url, json={"floor_price": "50.01"}, headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422, "price_below_floor"))
    r = await api.client.patch(url, json={"price": "30", "floor_price": "30"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["price"] == "30.00"


async def test_patch_unknown_sku_is_404(api: Api) -> None:
    r = await api.client.patch("/v1/skus/999999999", json={"title": "x"}, headers=ADMIN)
    assert_problem(r, 404, "sku_not_found")


# ---------------------------------------------------------------------------------------------
# Pagination


async def test_cursor_pagination(api: Api) -> None:
    store = await api.store()
    created = [(await api.sku(store["id"]))["id"] for _ in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"store_id": store["id"], "limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        r = await api.client.get("/v1/skus", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 3
        seen.extend(s["id"] for s in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"
    assert pages == 3
    assert seen == sorted(created, key=int)
    assert len(set(seen)) == 7


async def test_cursor_stable_under_inserts(api: Api) -> None:
    store = await api.store()
    first = [(await api.sku(store["id"]))["id"] for _ in range(4)]
    params = {"store_id": store["id"], "limit": 2}
    r = await api.client.get("/v1/skus", params=params, headers=ADMIN)
    page1 = r.json()
    late = (await api.sku(store["id"]))["id"]
    r = await api.client.get(
        "/v1/skus",
        params={"store_id": store["id"], "limit": 10, "cursor": page1["next_cursor"]},
        headers=ADMIN,
    )
    rest = [s["id"] for s in r.json()["items"]]
    assert [s["id"] for s in page1["items"]] + rest == [*first, late]


@pytest.mark.parametrize("limit", ["0", "501", "-1", "x"])
async def test_bad_limit_is_422(api: Api, limit: str) -> None:
    r = await api.client.get("/v1/skus", params={"limit": limit}, headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422, "validation_error"))


async def test_limit_500_is_fine(api: Api) -> None:
    r = await api.client.get("/v1/skus", params={"limit": 500}, headers=ADMIN)
    assert r.status_code == 200, r.text


def b64(raw: bytes) -> str:
    """A cursor-shaped token (URL-safe base64 without padding) around ``raw``."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("!!!", id="not-base64"),
        pytest.param(b64(b"[]"), id="empty-list"),
        pytest.param(b64(b'{"a": 1}'), id="object"),
        pytest.param(b64(b'["stores", 1]'), id="other-list"),
        pytest.param(b64(b'["skus", 1, 2]'), id="wrong-arity"),
        pytest.param(b64(b'["skus", true]'), id="bool"),
        pytest.param(b64(b'["skus", 1.5]'), id="float"),
        pytest.param(b64(b'["skus", 100000000000000000000]'), id="beyond-uint64"),
    ],
)
async def test_bad_cursor_is_422(api: Api, cursor: str) -> None:
    r = await api.client.get("/v1/skus", params={"cursor": cursor}, headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422, "invalid_cursor"))


# ---------------------------------------------------------------------------------------------
# Bad input that must never reach PostgreSQL as a 500.


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param(b64(b'["skus", "abc"]'), id="string-id"),
        pytest.param(b64(b'["skus", "5"]'), id="numeric-string-id"),
        pytest.param(b64(b'["skus", 9223372036854775808]'), id="beyond-bigint"),
    ],
)
async def test_forged_cursor_value_is_422(api: Api, cursor: str) -> None:
    r = await api.client.get("/v1/skus", params={"cursor": cursor}, headers=ADMIN)
    assert_problem(r, 422, "invalid_cursor")


async def test_store_id_beyond_bigint_is_not_500(api: Api) -> None:
    body = sku_body("1")
    body["store_id"] = 2**63
    r = await api.client.post("/v1/skus", json=body, headers=ADMIN)
    assert r.status_code in (404, 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_nul_in_title_on_create_is_422(api: Api) -> None:
    store = await api.store()
    r = await api.client.post(
        "/v1/skus", json=sku_body(store["id"], title="龙井\u0000"), headers=ADMIN
    )
    assert_validation_problem(assert_problem(r, 422))


async def test_nul_in_title_on_patch_is_422(api: Api) -> None:
    store = await api.store()
    sku = await api.sku(store["id"])
    r = await api.client.patch(f"/v1/skus/{sku['id']}", json={"title": "x\u0000"}, headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422))


async def test_nul_in_q_is_422(api: Api) -> None:
    r = await api.client.get("/v1/skus", params={"q": "a\x00b"}, headers=ADMIN)
    assert_validation_problem(assert_problem(r, 422))
