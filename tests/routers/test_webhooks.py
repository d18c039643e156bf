"""``/v1/webhooks``: create, read, list, delete, bad input, scope, and the secret."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from tests.helpers import ADMIN, Api, assert_problem

# A closed local port: nothing these tests create can reach a real host.
URL = "http://127.0.0.1:9/hooks"
SECRET = "whsec_Zq9-distinctive-secret-77"


def _body(store_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"url": URL, "events": ["order.created"], "secret": SECRET}
    if store_id is not None:
        body["store_ids"] = [store_id]
    return {**body, **fields}


async def _count(app: Any) -> int:
    async with app.state.sessionmaker() as session:
        return int((await session.execute(sa.text("SELECT count(*) FROM webhooks"))).scalar_one())


async def test_create_read_list_delete(api: Api) -> None:
    store = await api.store()
    r = await api.client.post(
        "/v1/webhooks",
        json=_body(store["id"], events=["order.shipped", "order.created", "order.shipped"]),
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    assert "secret" not in hook
    assert SECRET not in r.text
    assert hook["events"] == ["order.created", "order.shipped"]
    assert hook["store_ids"] == [store["id"]]
    assert hook["status"] == "active"
    assert hook["last_delivered_event_id"] is None
    got = await api.client.get(f"/v1/webhooks/{hook['id']}", headers=ADMIN)
    assert got.status_code == 200
    assert got.json() == hook
    assert SECRET not in got.text
    listed = await api.client.get("/v1/webhooks", params={"store_id": store["id"]}, headers=ADMIN)
    assert listed.status_code == 200
    assert [h["id"] for h in listed.json()["items"]] == [hook["id"]]
    assert SECRET not in listed.text
    deliveries = await api.client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=ADMIN)
    assert deliveries.status_code == 200
    assert deliveries.json() == {"items": [], "next_cursor": None}
    gone = await api.client.delete(f"/v1/webhooks/{hook['id']}", headers=ADMIN)
    assert gone.status_code == 204
    assert_problem(
        await api.client.get(f"/v1/webhooks/{hook['id']}", headers=ADMIN), 404, "webhook_not_found"
    )
    assert_problem(
        await api.client.delete(f"/v1/webhooks/{hook['id']}", headers=ADMIN),
        404,
        "webhook_not_found",
    )


async def test_list_pages_with_a_cursor(api: Api) -> None:
    store = await api.store()
    ids = []
    for _ in range(3):
        r = await api.client.post("/v1/webhooks", json=_body(store["id"]), headers=ADMIN)
        ids.append(r.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"store_id": store["id"], "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/v1/webhooks", params=params, headers=ADMIN)).json()
        seen += [h["id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert_problem(
        await api.client.get("/v1/webhooks", params={"cursor": "junk"}, headers=ADMIN),
        422,
        "invalid_cursor",
    )


async def test_replay_never_returns_the_secret(api: Api, app: Any) -> None:
    store = await api.store()
    headers = {**ADMIN, "Idempotency-Key": f"wh-{store['id']}"}
    first = await api.client.post("/v1/webhooks", json=_body(store["id"]), headers=headers)
    again = await api.client.post("/v1/webhooks", json=_body(store["id"]), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert SECRET not in first.text
    assert SECRET not in again.text
    async with app.state.sessionmaker() as session:
        stored = (
            await session.execute(
                sa.text(
                    "SELECT count(*) FROM idempotency_keys"
                    " WHERE position(CAST(:s AS bytea) IN response_body) > 0"
                ),
                {"s": SECRET.encode()},
            )
        ).scalar_one()
    assert stored == 0


async def test_bad_input_is_a_clear_problem_and_creates_nothing(api: Api, app: Any) -> None:
    store = await api.store()
    before = await _count(app)
    cases = [
        (_body(store["id"], events=["order.created", "order.exploded"]), "unknown_event_type"),
        (_body(store["id"], events=[]), "validation_error"),
        (_body(store_id="999999999"), "unknown_store"),
        (_body(store["id"], url="ftp://127.0.0.1/x"), "invalid_webhook_url"),
        (_body(store["id"], url="file:///etc/passwd"), "invalid_webhook_url"),
        (_body(store["id"], url="http://user:pass@127.0.0.1/x"), "invalid_webhook_url"),
        (_body(store["id"], url="http://127.0.0.1:0/x"), "invalid_webhook_url"),
        (_body(store["id"], url="http://exa mple.com/"), "invalid_webhook_url"),
        (_body(store["id"], url="127.0.0.1/x"), "invalid_webhook_url"),
        (_body(store["id"], url="http:///x"), "invalid_webhook_url"),
        (_body(store["id"], secret="short"), "validation_error"),
        (_body(store["id"], secret="a\x00" * 10), "validation_error"),
        ({**_body(store["id"]), "store_ids": []}, "invalid_store_ids"),
    ]
    for body, code in cases:
        r = await api.client.post("/v1/webhooks", json=body, headers=ADMIN)
        problem = assert_problem(r, 422, code)
        assert problem["errors"], problem
    assert await _count(app) == before


async def test_admin_only_and_scoped_admins(api: Api) -> None:
    mine, other = await api.store(), await api.store()
    operator = await api.key("operator", [mine["id"]])
    assert_problem(
        await api.client.post("/v1/webhooks", json=_body(mine["id"]), headers=operator), 403
    )
    assert_problem(await api.client.get("/v1/webhooks", headers=operator), 403)
    scoped = await api.key("admin", [mine["id"]])
    assert_problem(
        await api.client.post("/v1/webhooks", json=_body(), headers=scoped), 403, "forbidden_scope"
    )
    assert_problem(
        await api.client.post("/v1/webhooks", json=_body(other["id"]), headers=scoped),
        422,
        "unknown_store",
    )
    everywhere = (await api.client.post("/v1/webhooks", json=_body(), headers=ADMIN)).json()
    assert_problem(
        await api.client.get(f"/v1/webhooks/{everywhere['id']}", headers=scoped),
        404,
        "webhook_not_found",
    )
    own = await api.client.post("/v1/webhooks", json=_body(mine["id"]), headers=scoped)
    assert own.status_code == 201
    listed = (await api.client.get("/v1/webhooks?limit=500", headers=scoped)).json()["items"]
    assert own.json()["id"] in [h["id"] for h in listed]
    assert everywhere["id"] not in [h["id"] for h in listed]
    await api.client.delete(f"/v1/webhooks/{everywhere['id']}", headers=ADMIN)


async def test_redeliver_needs_a_known_event(api: Api) -> None:
    store = await api.store()
    hook = (await api.client.post("/v1/webhooks", json=_body(store["id"]), headers=ADMIN)).json()
    assert_problem(
        await api.client.post(
            f"/v1/webhooks/{hook['id']}/redeliver",
            json={"from_event_id": "999999999999"},
            headers=ADMIN,
        ),
        422,
        "unknown_event",
    )
    assert_problem(
        await api.client.post(
            "/v1/webhooks/999999999/redeliver", json={"from_event_id": "1"}, headers=ADMIN
        ),
        404,
        "webhook_not_found",
    )


async def test_secret_is_never_logged(api: Api, app: Any) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    names = ("", "storeops", "sqlalchemy", "asyncpg")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).addHandler(handler)
        logging.getLogger(n).setLevel(logging.DEBUG)
    try:
        store = await api.store()
        r = await api.client.post("/v1/webhooks", json=_body(store["id"]), headers=ADMIN)
        assert r.status_code == 201
    finally:
        for n in names:
            logging.getLogger(n).removeHandler(handler)
            logging.getLogger(n).setLevel(levels[n])
    assert records
    for record in records:
        text = record.getMessage() + repr(record.args) + repr(getattr(record, "__dict__", {}))
        assert SECRET not in text, record.name
