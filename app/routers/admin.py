"""``/v1/admin``: operations for admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth import Admin
from app.routers._common import IdempotencyKeyHeader, Session, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=TransactionalRoute)


@router.post(
    "/sweep",
    responses={
        200: {
            "content": {"application/json": {"example": {"dispatch": {"at_risk": 3, "overdue": 1}}}}
        },
        **problems(401, 403),
    },
)
async def run_sweep(
    principal: Admin, session: Session, _: IdempotencyKeyHeader = None
) -> dict[str, Any]:
    """Run every rule sweep once, now, and report what each did (none are registered yet)."""
    del principal, session
    return {}
