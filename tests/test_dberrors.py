"""The one translation reads the same failure alike from SQLAlchemy and from raw asyncpg."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app import dberrors
from app.config import to_async_url
from app.dberrors import Kind
from app.domain.errors import Conflict, RuleViolation, Unavailable
from app.domain.inventory import reservations
from tests.databases import asyncpg_dsn

# Each statement fails in its own way on the migrated schema.
CASES: list[tuple[str | tuple[str, str], Kind, type[Exception], str]] = [
    (
        "SELECT convert_from('\\x00'::bytea, 'UTF8')",
        Kind.INVALID_VALUE,
        RuleViolation,
        "invalid_value",
    ),
    ("SELECT 1000000000000::numeric(14,2)", Kind.INVALID_VALUE, RuleViolation, "invalid_value"),
    ("SELECT 2147483648::int4", Kind.INVALID_VALUE, RuleViolation, "invalid_value"),
    (
        "INSERT INTO stores (code, name, platform, version) "
        "VALUES ('d', 'a', 'pdd', 1), ('d', 'b', 'pdd', 1)",
        Kind.UNIQUE,
        Conflict,
        "duplicate_store_code",
    ),
    (
        "INSERT INTO stores (code, name, platform, version) VALUES ('x', 'a', 'nope', 1)",
        Kind.CHECK,
        RuleViolation,
        "invalid_value",
    ),
    (
        ("SET LOCAL statement_timeout = 1", "SELECT pg_sleep(1)"),
        Kind.TIMEOUT,
        Unavailable,
        "database_timeout",
    ),
    (
        "DO $$ BEGIN RAISE EXCEPTION 'gone' USING ERRCODE = 'SO001'; END $$",
        Kind.STOCK_GONE,
        Conflict,
        "insufficient_stock",
    ),
    (
        "DO $$ BEGIN RAISE EXCEPTION 'dl' USING ERRCODE = '40P01'; END $$",
        Kind.RETRY,
        Conflict,
        "conflict",
    ),
]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A SQLAlchemy engine on the test database."""
    eng = create_async_engine(to_async_url(database_url))
    yield eng
    await eng.dispose()


async def _raw_error(database_url: str, sql: str | tuple[str, str]) -> Exception:
    con = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with con.transaction():
            for statement in (sql,) if isinstance(sql, str) else sql:
                await con.execute(statement)
    except Exception as exc:
        return exc
    finally:
        await con.close()
    raise AssertionError(f"no error from {sql}")


async def _wrapped_error(engine: AsyncEngine, sql: str | tuple[str, str]) -> Exception:
    async with engine.connect() as conn:
        try:
            for statement in (sql,) if isinstance(sql, str) else sql:
                await conn.exec_driver_sql(statement)
        except Exception as exc:
            await conn.rollback()
            return exc
    raise AssertionError(f"no error from {sql}")


@pytest.mark.parametrize(("sql", "kind", "error_class", "code"), CASES)
async def test_both_driver_paths_translate_alike(
    database_url: str,
    engine: AsyncEngine,
    sql: str | tuple[str, str],
    kind: Kind,
    error_class: type[Exception],
    code: str,
) -> None:
    raw = await _raw_error(database_url, sql)
    wrapped = await _wrapped_error(engine, sql)
    assert isinstance(raw, asyncpg.PostgresError)
    assert isinstance(wrapped, sa_exc.DBAPIError)
    for exc in (raw, wrapped):
        failure = dberrors.classify(exc)
        assert failure is not None, exc
        assert failure.kind is kind
        typed = dberrors.translate(exc)
        assert isinstance(typed, error_class)
        assert typed.code == code
    assert dberrors.classify(raw) == dberrors.classify(wrapped)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        FileNotFoundError(2, "No such file or directory"),  # unix socket of a stopped server
        TimeoutError(),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        sa_exc.TimeoutError("QueuePool limit reached, connection timed out"),
    ],
)
def test_connection_failures_are_unavailable(exc: Exception) -> None:
    typed = dberrors.translate(exc)
    assert isinstance(typed, Unavailable)
    assert (typed.status, typed.code) == (503, "database_unavailable")


def test_unrelated_errors_are_not_database_errors() -> None:
    others: list[Any] = [ValueError("x"), KeyError("k"), asyncpg.InterfaceError("in use")]
    assert [dberrors.classify(e) for e in others] == [None, None, None]


async def test_every_mapped_constraint_exists(engine: AsyncEngine) -> None:
    """A renamed constraint would silently turn its clash back into a generic answer."""
    async with engine.connect() as conn:
        names = set(
            (
                await conn.exec_driver_sql(
                    "SELECT conname FROM pg_constraint UNION "
                    "SELECT relname FROM pg_class WHERE relkind = 'i'"
                )
            ).scalars()
        )
    assert set(dberrors._CONSTRAINT_ERRORS) <= names


def test_stock_gone_sqlstate_is_the_triggers() -> None:
    assert dberrors.STOCK_GONE_AT_COMMIT == reservations.STOCK_GONE_AT_COMMIT
