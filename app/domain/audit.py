"""The audit trail: every administrative change with the key that made it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEntry

_audit = AuditEntry.__table__  # type: ignore[attr-defined]


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
