"""Run a sweep in an OS process of its own (tests that two processes sweep safely at once)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import asyncio, importlib, json, sys
from datetime import datetime
from app.config import Settings
from app.db import create_engine, create_sessionmaker

async def main() -> None:
    url, now, target = sys.argv[1], datetime.fromisoformat(sys.argv[2]), sys.argv[3]
    module, name = target.split(":")
    sweep = getattr(importlib.import_module(module), name)
    engine = create_engine(url, Settings(database_url=url))
    try:
        print(json.dumps(await sweep(create_sessionmaker(engine), now)))
    finally:
        await engine.dispose()

asyncio.run(main())
"""


async def sweep_in_process(database_url: str, now: str, sweep: str) -> dict[str, int]:
    """Run ``sweep`` (``"module:function"``, called with a sessionmaker and ``now``) in a new
    Python process against ``database_url``; what it returned."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        database_url,
        now,
        sweep,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    result: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
    return result
