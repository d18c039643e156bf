"""No buyer phone, address, secret or SQL parameter in any log line: every endpoint is
called with distinctive values, plus forced 500s and database errors, with every logger at
DEBUG, and no record's message or exception text may contain one of them."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db import driver
from app.domain.store import service as store_service
from app.log_safety import WithheldError, withheld
from tests.helpers import ADMIN, ADMIN_SECRET, Api, unique
from tests.routers.test_limits import served  # noqa: F401 (a fixture)

PHONE = "13812348000"
ADDRESS = "幸福路 77 号 Zqx-Addr-9931"
NAME = "欧阳Qvw"
# Loggers whose records are captured at DEBUG (``storeops`` does not propagate to root).
LOGGERS = ("", "storeops", "sqlalchemy", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncpg")


class Records(logging.Handler):
    """Every record, formatted with its exception text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[str]:
        # httpx and httpcore are the test's client, not the service.
        return [
            self.format(r) + (r.exc_text or "")
            for r in self.records
            if not r.name.startswith(("httpx", "httpcore"))
        ]


@pytest.fixture
def logs() -> Iterator[Records]:
    handler = Records()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


def order(store_id: str, sku_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "external_id": unique("PDD"),
        "placed_at": "2026-11-11T10:00:00+08:00",
        "paid_at": "2026-11-11T10:01:00+08:00",
        "buyer": {
            "name": NAME,
            "phone": PHONE,
            "province": "浙江省",
            "city": "杭州市",
            "address": ADDRESS,
        },
        "items": [{"sku_id": sku_id, "quantity": 1, "unit_price": "9.90"}],
        **extra,
    }


