"""Two OS processes sweeping tickets at once still emit each event exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tests.domain.ticket.test_sweep import H, ticket_events
from tests.helpers import Api, SettableClock
from tests.processes import sweep_in_process
from tests.routers.test_tickets import T0, create, ticket_body

SWEEP = "app.domain.ticket.sweep:sweep_tickets"


async def test_two_processes_emit_each_event_once(
    api: Api, app: Any, database_url: str, clock: SettableClock
) -> None:
    clock.set(T0)
    store = await api.store()
    for n in range(40):
        await create(api, ticket_body(store["id"], type="complaint" if n % 2 else "inquiry"))
    now = (T0 + 12 * H).isoformat()
    await asyncio.gather(
        sweep_in_process(database_url, now, SWEEP), sweep_in_process(database_url, now, SWEEP)
    )
    got = Counter((k, d["due"], d["ticket_id"]) for k, d in await ticket_events(app, store["id"]))
    assert set(got.values()) == {1}
    assert Counter((k, due) for k, due, _ in got) == {
        ("ticket.sla_breached", "first_response"): 40,
        ("ticket.sla_due_soon", "resolution"): 20,
    }
