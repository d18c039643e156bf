"""Two OS processes sweeping the same database at once still emit each event exactly once."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.domain.dispatch.test_sweep import H, T, awaiting, events_of, insert_orders, new_store
from tests.helpers import Api

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import asyncio, json, sys
from datetime import datetime
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.domain.dispatch.sweep import sweep_orders

async def main() -> None:
    url, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
    engine = create_engine(url, Settings(database_url=url))
    try:
        print(json.dumps(await sweep_orders(create_sessionmaker(engine), now)))
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


async def test_two_processes_emit_each_event_once(api: Api, app: Any, database_url: str) -> None:
    store_id, policy = await new_store(api)
    overdue = [awaiting(T - 60 * H, policy) for _ in range(700)]
    at_risk = [awaiting(T - 30 * H, policy) for _ in range(300)]
    await insert_orders(app, store_id, overdue + at_risk)
    now = T.isoformat()
    first, second = await asyncio.gather(
        _sweep_in_process(database_url, now), _sweep_in_process(database_url, now)
    )
    assert first["overdue"] + second["overdue"] == 700
    assert first["at_risk"] + second["at_risk"] == 300
    kinds = Counter(kind for kind, _ in await events_of(app, store_id))
    assert kinds == {"order.overdue": 700, "order.at_risk": 300}
