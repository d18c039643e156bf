"""Engine, sessions and the request transaction.

One transaction per request. For state-changing requests it is opened and committed by
:class:`TransactionalRoute` *before* the response is sent, together with the stored
idempotent response, so a client never sees 2xx for work that was not committed.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings, to_async_url


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    """An asyncpg engine that encodes JSONB with orjson."""
    return create_async_engine(
        to_async_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=False,
        # Statement parameters (phones, addresses, key hashes) never reach logs or error texts.
        hide_parameters=True,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncSession:
    """The session of the current request, opened by :class:`app.routing.TransactionalRoute`."""
    session: AsyncSession = request.state.session
    return session


async def driver(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, inside the session's transaction.

    Hot paths (order intake, reservations) run their statements on it directly: the
    benchmark showed SQLAlchemy's per-statement overhead dominating those requests.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if getattr(adapted, "_transaction", None) is None:
        # SQLAlchemy issues BEGIN lazily on the first statement; issue it now.
        await adapted._start_transaction()
    con = raw.driver_connection
    if con is None or not con.is_in_transaction():
        raise RuntimeError("no transaction open on the session's connection")
    return con
