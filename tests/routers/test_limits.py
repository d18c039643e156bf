"""Bounded requests: a body over ``STOREOPS_MAX_BODY_BYTES`` is ``413`` while it streams."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from app.config import Settings
from app.limits import BodyLimitMiddleware
from tests.helpers import ADMIN, assert_problem, unique

MIB = 1024 * 1024
LIMIT = Settings().max_body_bytes


def realistic_batch(store_id: str, orders: int = 1_000, lines: int = 3) -> dict[str, Any]:
    """A full ERP batch: every order with a complete buyer and a few lines."""
    return {
        "orders": [
            {
                "store_id": store_id,
                "external_id": f"PDD-{i:06d}-{unique('b')}",
                "placed_at": "2026-11-11T10:00:00+08:00",
                "paid_at": "2026-11-11T10:01:00+08:00",
                "buyer": {
                    "name": "欧阳建国",
                    "phone": "+86 138-0013-8000",
                    "province": "内蒙古自治区",
                    "city": "呼和浩特市",
                    "address": "赛罕区大学东街 235 号内蒙古大学南校区学生公寓 12 号楼 3 单元 601",
                },
                "items": [
                    {
                        "sku_code": f"SKU-{n:04d}-LONGJING-500G",
                        "quantity": 2,
                        "unit_price": "129.90",
                    }
                    for n in range(lines)
                ],
                "shipping_fee": "10.00",
                "discount": "5.00",
                "promised_ship_by": "2026-11-12T10:00:00+08:00",
                "allow_backorder": True,
            }
            for i in range(orders)
        ]
    }


async def chunks(total: int, size: int, sent: list[int]) -> AsyncIterator[bytes]:
    """``total`` bytes of a JSON-ish body in ``size`` pieces, counting what was taken."""
    while sent[0] < total:
        piece = b" " * min(size, total - sent[0])
        sent[0] += len(piece)
        yield piece


def test_default_limit_is_8_mib() -> None:
    assert LIMIT == 8 * MIB


async def test_declared_length_over_limit_is_413_before_auth(client: httpx.AsyncClient) -> None:
    body = b"[" + b" " * LIMIT + b"]"
    for headers in ({}, ADMIN):  # no credentials at all: still 413, not 401
        r = await client.post(
            "/v1/orders/bulk",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        problem = assert_problem(r, 413, "payload_too_large")
        assert str(LIMIT) in problem["detail"]
        assert r.headers["x-request-id"]


async def test_body_at_limit_is_read(client: httpx.AsyncClient) -> None:
    # Exactly the limit passes the bound and reaches validation (the JSON is malformed).
    r = await client.post(
        "/v1/orders/bulk",
        content=b"{" + b" " * (LIMIT - 1),
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert_problem(r, 422, "malformed_json")


async def test_chunked_body_over_limit_is_413_without_reading_it_all(
    client: httpx.AsyncClient,
) -> None:
    sent = [0]
    r = await client.post(
        "/v1/orders/bulk",
        content=chunks(64 * MIB, MIB, sent),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload_too_large")
    # Stopped within a chunk of the limit: the 64 MiB were never read.
    assert sent[0] <= LIMIT + MIB


async def test_chunked_body_under_limit_is_served(client: httpx.AsyncClient) -> None:
    body = orjson.dumps({"orders": [{"store_id": "1"}]})
    r = await client.post(
        "/v1/orders/bulk",
        content=(body[i : i + 3] async for i in _offsets(len(body), 3)),
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == 422


async def _offsets(total: int, step: int) -> AsyncIterator[int]:
    for i in range(0, total, step):
        yield i


async def test_realistic_full_batch_fits(api: Any) -> None:
    store = await api.store()
    batch = orjson.dumps(realistic_batch(store["id"]))
    # Measured: 0.67 MiB for 1,000 orders of three lines (50 lines: 3.9 MiB).
    assert len(batch) * 10 < LIMIT
    r = await api.client.post(
        "/v1/orders/bulk",
        content=batch,
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 1_000
    assert {res["error"]["code"] for res in results} == {"unknown_sku"}


def test_openapi_documents_413_for_every_body(app: Any) -> None:
    schema = app.openapi()
    with_body = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if "requestBody" in op
    ]
    assert len(with_body) > 10
    for path, method, op in with_body:
        assert "413" in op["responses"], (method, path)
        ok = op["responses"]["413"]["content"]["application/problem+json"]
        assert ok["example"]["code"] == "payload_too_large"
    reads = [op for item in schema["paths"].values() for m, op in item.items() if m == "get"]
    assert all("413" not in op["responses"] for op in reads)


def test_middleware_is_mounted(app: Any) -> None:
    assert any(m.cls is BodyLimitMiddleware for m in app.user_middleware)


# ---------------------------------------------------------------------------------------------
# Under uvicorn: the same bound over a real socket, declared and chunked.


@pytest.fixture(params=["httptools", "h11"])
async def served(app: Any, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The session's app served by uvicorn on a free local port (its lifespan already ran)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http=request.param, lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        # uvicorn.Server offers only a flag; bounded, so a failed start fails the test.
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_uvicorn_declared_length_over_limit(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        r = await http.post(
            "/v1/orders/bulk",
            content=b" " * (LIMIT + 1),
            headers={"Content-Type": "application/json"},
        )
    assert_problem(r, 413, "payload_too_large")


async def test_uvicorn_chunked_over_limit(served: str) -> None:
    sent = [0]
    async with httpx.AsyncClient(base_url=served) as http:
        r = await http.post(
            "/v1/orders/bulk",
            content=chunks(LIMIT + 4 * MIB, 256 * 1024, sent),
            headers={"Content-Type": "application/json"},
        )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload_too_large")


async def test_uvicorn_serves_under_limit(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        r = await http.post("/v1/orders/bulk", json={"orders": [{}]}, headers=ADMIN)
    assert r.status_code == 200, r.text
