"""Tickets over HTTP: intake, idempotency, thread, SLA read model, roles, bad input (§4)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import ADMIN, Api, SettableClock, assert_problem, instant, unique
from tests.routers.test_orders import order_body, stocked_sku

T0 = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
M = timedelta(minutes=1)
H = timedelta(hours=1)


def ticket_body(store_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "type": "inquiry",
        "subject": "发票问题",
        "body": "请问可以开发票吗？",
        **extra,
    }


async def create(api: Api, body: dict[str, Any], headers: dict[str, str] = ADMIN) -> Any:
    r = await api.client.post("/v1/tickets", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def paid_order(api: Api, store_id: str, price: str = "100.00", qty: int = 1) -> Any:
    sku = await stocked_sku(api, store_id, 10)
    body = order_body(store_id, [{"sku_id": sku["id"], "quantity": qty, "unit_price": price}])
    r = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_read_and_thread(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    t = await create(
        api,
        ticket_body(
            store["id"], type="refund", customer={"name": "张三", "contact": "13800138000"}
        ),
    )
    assert t["priority"] == "high"
    assert t["status"] == "open"
    assert instant(t["opened_at"]) == T0
    assert t["opened_at"].endswith("+08:00")
    assert instant(t["first_response_due"]) == T0 + 30 * M
    assert instant(t["resolution_due"]) == T0 + 24 * H
    assert t["sla_state"] == "due_soon"
    assert [(m["author"], m["body"]) for m in t["messages"]] == [("customer", "请问可以开发票吗？")]
    assert t["first_response_at"] is None
    tid = t["id"]
    clock.set(T0 + 5 * M)
    r = await api.client.post(
        f"/v1/tickets/{tid}/messages", json={"author": "note", "body": "查一下"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["first_response_at"] is None  # a note is no response
    clock.set(T0 + 10 * M)
    r = await api.client.post(
        f"/v1/tickets/{tid}/messages",
        json={"author": "agent", "agent": "小李", "body": "您好"},
        headers=ADMIN,
    )
    assert instant(r.json()["first_response_at"]) == T0 + 10 * M
    clock.set(T0 + 20 * M)
    r = await api.client.post(
        f"/v1/tickets/{tid}/messages",
        json={"author": "agent", "agent": "小王", "body": "补充"},
        headers=ADMIN,
    )
    assert instant(r.json()["first_response_at"]) == T0 + 10 * M  # the first one only
    got = await api.client.get(f"/v1/tickets/{tid}", headers=ADMIN)
    assert got.status_code == 200
    assert got.headers["etag"] == f'"{got.json()["version"]}"'
    body = got.json()
    assert [m["author"] for m in body["messages"]] == ["customer", "note", "agent", "agent"]
    assert body["messages"][2]["agent"] == "小李"
    assert body["sla_state"] == "ok"


async def test_store_service_hours_shape_first_response(api: Api, clock: SettableClock) -> None:
    clock.set(datetime(2026, 11, 11, 12, 0, tzinfo=UTC))  # 20:00 Shanghai
    store = await api.store(service_hours={"start": "09:00", "end": "18:00"})
    assert store["service_hours"] == {"start": "09:00", "end": "18:00"}
    t = await create(api, ticket_body(store["id"]))
    assert instant(t["first_response_due"]) == instant("2026-11-12T09:30:00+08:00")
    other = await api.store(timezone="Europe/Berlin")
    assert other["service_hours"] == {"start": "08:00", "end": "23:00"}
    clock.set(datetime(2026, 11, 12, 0, 0, tzinfo=UTC))
    t2 = await create(api, ticket_body(other["id"], opened_at="2026-11-11T22:50:00+01:00"))
    assert t2["first_response_due"] == "2026-11-12T08:20:00+01:00"


async def test_store_service_hours_validated(api: Api) -> None:
    for hours in (
        {"start": "18:00", "end": "09:00"},
        {"start": "25:00", "end": "26:00"},
        {"start": "08:00"},
        {"start": "8:00", "end": "18:00"},
        {"start": "24:00", "end": "24:00"},
    ):
        body = {"code": unique("st"), "name": "x", "platform": "pdd", "service_hours": hours}
        assert_problem(await api.client.post("/v1/stores", json=body, headers=ADMIN), 422)
    store = await api.store()
    r = await api.client.patch(
        f"/v1/stores/{store['id']}",
        json={"service_hours": {"start": "00:00", "end": "24:00"}},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert r.json()["service_hours"] == {"start": "00:00", "end": "24:00"}
    r = await api.client.patch(
        f"/v1/stores/{store['id']}",
        json={"service_hours": {"start": "10:00", "end": "10:00"}},
        headers=ADMIN,
    )
    assert_problem(r, 422)


async def test_intake_is_idempotent_on_external_id(api: Api) -> None:
    store = await api.store()
    body = ticket_body(store["id"], external_id=unique("AS"), opened_at="2026-11-11T12:00:00+08:00")
    first = await create(api, body)
    again = await api.client.post("/v1/tickets", json=body, headers=ADMIN)
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    changed = {**body, "subject": "别的"}
    assert_problem(
        await api.client.post("/v1/tickets", json=changed, headers=ADMIN), 409, "duplicate_ticket"
    )
    listed = await api.client.get("/v1/tickets", params={"store_id": store["id"]}, headers=ADMIN)
    assert [t["id"] for t in listed.json()["items"]] == [first["id"]]


async def test_parallel_creates_make_one_ticket(api: Api) -> None:
    store = await api.store()
    order = await paid_order(api, store["id"])
    body = ticket_body(
        store["id"],
        type="refund",
        order_id=order["id"],
        external_id=unique("AS"),
        opened_at="2026-11-11T12:00:00+08:00",
    )
    results = await asyncio.gather(
        *(api.client.post("/v1/tickets", json=body, headers=ADMIN) for _ in range(16))
    )
    assert sorted(r.status_code for r in results) == [200] * 15 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    listed = await api.client.get("/v1/tickets", params={"store_id": store["id"]}, headers=ADMIN)
    assert len(listed.json()["items"]) == 1
    events = await api.client.get(
        "/v1/events", params={"store_id": store["id"], "type": "ticket.created"}, headers=ADMIN
    )
    assert len(events.json()["items"]) == 1
    got = await api.client.get(f"/v1/orders/{order['id']}", headers=ADMIN)
    assert got.json()["open_tickets"] == 1


async def test_roles_and_scope(api: Api) -> None:
    store = await api.store()
    elsewhere = await api.store()
    t = await create(api, ticket_body(store["id"]))
    warehouse = await api.key("warehouse", [store["id"]])
    integration = await api.key("integration", [store["id"]])
    operator = await api.key("operator", [store["id"]])
    for r in (
        await api.client.get("/v1/tickets", headers=warehouse),
        await api.client.get(f"/v1/tickets/{t['id']}", headers=warehouse),
        await api.client.post("/v1/tickets", json=ticket_body(store["id"]), headers=warehouse),
        await api.client.post(
            f"/v1/tickets/{t['id']}/messages",
            json={"author": "agent", "body": "x"},
            headers=integration,
        ),
        await api.client.post(
            f"/v1/tickets/{t['id']}/resolve", json={"outcome": "answered"}, headers=integration
        ),
    ):
        assert_problem(r, 403, "forbidden_role")
    made = await create(api, ticket_body(store["id"]), headers=integration)
    assert (
        await api.client.get(f"/v1/tickets/{made['id']}", headers=integration)
    ).status_code == 200
    r = await api.client.post(
        f"/v1/tickets/{made['id']}/assign", json={"agent": "小李"}, headers=operator
    )
    assert r.status_code == 200
    assert r.json()["assignee"] == "小李"
    other = await create(api, ticket_body(elsewhere["id"]))
    assert_problem(
        await api.client.get(f"/v1/tickets/{other['id']}", headers=operator),
        404,
        "ticket_not_found",
    )
    assert_problem(
        await api.client.post(
            f"/v1/tickets/{other['id']}/resolve", json={"outcome": "answered"}, headers=operator
        ),
        404,
        "ticket_not_found",
    )
    assert_problem(
        await api.client.post("/v1/tickets", json=ticket_body(elsewhere["id"]), headers=operator),
        404,
    )
    listed = await api.client.get("/v1/tickets", headers=operator)
    assert {i["store_id"] for i in listed.json()["items"]} == {store["id"]}


async def test_bad_input_changes_nothing(api: Api) -> None:
    store = await api.store()
    elsewhere = await api.store()
    foreign = await paid_order(api, elsewhere["id"])
    t = await create(api, ticket_body(store["id"]))
    bad_creates = [
        (ticket_body(store["id"], order_id="999999999"), 404, "order_not_found"),
        (ticket_body(store["id"], order_id=foreign["id"]), 404, "order_not_found"),
        (ticket_body(store["id"], type="chat"), 422, None),
        (ticket_body(store["id"], body=""), 422, None),
        (ticket_body(store["id"], body="   "), 422, None),
        (ticket_body(store["id"], body="a\u0000b"), 422, None),
        (ticket_body(store["id"], opened_at="2099-01-01T00:00:00+08:00"), 422, "invalid_opened_at"),
        (ticket_body("999999999"), 404, "store_not_found"),
    ]
    for body, status, code in bad_creates:
        assert_problem(await api.client.post("/v1/tickets", json=body, headers=ADMIN), status, code)
    url = f"/v1/tickets/{t['id']}"
    bad_resolves = [
        {"outcome": "vanished"},
        {"outcome": "refunded", "refund_amount": "1.005"},
        {"outcome": "refunded", "refund_amount": "-1.00"},
        {"outcome": "refunded"},
        {"outcome": "answered", "refund_amount": "1.00"},
        {"outcome": "compensated"},
    ]
    for body in bad_resolves:
        assert_problem(await api.client.post(f"{url}/resolve", json=body, headers=ADMIN), 422)
    assert_problem(
        await api.client.post(
            f"{url}/messages", json={"author": "agent", "body": ""}, headers=ADMIN
        ),
        422,
    )
    assert_problem(
        await api.client.post(
            f"{url}/resolve", json={"outcome": "refunded", "refund_amount": "1.00"}, headers=ADMIN
        ),
        422,
        "refund_without_order",
    )
    assert_problem(
        await api.client.patch(
            url, json={"priority": "urgent"}, headers={**ADMIN, "If-Match": '"99"'}
        ),
        412,
    )
    after = (await api.client.get(url, headers=ADMIN)).json()
    assert after["version"] == t["version"]
    assert after["priority"] == "normal"
    assert after["status"] == "open"
    assert len(after["messages"]) == 1
    listed = await api.client.get("/v1/tickets", params={"store_id": store["id"]}, headers=ADMIN)
    assert len(listed.json()["items"]) == 1
    ok = await api.client.post(f"{url}/resolve", json={"outcome": "answered"}, headers=ADMIN)
    assert ok.status_code == 200
    assert ok.json()["status"] == "resolved"
    assert_problem(
        await api.client.post(f"{url}/resolve", json={"outcome": "answered"}, headers=ADMIN),
        409,
        "invalid_transition",
    )


async def test_patch_priority_recomputes_dues(api: Api, clock: SettableClock) -> None:
    clock.set(T0 + 11 * H)
    store = await api.store()
    t = await create(api, ticket_body(store["id"], opened_at="2026-11-11T22:50:00+08:00"))
    assert instant(t["first_response_due"]) == instant("2026-11-12T08:20:00+08:00")
    r = await api.client.patch(
        f"/v1/tickets/{t['id']}",
        json={"priority": "urgent", "subject": "加急"},
        headers={**ADMIN, "If-Match": f'"{t["version"]}"'},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["priority"] == "urgent"
    assert body["subject"] == "加急"
    assert instant(body["first_response_due"]) == instant("2026-11-12T08:05:00+08:00")
    assert instant(body["resolution_due"]) == instant("2026-11-12T10:50:00+08:00")
    assert body["version"] == t["version"] + 1
    audit = await api.client.get(
        "/v1/audit-entries", params={"store_id": store["id"]}, headers=ADMIN
    )
    actions = [e["action"] for e in audit.json()["items"]]
    assert "ticket.updated" in actions
    assert "ticket.created" in actions


async def test_reopen_starts_a_new_resolution_clock(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    t = await create(api, ticket_body(store["id"], type="exchange"))
    url = f"/v1/tickets/{t['id']}"
    assert_problem(await api.client.post(f"{url}/reopen", headers=ADMIN), 409, "invalid_transition")
    clock.set(T0 + 2 * H)
    r = await api.client.post(f"{url}/resolve", json={"outcome": "replaced"}, headers=ADMIN)
    assert r.json()["outcome"] == "replaced"
    assert instant(r.json()["resolved_at"]) == T0 + 2 * H
    clock.set(T0 + 30 * H)
    r = await api.client.post(f"{url}/reopen", headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "open"
    assert body["resolved_at"] is None
    assert body["outcome"] is None
    assert body["reopen_count"] == 1
    assert instant(body["resolution_due"]) == T0 + 54 * H
    assert instant(body["first_response_due"]) == instant(t["first_response_due"])
    clock.set(T0 + 31 * H)
    r = await api.client.post(f"{url}/resolve", json={"outcome": "answered"}, headers=ADMIN)
    assert r.status_code == 200
    events = await api.client.get(
        "/v1/events", params={"store_id": store["id"], "type": "ticket.resolved"}, headers=ADMIN
    )
    assert [e["data"]["outcome"] for e in events.json()["items"]] == ["replaced", "answered"]


async def test_list_filters_and_pages(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    order = await paid_order(api, store["id"])
    late = await create(api, ticket_body(store["id"], opened_at="2026-11-11T08:00:00+08:00"))
    soon = await create(api, ticket_body(store["id"], opened_at="2026-11-11T11:50:00+08:00"))
    calm = await create(api, ticket_body(store["id"], type="complaint", order_id=order["id"]))
    await api.client.post(
        f"/v1/tickets/{calm['id']}/messages", json={"author": "agent", "body": "好"}, headers=ADMIN
    )
    await api.client.post(f"/v1/tickets/{calm['id']}/assign", json={"agent": "小李"}, headers=ADMIN)
    done = await create(api, ticket_body(store["id"], opened_at="2026-11-11T08:00:00+08:00"))
    await api.client.post(
        f"/v1/tickets/{done['id']}/resolve", json={"outcome": "answered"}, headers=ADMIN
    )

    async def ids(**params: Any) -> list[str]:
        r = await api.client.get(
            "/v1/tickets", params={"store_id": store["id"], **params}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["items"]]

    assert await ids() == [done["id"], calm["id"], soon["id"], late["id"]]
    assert await ids(sla="breached") == [late["id"]]
    assert await ids(sla="due_soon") == [soon["id"]]
    assert await ids(sla="ok") == [calm["id"]]
    assert await ids(status="resolved") == [done["id"]]
    assert await ids(status="open", assignee="小李") == [calm["id"]]
    assert await ids(type="complaint") == [calm["id"]]
    assert await ids(priority="high") == [calm["id"]]
    assert await ids(order_id=order["id"]) == [calm["id"]]
    assert await ids(opened_from="2026-11-11T11:00:00+08:00") == [calm["id"], soon["id"]]
    assert await ids(opened_to="2026-11-11T11:00:00+08:00") == [done["id"], late["id"]]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"store_id": store["id"], "limit": 1}
        if cursor:
            params["cursor"] = cursor
        r = (await api.client.get("/v1/tickets", params=params, headers=ADMIN)).json()
        seen += [t["id"] for t in r["items"]]
        cursor = r["next_cursor"]
        if cursor is None:
            break
    assert seen == await ids()
    assert_problem(await api.client.get("/v1/tickets", params={"sla": "late"}, headers=ADMIN), 422)
    assert_problem(
        await api.client.get("/v1/tickets", params={"cursor": "nope"}, headers=ADMIN), 422
    )


async def test_replay_with_malformed_if_match_is_refused(api: Api) -> None:
    store = await api.store()
    t = await create(api, ticket_body(store["id"]))
    url = f"/v1/tickets/{t['id']}/assign"
    headers = {**ADMIN, "Idempotency-Key": unique("k")}
    first = await api.client.post(url, json={"agent": "小李"}, headers=headers)
    assert first.status_code == 200
    again = await api.client.post(url, json={"agent": "小李"}, headers=headers)
    assert again.headers.get("idempotent-replayed") == "true"
    bad = await api.client.post(url, json={"agent": "小李"}, headers={**headers, "If-Match": "{}"})
    assert_problem(bad, 422, "invalid_if_match")