def bodies(ids: dict[str, str]) -> dict[tuple[str, str], Any]:
    """A request body per operation, with the distinctive values wherever text goes."""
    first = order(ids["store"], ids["sku"])
    return {
        ("POST", "/v1/orders"): order(ids["store"], ids["sku"], allow_backorder=True),
        ("POST", "/v1/orders/bulk"): {
            "orders": [first, {**first, "buyer": {**first["buyer"], "city": "宁波市"}}, {}]
        },
        ("POST", "/v1/orders/ship-bulk"): {
            "items": [{"order_id": ids["order"], "carrier": "SF", "tracking_number": PHONE}]
        },
        ("POST", "/v1/orders/{order_id}/pay"): {"paid_at": "2026-11-11T10:05:00+08:00"},
        ("POST", "/v1/orders/{order_id}/ship"): {"carrier": "SF", "tracking_number": PHONE},
        ("POST", "/v1/orders/{order_id}/cancel"): {"reason": f"buyer {PHONE} {ADDRESS}"},
        ("POST", "/v1/orders/{order_id}/tracking-events"): {
            "event": "picked_up",
            "at": "2026-11-11T12:00:00+08:00",
        },
        ("POST", "/v1/orders/{order_id}/hold"): {"reason": f"call {PHONE} at {ADDRESS}"},
        ("POST", "/v1/stores"): {"code": unique("st"), "name": NAME, "platform": "pdd"},
        ("PATCH", "/v1/stores/{store_id}"): {"name": f"{NAME} {ADDRESS}"},
        ("PUT", "/v1/stores/{store_id}/targets/{month}"): {"sales_target": "1000.00"},
        ("PUT", "/v1/stores/{store_id}/traffic/{day}"): {"visitors": 5, "ad_spend": "1.00"},
        ("POST", "/v1/skus"): {
            "store_id": ids["store"],
            "sku_code": unique("sku"),
            "title": ADDRESS,
            "price": "1.00",
        },
        ("PATCH", "/v1/skus/{sku_id}"): {"title": f"{ADDRESS} {PHONE}"},
        ("POST", "/v1/stock-movements"): {
            "sku_id": ids["sku"],
            "kind": "receive",
            "quantity": 3,
            "reason": PHONE,
            "reference": ADDRESS,
        },
        ("POST", "/v1/stocktakes"): {
            "store_id": ids["store"],
            "lines": [{"sku_id": ids["sku"], "counted": 40}],
            "note": ADDRESS,
        },
        ("PUT", "/v1/stock-levels"): {
            "items": [{"store_id": ids["store"], "sku_code": PHONE, "on_hand": 1}]
        },
        ("POST", "/v1/api-keys"): {"name": f"{NAME}-key", "role": "operator", "store_ids": None},
        ("POST", "/v1/webhooks"): {
            "url": "http://127.0.0.1:9/hooks",
            "events": ["order.created"],
            "secret": f"whsec-{PHONE}-{PHONE}",
            "store_ids": [ids["store"]],
        },
        ("POST", "/v1/webhooks/{webhook_id}/redeliver"): {"from_event_id": "1"},
        ("POST", "/v1/promotions"): {
            "store_id": ids["store"],
            "name": f"{NAME} {ADDRESS}",
            "kind": "coupon",
            "code": unique("c")[:30],
            "rules": {"amount": "1.00", "min_spend": "0"},
            "starts_at": "2026-11-10T00:00:00+08:00",
            "ends_at": "2026-11-20T00:00:00+08:00",
        },
        ("POST", "/v1/promotions/quote"): {
            "store_id": ids["store"],
            "items": [{"sku_id": ids["sku"], "quantity": 1}],
            "buyer_id": PHONE,
            "coupon_code": PHONE,
        },
        ("POST", "/v1/tickets"): {
            "store_id": ids["store"],
            "type": "inquiry",
            "subject": f"地址 {ADDRESS}",
            "body": f"电话 {PHONE}",
            "customer": {"name": NAME, "contact": PHONE},
        },
        ("POST", "/v1/tickets/{ticket_id}/messages"): {"author": "agent", "body": PHONE},
        ("POST", "/v1/tickets/{ticket_id}/assign"): {"agent": NAME},
        ("PATCH", "/v1/tickets/{ticket_id}"): {"subject": f"{ADDRESS} {PHONE}"},
        ("POST", "/v1/tickets/{ticket_id}/resolve"): {"outcome": "answered", "note": ADDRESS},
        # Marketplace sync: the buyer in a snapshot and in a platform order (kept for review).
        ("PUT", "/v1/orders/by-external/{store_id}/{external_id}"): {
            "platform_status": "awaiting_shipment",
            **{k: v for k, v in first.items() if k not in ("store_id", "external_id")},
            "buyer_memo": f"{PHONE} {ADDRESS}",
        },
        ("POST", "/v1/marketplace/{platform}/orders"): {
            "orders": [
                {
                    "order_sn": unique("PII"),
                    "order_status": 1,
                    "created_time": "2026-11-11 10:00:00",
                    "pay_time": "2026-11-11 10:01:00",
                    "pay_amount": 1,
                    "receiver_name_mask": NAME,
                    "receiver_phone_mask": PHONE,
                    "receiver_address_mask": ADDRESS,
                    "buyer_memo": ADDRESS,
                    "item_list": [{"outer_id": PHONE, "goods_count": 1, "goods_price": 1}],
                }
            ]
        },
        ("DELETE", "/v1/marketplace/unmapped/{entry_id}"): {"reason": ADDRESS},
    }


def path_of(template: str, ids: dict[str, str]) -> str:
    values = {
        "order_id": ids["order"],
        "store_id": ids["store"],
        "sku_id": ids["sku"],
        "stocktake_id": ids["stocktake"],
        "ticket_id": ids["ticket"],
        "key_id": ids["key_id"],
        "webhook_id": ids.get("webhook", "1"),
        "promotion_id": ids["promotion"],
        "month": "2026-11",
        "day": "2026-11-11",
        "external_id": "PII-EXT-1",
        "platform": "pdd",
        "entry_id": "1",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


async def seed(api: Api) -> tuple[dict[str, str], str]:
    """A store, a stocked SKU, an order with the distinctive buyer, a stocktake and a key."""
    store = await api.store(code=unique(f"st-{PHONE}"))
    sku = await api.sku(store["id"], sku_code=unique("pii"))
    r = await api.client.post(
        "/v1/stock-movements",
        json={"sku_id": sku["id"], "kind": "receive", "quantity": 50},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    r = await api.client.post("/v1/orders", json=order(store["id"], sku["id"]), headers=ADMIN)
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    r = await api.client.post(
        "/v1/stocktakes",
        json={"store_id": store["id"], "lines": [{"sku_id": sku["id"], "counted": 50}]},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    stocktake = r.json()["id"]
    r = await api.client.post(
        "/v1/tickets",
        json={
            "store_id": store["id"],
            "order_id": order_id,
            "type": "refund",
            "subject": f"退款 {PHONE}",
            "body": f"请寄到 {ADDRESS}，电话 {PHONE}",
            "customer": {"name": NAME, "contact": PHONE},
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    ticket = r.json()["id"]
    r = await api.client.post(
        "/v1/api-keys",
        json={"name": unique("pii"), "role": "operator", "store_ids": [store["id"]]},
        headers={**ADMIN, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    made = await api.client.post(
        "/v1/promotions",
        json={
            "store_id": store["id"],
            "name": NAME,
            "kind": "free_shipping",
            "rules": {},
            "starts_at": "2026-11-10T00:00:00+08:00",
            "ends_at": "2026-11-20T00:00:00+08:00",
        },
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    promotion = made.json()["id"]
    ids = {
        "promotion": promotion,
        "store": store["id"],
        "store_code": store["code"],
        "sku": sku["id"],
        "order": order_id,
        "stocktake": stocktake,
        "ticket": ticket,
        "key_id": r.json()["id"],
    }
    return ids, r.json()["secret"]


async def call_every_operation(api: Api, app: Any, ids: dict[str, str], secret: str) -> int:
    """Every operation of the OpenAPI, as admin and as the operator key; how many calls."""
    schema = app.openapi()
    payloads = bodies(ids)
    operator = {"Authorization": f"Bearer {secret}"}
    known = {"q": PHONE, "store_id": ids["store"], "resource_type": "order"}
    calls = 0
    deletes = []
    for template, item in schema["paths"].items():
        for method, op in item.items():
            method = method.upper()
            params = {
                p["name"]: known.get(p["name"])
                for p in op.get("parameters", [])
                if p["in"] == "query"
            }
            query = {k: v for k, v in params.items() if v is not None}
            body = payloads.get((method, template), {} if "requestBody" in op else None)
            call = (method, path_of(template, ids), query, body)
            if method == "DELETE":
                deletes.append(call)
                continue
            for headers in (ADMIN, operator, {**ADMIN, "Idempotency-Key": uuid.uuid4().hex}):
                r = await api.client.request(
                    method, call[1], params=query, json=body, headers=headers
                )
                assert r.status_code < 500, (method, template, r.text)
                calls += 1
    for method, path, query, body in deletes:
        r = await api.client.request(method, path, params=query, json=body, headers=ADMIN)
        assert r.status_code < 500, (method, path, r.text)
        calls += 1
    return calls


async def forced_failures(
    api: Api, app: Any, ids: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """500s whose exceptions carry the values: plain, SQLAlchemy and raw asyncpg errors."""

    async def plain(*_: Any) -> Any:
        raise ValueError(f"buyer {PHONE} lives at {ADDRESS}")

    async def through_sqlalchemy(session: Any, *_: Any) -> Any:
        await session.execute(sa.text("SELECT CAST(:v AS regclass)"), {"v": f"t{PHONE}"})

    async def through_asyncpg(session: Any, *_: Any) -> Any:
        await (await driver(session)).fetchval("SELECT $1::regclass", ADDRESS)

    async def constraint_violation(session: Any, *_: Any) -> Any:
        # DETAIL: Failing row contains (…, st-13812348000-…, 欧阳Qvw, …).
        await session.execute(
            sa.text("INSERT INTO stores (code, name, platform) VALUES (:c, :n, 'pdd')"),
            {"c": ids["store_code"], "n": NAME},
        )

    for failing in (plain, through_sqlalchemy, through_asyncpg, constraint_violation):
        monkeypatch.setattr(store_service, "get_visible", failing)
        r = await api.client.get(f"/v1/stores/{ids['store']}", headers=ADMIN)
        assert r.status_code >= 400, failing.__name__
        for value in (PHONE, ADDRESS, NAME):
            assert value not in r.text
    monkeypatch.undo()


def leaks(texts: list[str], values: list[str]) -> list[tuple[str, str]]:
    return [(v, t[:300]) for t in texts for v in values if v in t]


async def test_no_personal_data_or_secret_in_any_log_line(
    api: Api, app: Any, logs: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, secret = await seed(api)
    calls = await call_every_operation(api, app, ids, secret)
    assert calls > 100
    await forced_failures(api, app, ids, monkeypatch)
    texts = logs.texts()
    # The run was logged: statements at DEBUG, and each forced 500 with its traceback.
    assert any(r.name.startswith("sqlalchemy.engine") for r in logs.records)
    failed = [r for r in logs.records if r.getMessage().startswith("request.failed")]
    assert len(failed) >= 3
    assert all(r.exc_info and r.exc_info[0] is WithheldError for r in failed)
    assert any("UndefinedTableError" in t and "message withheld" in t for t in texts)
    assert any('File "' in t and "through_asyncpg" in t for t in texts)  # frames kept
    values = [PHONE, "138****8000", ADDRESS, NAME, secret, ADMIN_SECRET, secret[3:20]]
    assert leaks(texts, values) == []


def test_withheld_keeps_types_frames_and_safe_fields() -> None:
    class FakePgError(Exception):
        sqlstate = "23505"
        constraint_name = "uq_stores_code"
        table_name = "stores"
        detail = f"Key (code)=({PHONE}) already exists."

    def fail() -> None:
        try:
            raise FakePgError(f"duplicate key\nDETAIL: Key (code)=({PHONE})")
        except FakePgError as exc:
            raise RuntimeError("wrapped") from exc

    try:
        fail()
    except RuntimeError as exc:
        stand_in = withheld(exc)
    text = logging.Formatter().formatException((WithheldError, stand_in, stand_in.__traceback__))
    assert PHONE not in text
    assert "sqlstate=23505" in text
    assert "constraint_name=uq_stores_code" in text
    assert "FakePgError" in text
    assert "RuntimeError" in text
    assert "in fail" in text
    assert "message withheld" in text
    kept = withheld(AttributeError("'NoneType' object has no attribute 'id'"))
    assert str(kept).endswith("'NoneType' object has no attribute 'id'")


def test_uvicorn_access_line_has_no_query(app: Any) -> None:
    logger = logging.getLogger("uvicorn.access")
    record = logger.makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/v1/orders?q={PHONE}", "1.1", 200),
        None,
    )
    assert PHONE not in record.getMessage()
    assert "/v1/orders?…" in record.getMessage()


async def test_uvicorn_logs_a_500_without_its_values(
    served: str,  # noqa: F811 (the fixture imported above)
    logs: Records,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Starlette re-raises a handled 500 to the server, which logs the exception again.
    async def plain(*_: Any) -> Any:
        raise ValueError(f"buyer {PHONE} lives at {ADDRESS}")

    monkeypatch.setattr(store_service, "get_visible", plain)
    async with httpx.AsyncClient(base_url=served) as http:
        r = await http.get("/v1/stores/1", headers=ADMIN)
    assert r.status_code == 500
    assert [r for r in logs.records if r.name.startswith("uvicorn") and r.exc_info]
    assert leaks(logs.texts(), [PHONE, ADDRESS]) == []


def test_exception_arguments_are_withheld(app: Any) -> None:
    record = logging.getLogger("storeops.test").makeRecord(
        "storeops.test",
        logging.WARNING,
        __file__,
        1,
        "db.error error=%s sqlstate=%s",
        (KeyError(PHONE), "23505"),
        None,
    )
    assert PHONE not in record.getMessage()
    assert "builtins.KeyError (message withheld)" in record.getMessage()
    assert record.getMessage().endswith("sqlstate=23505")
