"""Throwaway databases and ports for tests that run the service or its server themselves."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy.engine import make_url

from app import bootstrap
from app.config import to_async_url


def asyncpg_dsn(url: str) -> str:
    """A ``postgresql://`` DSN for asyncpg from any URL form the service accepts."""
    return to_async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def migrated_database(server_url: str, prefix: str) -> Iterator[str]:
    """A fresh database ``<prefix>_<hex>`` on ``server_url``, migrated to head (never
    ``create_all``); dropped afterwards, also when its users were killed."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    url = (
        make_url(to_async_url(server_url)).set(database=name).render_as_string(hide_password=False)
    )
    try:
        bootstrap.migrate(url)
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
