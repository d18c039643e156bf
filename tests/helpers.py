"""Factories and small helpers for tests."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ADMIN_SECRET = "sk_test_bootstrap_admin_0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_SECRET}"}
_seq = itertools.count(1)


class SettableClock:
    """Real time until ``set``; ``reset`` goes back to real time."""

    def __init__(self) -> None:
        self._at: datetime | None = None

    def now(self) -> datetime:
        """The set instant, or the real one."""
        return self._at or datetime.now(UTC)

    def set(self, at: datetime) -> None:
        """Stand still at ``at``."""
        self._at = at

    def reset(self) -> None:
        """Back to real time."""
        self._at = None


def unique(prefix: str) -> str:
    """A code no other test uses."""
    return f"{prefix}-{next(_seq)}-{uuid.uuid4().hex[:6]}"


class Api:
    """Create what a test needs through the HTTP API, asserting it worked."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def store(self, platform: str = "pdd", **fields: Any) -> dict[str, Any]:
        """A new store."""
        body = {"code": unique("st"), "name": "测试店铺", "platform": platform, **fields}
        r = await self.client.post("/v1/stores", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def key(self, role: str, store_ids: list[str] | None) -> dict[str, str]:
        """Headers of a new key with ``role`` and scope."""
        r = await self.client.post(
            "/v1/api-keys",
            json={"name": unique(role), "role": role, "store_ids": store_ids},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['secret']}"}

    async def sku(self, store_id: str, **fields: Any) -> dict[str, Any]:
        """A new SKU in ``store_id``."""
        body = {
            "store_id": store_id,
            "sku_code": unique("sku"),
            "title": "西湖龙井 500g",
            "price": "129.90",
            **fields,
        }
        r = await self.client.post("/v1/skus", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is problem+json with ``status`` (and ``code``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "code"} <= body.keys()
    if code is not None:
        assert body["code"] == code, body
    return body


VECTORS = Path(__file__).resolve().parent / "vectors"


def vector_cases(name: str) -> list[dict[str, Any]]:
    """The cases of ``tests/vectors/<name>.json``; a missing or empty file is an error, not a
    reason to skip (see tests/vectors/README.md)."""
    path = VECTORS / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"rule vectors {path} missing: copy them from shared/vectors/")
    cases: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["cases"]
    if not cases:
        raise ValueError(f"rule vectors {path} hold no case")
    return cases


def instant(text: str) -> datetime:
    """An ISO 8601 instant from a response, offset required (compare instants, not text)."""
    at = datetime.fromisoformat(text)
    assert at.tzinfo is not None, text
    return at
