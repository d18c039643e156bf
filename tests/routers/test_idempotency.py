"""Idempotency-Key: replay, reuse with another body, parallel duplicates, errors."""

from __future__ import annotations

import asyncio
import uuid

from tests.helpers import ADMIN, Api, assert_problem, unique


def _key() -> dict[str, str]:
    return {**ADMIN, "Idempotency-Key": uuid.uuid4().hex}


async def test_replay_returns_original_response(api: Api) -> None:
    headers = _key()
    body = {"code": unique("idem"), "name": "幂等店", "platform": "pdd"}
    first = await api.client.post("/v1/stores", json=body, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = await api.client.post("/v1/stores", json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    listed = await api.client.get("/v1/stores", params={"q": body["code"]}, headers=ADMIN)
    assert len(listed.json()["items"]) == 1


async def test_same_key_other_body_is_409(api: Api) -> None:
    headers = _key()
    r = await api.client.post(
        "/v1/stores", json={"code": unique("idem"), "name": "a", "platform": "pdd"}, headers=headers
    )
    assert r.status_code == 201
    r = await api.client.post(
        "/v1/stores", json={"code": unique("idem"), "name": "b", "platform": "pdd"}, headers=headers
    )
    assert_problem(r, 409, "idempotency_key_reused")


async def test_json_layout_does_not_matter(api: Api) -> None:
    headers = {**_key(), "Content-Type": "application/json"}
    code = unique("idem")
    one = f'{{"code": "{code}", "name": "a", "platform": "pdd"}}'
    two = f'{{ "platform":"pdd","name":"a",  "code":"{code}" }}'
    assert (await api.client.post("/v1/stores", content=one, headers=headers)).status_code == 201
    r = await api.client.post("/v1/stores", content=two, headers=headers)
    assert r.status_code == 201
    assert r.headers["idempotent-replayed"] == "true"


async def test_parallel_duplicates_create_exactly_one(api: Api) -> None:
    headers = _key()
    body = {"code": unique("par"), "name": "并发", "platform": "jd"}
    responses = await asyncio.gather(
        *(api.client.post("/v1/stores", json=body, headers=headers) for _ in range(12))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 11
    listed = await api.client.get("/v1/stores", params={"q": body["code"]}, headers=ADMIN)
    assert len(listed.json()["items"]) == 1


async def test_business_error_is_stored_and_replayed(api: Api) -> None:
    existing = await api.store()
    headers = _key()
    body = {"code": existing["code"], "name": "dup", "platform": "pdd"}
    first = await api.client.post("/v1/stores", json=body, headers=headers)
    assert_problem(first, 409, "duplicate_store_code")
    again = await api.client.post("/v1/stores", json=body, headers=headers)
    assert_problem(again, 409, "duplicate_store_code")
    assert again.headers["idempotent-replayed"] == "true"


async def test_validation_error_is_not_stored(api: Api) -> None:
    headers = _key()
    code = unique("val")
    r = await api.client.post(
        "/v1/stores", json={"code": code, "name": "", "platform": "pdd"}, headers=headers
    )
    assert_problem(r, 422)
    r = await api.client.post(
        "/v1/stores", json={"code": code, "name": "", "platform": "pdd"}, headers=headers
    )
    assert "idempotent-replayed" not in r.headers


async def test_keys_are_per_api_key(api: Api) -> None:
    store = await api.store()
    other_admin = await api.key("admin", None)
    key = uuid.uuid4().hex
    body = {"store_id": store["id"], "sku_code": unique("k"), "title": "t", "price": "1.00"}
    r1 = await api.client.post("/v1/skus", json=body, headers={**ADMIN, "Idempotency-Key": key})
    assert r1.status_code == 201
    body2 = {**body, "sku_code": unique("k")}
    r2 = await api.client.post(
        "/v1/skus", json=body2, headers={**other_admin, "Idempotency-Key": key}
    )
    assert r2.status_code == 201
    assert r2.json()["id"] != r1.json()["id"]


async def test_invalid_key_is_422(api: Api) -> None:
    r = await api.client.post(
        "/v1/stores",
        json={"code": unique("x"), "name": "a", "platform": "pdd"},
        headers={**ADMIN, "Idempotency-Key": "x" * 300},
    )
    assert_problem(r, 422, "invalid_idempotency_key")


async def test_unauthenticated_request_with_key_is_401(api: Api) -> None:
    r = await api.client.post(
        "/v1/stores",
        json={"code": unique("x"), "name": "a", "platform": "pdd"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert_problem(r, 401, "missing_credentials")
