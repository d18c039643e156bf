"""``/v1/admin``: operations for admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.auth import Admin
from app.routers._common import ClockDep, IdempotencyKeyHeader, problems
from app.routing import TransactionalRoute
from app.worker import run_sweeps

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=TransactionalRoute)


@router.post(
    "/sweep",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "inventory": {"skus_checked": 1200, "thresholds_changed": 3},
                        "tickets": {"escalated": 2, "sla_due_soon": 5, "sla_breached": 1},
                        "promotions": {"started": 2, "ended": 1},
                        "housekeeping": {
                            "idempotency_keys_purged": 0,
                            "board_groups_compacted": 12,
                            "report_deltas_compacted": 340,
                        },
                    }
                }
            }
        },
        **problems(401, 403),
    },
)
async def run_sweep(
    request: Request, principal: Admin, clock: ClockDep, _: IdempotencyKeyHeader = None
) -> dict[str, Any]:
    """Run every rule sweep once, now, and report what each did.

    Waits for a sweep already running in another process, then runs its own.
    """
    del principal
    state = request.app.state
    report = await run_sweeps(
        state.engine,
        state.sessionmaker,
        clock,
        state.settings.idempotency_ttl_hours,
        wait=True,
    )
    return report or {}
