"""``/v1/audit-entries``: who changed what, and when (stores, SKUs, keys, stocktakes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.auth import Staff
from app.domain.store import service as stores
from app.domain.store import zones
from app.domain.types import Id
from app.models import AuditEntry
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/audit-entries", tags=["admin"], route_class=TransactionalRoute)
_audit = AuditEntry.__table__  # type: ignore[attr-defined]


class AuditEntryPublic(BaseModel):
    """One administrative change."""

    id: Id
    api_key_id: Id | None = Field(description="The key that made the change.")
    store_id: Id | None
    action: str = Field(examples=["sku.updated"])
    resource_type: str = Field(examples=["sku"])
    resource_id: str = Field(examples=["12"])
    data: dict[str, Any]
    at: datetime


@router.get("", response_model=Page[AuditEntryPublic], responses=problems(401, 403, 404, 422))
async def list_audit_entries(
    principal: Staff,
    session: Session,
    store_id: Annotated[str | None, Query(description="Only this store.")] = None,
    resource_type: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
    resource_id: Annotated[str | None, Query(max_length=40, pattern=r"^[0-9]+$")] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[AuditEntryPublic]:
    """The audit trail, newest first (admins and operators; store-scoped keys see their stores)."""
    stmt = sa.select(_audit).order_by(_audit.c.id.desc())
    store_ids = await stores.store_filter(
        session, principal, path_id(store_id, "store") if store_id is not None else None
    )
    if store_ids is not None:
        stmt = stmt.where(_audit.c.store_id.in_(store_ids))
    if resource_type is not None:
        stmt = stmt.where(_audit.c.resource_type == resource_type)
    if resource_id is not None:
        stmt = stmt.where(_audit.c.resource_id == resource_id)
    if cursor:
        stmt = stmt.where(_audit.c.id < decode_cursor(cursor, "audit", 1)[0])
    rows = [dict(r._mapping) for r in await session.execute(stmt.limit(limit + 1))]
    page = page_of(rows, limit, lambda r: encode_cursor("audit", r["id"]))
    # A store's entries in its time; entries of no store (API keys) stay in UTC.
    items = [AuditEntryPublic.model_validate(r) for r in page.items]
    return Page(items=await zones.in_store_time(session, items), next_cursor=page.next_cursor)
