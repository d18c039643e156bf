"""Test harness: a real PostgreSQL (embedded unless TEST_DATABASE_URL/DATABASE_URL is set),
a fresh database per run built by ``alembic upgrade head``, and an app on that database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app import bootstrap
from app.config import Settings, to_async_url
from app.embedded_pg import start as start_embedded
from app.main import create_app
from tests.helpers import ADMIN_SECRET, Api, SettableClock

EMBEDDED_DIR = Path(os.environ.get("STOREOPS_TEST_PGDIR", "/tmp/storeops-test-pg"))


def _asyncpg_dsn(url: str) -> str:
    return to_async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """URL of the PostgreSQL server the suite runs on."""
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    embedded = start_embedded(EMBEDDED_DIR)
    try:
        yield embedded.uri
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this run, migrated to head; dropped afterwards."""
    name = f"storeops_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(server_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = (
        make_url(to_async_url(server_url)).set(database=name).render_as_string(hide_password=False)
    )
    try:
        bootstrap.migrate(url)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def clock() -> SettableClock:
    """The app's clock: real time unless a test sets it."""
    return SettableClock()


@pytest.fixture(scope="session")
async def app(database_url: str, clock: SettableClock) -> AsyncIterator[object]:
    """The application, started (engine open) for the whole run."""
    settings = Settings(
        database_url=database_url,
        admin_key=ADMIN_SECRET,
        access_log=False,
        log_level="WARNING",
        sweep_enabled=False,
    )
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://storeops.test") as c:
        yield c


@pytest.fixture
def api(client: httpx.AsyncClient, clock: SettableClock) -> Iterator[Api]:
    """Factories for stores, SKUs and keys; resets the clock after the test."""
    yield Api(client)
    clock.reset()
