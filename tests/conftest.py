"""Test harness: a real PostgreSQL (embedded unless TEST_DATABASE_URL/DATABASE_URL is set),
a fresh database per run built by ``alembic upgrade head``, and an app on that database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.embedded_pg import start as start_embedded
from app.main import create_app
from tests.databases import migrated_database
from tests.helpers import ADMIN_SECRET, Api, SettableClock

EMBEDDED_DIR = Path(os.environ.get("STOREOPS_TEST_PGDIR", "/tmp/storeops-test-pg"))


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
    with migrated_database(server_url, "storeops_test") as url:
        yield url


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
        # Webhook tests run their own delivery workers against the receiver they start.
        webhook_worker_enabled=False,
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
