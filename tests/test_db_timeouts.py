"""Session timeouts on every connection: a statement past ``statement_timeout`` is a clean
503, and a transaction left idle is ended by the server instead of holding the feed back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import dberrors
from app.config import Settings
from app.db import create_engine
from app.dberrors import Kind
from app.domain.order import intake
from app.main import create_app
from tests.helpers import ADMIN, ADMIN_SECRET, SettableClock, assert_problem


def _settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=ADMIN_SECRET,
        access_log=False,
        log_level="CRITICAL",
        sweep_enabled=False,
        db_statement_timeout_seconds=0.2,
        db_idle_in_transaction_timeout_seconds=0.3,
        db_pool_size=2,
    )


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine with short session timeouts."""
    eng = create_engine(database_url, _settings(database_url))
    yield eng
    await eng.dispose()


async def test_every_connection_gets_the_timeouts(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        statement = (await conn.execute(sa.text("SHOW statement_timeout"))).scalar_one()
        idle = (
            await conn.execute(sa.text("SHOW idle_in_transaction_session_timeout"))
        ).scalar_one()
    assert (statement, idle) == ("200ms", "300ms")


async def test_idle_transaction_is_ended_by_the_server(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
        await asyncio.sleep(0.8)
        with pytest.raises(DBAPIError) as caught:
            await conn.execute(sa.text("SELECT 1"))
    failure = dberrors.classify(caught.value)
    assert failure is not None
    assert failure.kind is Kind.UNAVAILABLE


async def test_statement_timeout_is_a_clean_503(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow_take(session: Any, *args: Any, **kwargs: Any) -> Any:
        await session.execute(sa.text("SELECT pg_sleep(2)"))
        raise AssertionError("the statement should have been cancelled")

    monkeypatch.setattr(intake, "take", slow_take)
    app = create_app(_settings(database_url), clock=SettableClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("/v1/orders", json={}, headers=ADMIN)
            assert_problem(r, 422)  # validation runs before the handler
            body = {
                "store_id": "1",
                "external_id": "slow-1",
                "placed_at": "2026-11-11T10:00:00+08:00",
                "buyer": {
                    "name": "张三",
                    "phone": "13800138000",
                    "province": "浙江省",
                    "city": "杭州市",
                    "address": "西湖区",
                },
                "items": [{"sku_code": "X", "quantity": 1, "unit_price": "1"}],
            }
            r = await client.post("/v1/orders", json=body, headers=ADMIN)
            assert_problem(r, 503, "database_timeout")
            assert r.headers["retry-after"] == "1"
