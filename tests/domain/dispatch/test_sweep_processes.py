"""Two OS processes sweeping the same database at once still emit each event exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tests.domain.dispatch.test_sweep import H, T, awaiting, events_of, insert_orders, new_store
from tests.helpers import Api
from tests.processes import sweep_in_process

SWEEP = "app.domain.dispatch.sweep:sweep_orders"


async def test_two_processes_emit_each_event_once(api: Api, app: Any, database_url: str) -> None:
    store_id, policy = await new_store(api)
    overdue = [awaiting(T - 60 * H, policy) for _ in range(700)]
    at_risk = [awaiting(T - 30 * H, policy) for _ in range(300)]
    await insert_orders(app, store_id, overdue + at_risk)
    now = T.isoformat()
    first, second = await asyncio.gather(
        sweep_in_process(database_url, now, SWEEP), sweep_in_process(database_url, now, SWEEP)
    )
    assert first["overdue"] + second["overdue"] == 700
    assert first["at_risk"] + second["at_risk"] == 300
    kinds = Counter(kind for kind, _ in await events_of(app, store_id))
    assert kinds == {"order.overdue": 700, "order.at_risk": 300}
