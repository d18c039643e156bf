"""Two OS processes sweeping tickets at once still emit each event exactly once."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.domain.ticket.test_sweep import H, ticket_events
from tests.helpers import Api, SettableClock
from tests.routers.test_tickets import T0, create, ticket_body

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import asyncio, json, sys
from datetime import datetime
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.domain.ticket.sweep import sweep_tickets

async def main() -> None:
    url, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
    engine = create_engine(url, Settings(database_url=url))
    try:
        print(json.dumps(await sweep_tickets(create_sessionmaker(engine), now)))
    finally:
        await engine.dispose()

asyncio.run(main())
"""


async def _sweep_in_process(database_url: str, now: str) -> dict[str, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        database_url,
        now,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    result: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_two_processes_emit_each_event_once(
    api: Api, app: Any, database_url: str, clock: SettableClock
) -> None:
    clock.set(T0)
    store = await api.store()
    for n in range(40):
        await create(api, ticket_body(store["id"], type="complaint" if n % 2 else "inquiry"))
    now = (T0 + 12 * H).isoformat()
    await asyncio.gather(_sweep_in_process(database_url, now), _sweep_in_process(database_url, now))
    got = Counter((k, d["due"], d["ticket_id"]) for k, d in await ticket_events(app, store["id"]))
    assert set(got.values()) == {1}
    assert Counter((k, due) for k, due, _ in got) == {
        ("ticket.sla_breached", "first_response"): 40,
        ("ticket.sla_due_soon", "resolution"): 20,
    }
