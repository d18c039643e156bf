"""Long reads sent while they are read, without a transaction left open for the download.

A plain server-side cursor lives in a transaction: a slow download would hold a snapshot
(and so the event feed's visibility horizon) and sit "idle in transaction" between fetches.
A ``WITH HOLD`` cursor is materialised by PostgreSQL when its transaction commits (spilling
to a temporary file, not the service's memory); fetching from it afterwards needs no
transaction, so none stays open while the client reads.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

logger = logging.getLogger("storeops.streaming")

FETCH_ROWS = 500


async def held_rows(
    engine: AsyncEngine, query: sa.TextClause, params: dict[str, Any], *, batch: int = FETCH_ROWS
) -> AsyncGenerator[Sequence[sa.Row[Any]]]:
    """The rows of ``query`` in batches of ``batch``, through a ``WITH HOLD`` cursor."""
    name = f"held_{uuid.uuid4().hex}"
    declared = False
    async with engine.connect() as conn:
        try:
            await conn.execute(
                sa.text(f"DECLARE {name} NO SCROLL CURSOR WITH HOLD FOR {query.text}"), params
            )
            await conn.commit()
            declared = True
            while True:
                rows = (await conn.execute(sa.text(f"FETCH FORWARD {batch} FROM {name}"))).all()
                await conn.commit()
                if not rows:
                    break
                yield rows
        finally:
            if declared:
                await _close(conn, name)


async def _close(conn: AsyncConnection, name: str) -> None:
    """Close the cursor (a download may stop midway); a connection that cannot is dropped."""
    try:
        await conn.rollback()
        await conn.execute(sa.text(f"CLOSE {name}"))
        await conn.commit()
    except BaseException:
        # A held cursor outlives transactions: never hand the connection back with it open.
        logger.warning("stream.cursor_not_closed connection=dropped")
        await conn.invalidate()
        raise


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its body iterator however the sending ends.

    When the client goes away, Starlette stops iterating but leaves the async generator to
    the garbage collector; closing it here releases its cursor and connection at once.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()
