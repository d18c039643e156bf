"""No secret kept in clear: API key replays, key comparison, request ids."""

from __future__ import annotations

import hmac
import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from app import auth
from app.domain.api_key.schemas import ApiKeyCreated
from tests.helpers import ADMIN, Api, assert_problem, unique


async def _tables(app: Any) -> list[str]:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        )
        return [r.tablename for r in rows]


async def _rows_holding(app: Any, needle: str) -> list[str]:
    """Tables with a row whose text form contains ``needle`` (bytea columns decoded too)."""
    found = []
    async with app.state.engine.connect() as conn:
        for table in await _tables(app):
            hit = await conn.execute(
                sa.text(f'SELECT 1 FROM "{table}" t WHERE t::text LIKE :pat LIMIT 1'),
                {"pat": f"%{needle}%"},
            )
            if hit.first() is not None:
                found.append(table)
        stored = await conn.execute(
            sa.text("SELECT response_body FROM idempotency_keys WHERE response_body IS NOT NULL")
        )
        if any(needle.encode() in bytes(r.response_body) for r in stored):
            found.append("idempotency_keys.response_body")
    return found


async def test_replayed_key_creation_has_no_secret(api: Api, app: Any) -> None:
    headers = {**ADMIN, "Idempotency-Key": uuid.uuid4().hex}
    body = {"name": unique("replay"), "role": "operator", "store_ids": None}
    first = await api.client.post("/v1/api-keys", json=body, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["secret"]
    assert secret.startswith("sk_")
    # The secret works, and it is nowhere in the database, idempotency store included.
    me = {"Authorization": f"Bearer {secret}"}
    assert (await api.client.get("/v1/stores", headers=me)).status_code == 200
    assert await _rows_holding(app, secret) == []
    assert await _rows_holding(app, body["name"])  # the scan does find what is stored
    again = await api.client.post("/v1/api-keys", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    replay = again.json()
    assert replay["secret"] is None
    assert secret not in again.text
    assert {k: v for k, v in replay.items() if k != "secret"} == {
        k: v for k, v in first.json().items() if k != "secret"
    }
    ApiKeyCreated.model_validate(replay)  # the documented schema holds for the replay


async def test_replayed_error_is_stored_as_sent(api: Api) -> None:
    # A redacted body only replaces a success: a stored business error replays unchanged.
    headers = {**ADMIN, "Idempotency-Key": uuid.uuid4().hex}
    body = {"name": unique("bad"), "role": "operator", "store_ids": ["999999999"]}
    first = await api.client.post("/v1/api-keys", json=body, headers=headers)
    assert_problem(first, 422, "unknown_store")
    again = await api.client.post("/v1/api-keys", json=body, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


def test_openapi_documents_null_secret_on_replay(app: Any) -> None:
    schema = app.openapi()
    created = schema["components"]["schemas"]["ApiKeyCreated"]["properties"]["secret"]
    assert {"type": "null"} in created["anyOf"]
    assert "replay" in created["description"]
    op = schema["paths"]["/v1/api-keys"]["post"]
    assert "secret: null" in op["description"]


async def test_key_acceptance_is_a_constant_time_comparison(
    api: Api, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await api.key("operator", None)
    calls: list[tuple[str, str]] = []

    def refuse(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return False

    monkeypatch.setattr(app.state.settings, "auth_cache_seconds", 0)
    auth.forget_cached_keys()
    monkeypatch.setattr(hmac, "compare_digest", refuse)
    r = await api.client.get("/v1/stores", headers=key)
    assert_problem(r, 401, "invalid_credentials")
    digest = auth.hash_secret(key["Authorization"].removeprefix("Bearer "))
    assert calls == [(digest, digest)]


@pytest.mark.parametrize(
    "incoming",
    [
        "has space",
        'quote"d',
        "semi;colon",
        "new\tline",
        "a" * 65,
        "<script>",
        "中文",
        "",
    ],
)
async def test_unsafe_request_id_is_replaced(api: Api, incoming: str) -> None:
    r = await api.client.get("/healthz", headers=[("X-Request-ID", incoming.encode("utf-8"))])
    got = r.headers["x-request-id"]
    assert got != incoming
    assert re.fullmatch("[0-9a-f]{32}", got)


@pytest.mark.parametrize("incoming", ["abc-123", "req.1:2_3", "A" * 64])
async def test_safe_request_id_is_kept(api: Api, incoming: str) -> None:
    r = await api.client.get("/healthz", headers={"X-Request-ID": incoming})
    assert r.headers["x-request-id"] == incoming
