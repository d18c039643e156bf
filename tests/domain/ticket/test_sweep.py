"""The ticket sweep against real PostgreSQL: escalation at 12 h, SLA notices exactly once,
also with two sweeps at once (DOMAIN.md §4, §7)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from app.domain.ticket.sweep import sweep_tickets
from tests.helpers import ADMIN, Api, SettableClock, instant
from tests.routers.test_tickets import T0, create, ticket_body

M = timedelta(minutes=1)
H = timedelta(hours=1)
S = timedelta(seconds=1)


async def ticket_events(app: Any, store_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            sa.text(
                "SELECT type, data FROM events WHERE store_id = :s AND type LIKE 'ticket.sla%' "
                "ORDER BY id"
            ),
            {"s": int(store_id)},
        )
        return [(r.type, r.data) for r in rows]


async def get(api: Api, ticket_id: str) -> Any:
    return (await api.client.get(f"/v1/tickets/{ticket_id}", headers=ADMIN)).json()


async def test_escalation_at_exactly_12_hours(api: Api, app: Any, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    refund = await create(api, ticket_body(store["id"], type="refund"))
    inquiry = await create(api, ticket_body(store["id"], type="inquiry"))
    await sweep_tickets(app.state.sessionmaker, T0 + 12 * H - S)
    assert (await get(api, refund["id"]))["priority"] == "high"
    await sweep_tickets(app.state.sessionmaker, T0 + 12 * H)
    escalated = await get(api, refund["id"])
    assert escalated["priority"] == "urgent"
    assert instant(escalated["escalated_at"]) == T0 + 12 * H
    assert instant(escalated["first_response_due"]) == T0 + 15 * M
    assert instant(escalated["resolution_due"]) == T0 + 12 * H
    assert escalated["version"] == refund["version"] + 1
    assert (await get(api, inquiry["id"]))["priority"] == "normal"
    await sweep_tickets(app.state.sessionmaker, T0 + 13 * H)
    assert (await get(api, refund["id"]))["version"] == escalated["version"]
    audit = await api.client.get(
        "/v1/audit-entries",
        params={"store_id": store["id"], "resource_type": "ticket", "resource_id": refund["id"]},
        headers=ADMIN,
    )
    assert [e["action"] for e in audit.json()["items"]].count("ticket.escalated") == 1


async def test_sla_notices_fire_once_each(api: Api, app: Any, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    t = await create(api, ticket_body(store["id"], type="inquiry"))  # first response due +30 min
    maker = app.state.sessionmaker
    await sweep_tickets(maker, T0 + 10 * M)
    await sweep_tickets(maker, T0 + 20 * M)
    assert [k for k, _ in await ticket_events(app, store["id"])] == ["ticket.sla_due_soon"]
    await sweep_tickets(maker, T0 + 31 * M)
    await sweep_tickets(maker, T0 + 40 * M)
    got = await ticket_events(app, store["id"])
    assert [(k, d["due"]) for k, d in got] == [
        ("ticket.sla_due_soon", "first_response"),
        ("ticket.sla_breached", "first_response"),
    ]
    assert got[1][1]["ticket_id"] == t["id"]
    # Jumping from ok to breached sends only the breach.
    await sweep_tickets(maker, T0 + 25 * H)
    await sweep_tickets(maker, T0 + 26 * H)
    got = await ticket_events(app, store["id"])
    assert [(k, d["due"]) for k, d in got[2:]] == [("ticket.sla_breached", "resolution")]
    # A reopened ticket gets a new resolution clock, and its own notices.
    clock.set(T0 + 27 * H)
    await api.client.post(
        f"/v1/tickets/{t['id']}/resolve", json={"outcome": "answered"}, headers=ADMIN
    )
    await api.client.post(f"/v1/tickets/{t['id']}/reopen", headers=ADMIN)
    await sweep_tickets(maker, T0 + 50 * H)
    await sweep_tickets(maker, T0 + 52 * H)
    got = await ticket_events(app, store["id"])
    assert [(k, d["due"]) for k, d in got[3:]] == [
        ("ticket.sla_due_soon", "resolution"),
        ("ticket.sla_breached", "resolution"),
    ]


async def test_responded_tickets_get_no_first_response_notice(
    api: Api, app: Any, clock: SettableClock
) -> None:
    clock.set(T0)
    store = await api.store()
    t = await create(api, ticket_body(store["id"]))
    await api.client.post(
        f"/v1/tickets/{t['id']}/messages", json={"author": "agent", "body": "好"}, headers=ADMIN
    )
    await sweep_tickets(app.state.sessionmaker, T0 + 2 * H)
    assert await ticket_events(app, store["id"]) == []


async def test_two_sweeps_at_once_emit_each_event_once(
    api: Api, app: Any, clock: SettableClock
) -> None:
    clock.set(T0)
    store = await api.store()
    for n in range(60):
        await create(api, ticket_body(store["id"], type="refund" if n % 2 else "inquiry"))
    maker = app.state.sessionmaker
    now = T0 + 12 * H
    first, second = await asyncio.gather(sweep_tickets(maker, now), sweep_tickets(maker, now))
    third = await sweep_tickets(maker, now)
    got = Counter((k, d["due"], d["ticket_id"]) for k, d in await ticket_events(app, store["id"]))
    assert set(got.values()) == {1}
    kinds = Counter((k, due) for k, due, _ in got)
    # Every first response is late; the escalated refunds' resolution is due now (due soon).
    assert kinds == {
        ("ticket.sla_breached", "first_response"): 60,
        ("ticket.sla_due_soon", "resolution"): 30,
    }
    assert first["escalated"] + second["escalated"] >= 30
    assert third == {"escalated": 0, "sla_due_soon": 0, "sla_breached": 0}
    escalated = await api.client.get(
        "/v1/tickets",
        params={"store_id": store["id"], "priority": "urgent", "limit": 500},
        headers=ADMIN,
    )
    assert len(escalated.json()["items"]) == 30


async def test_admin_sweep_reports_tickets(api: Api, clock: SettableClock) -> None:
    clock.set(T0)
    store = await api.store()
    await create(api, ticket_body(store["id"], type="complaint"))
    clock.set(T0 + 13 * H)
    r = await api.client.post("/v1/admin/sweep", headers=ADMIN)
    assert r.status_code == 200
    report = r.json()["tickets"]
    assert set(report) == {"escalated", "sla_due_soon", "sla_breached"}
    assert report["escalated"] >= 1
    listed = await api.client.get(
        "/v1/tickets", params={"store_id": store["id"], "sla": "breached"}, headers=ADMIN
    )
    assert listed.json()["items"][0]["priority"] == "urgent"


async def test_escalation_keeps_an_answered_first_response_due(
    api: Api, app: Any, clock: SettableClock
) -> None:
    clock.set(T0)
    store = await api.store()
    t = await create(api, ticket_body(store["id"], type="return_refund"))
    clock.set(T0 + 20 * M)  # answered within the 30 minutes, not within an urgent 15
    await api.client.post(
        f"/v1/tickets/{t['id']}/messages", json={"author": "agent", "body": "好"}, headers=ADMIN
    )
    await sweep_tickets(app.state.sessionmaker, T0 + 12 * H)
    got = await get(api, t["id"])
    assert got["priority"] == "urgent"
    assert instant(got["first_response_due"]) == T0 + 30 * M
    assert instant(got["resolution_due"]) == T0 + 12 * H
    clock.set(T0 + 12 * H)  # resolved right at the (urgent) resolution due: on time
    r = await api.client.post(
        f"/v1/tickets/{t['id']}/resolve", json={"outcome": "rejected"}, headers=ADMIN
    )
    assert r.json()["sla_state"] == "ok"
