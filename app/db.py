"""Engine, sessions and the request transaction.

One transaction per request. For state-changing requests it is opened and committed by
:class:`TransactionalRoute` *before* the response is sent, together with the stored
idempotent response, so a client never sees 2xx for work that was not committed.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings, to_async_url


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _milliseconds(seconds: float) -> str:
    return str(round(seconds * 1000))


def connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg connect arguments: a connect timeout and per-session timeouts.

    ``statement_timeout`` bounds every statement; ``idle_in_transaction_session_timeout``
    ends a session left idle inside a transaction, which would otherwise hold back the
    event feed's horizon (and every lock it holds) for as long as its client is stuck.
    """
    return {
        "timeout": settings.db_connect_timeout_seconds,
        "server_settings": {
            "statement_timeout": _milliseconds(settings.db_statement_timeout_seconds),
            "idle_in_transaction_session_timeout": _milliseconds(
                settings.db_idle_in_transaction_timeout_seconds
            ),
        },
    }


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    """An asyncpg engine that encodes JSONB with orjson; nothing waits on the database for
    longer than the connect and pool timeouts."""
    engine = create_async_engine(
        to_async_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=False,
        connect_args=connect_args(settings),
        # Statement parameters (phones, addresses, key hashes) never reach logs or error texts.
        hide_parameters=True,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


def _discard_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Never hand out a pooled connection the server has already closed.

    asyncpg notices a closed socket by itself (a server restart, an idle session ended), so
    this costs no round trip, unlike ``pool_pre_ping``; the pool then opens a fresh one.
    """
    con = getattr(dbapi_connection, "driver_connection", None)
    if con is not None and con.is_closed():
        raise DisconnectionError("connection closed by the server")


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


async def connection_of(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, without beginning a transaction on it.

    Under READ COMMITTED a read needs no transaction of its own, and a single statement
    outside one is a transaction by itself (committed, deferred triggers and all, when it
    ends): order intake's hot path needs no ``BEGIN`` and ``COMMIT`` round trips. Before
    any further statement that must share a transaction, call :func:`driver`.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection
