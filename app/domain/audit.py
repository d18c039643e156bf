"""The audit trail: every administrative change, and every full view of a buyer's details
by an operator, with the key that made it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEntry

_audit = AuditEntry.__table__  # type: ignore[attr-defined]

WRITTEN = "storeops.written"
"""``session.info`` key: the session holds writes, so even a read's transaction commits."""


def mark_written(session: AsyncSession) -> None:
    """Mark ``session`` as holding writes, so even a read's transaction is committed."""
    session.info[WRITTEN] = True


async def record(
    session: AsyncSession,
    *,
    api_key_id: int | None,
    action: str,
    resource_type: str,
    resource_id: int | str,
    store_id: int | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit entry in the caller's transaction."""
    # A read that audits (an operator seeing a buyer in full) must commit it: the request
    # transaction of a read commits only when the session is marked so.
    mark_written(session)
    await session.execute(
        sa.insert(_audit).values(
            api_key_id=api_key_id,
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id),
            store_id=store_id,
            data=dict(data or {}),
        )
    )
