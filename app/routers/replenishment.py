"""``/v1/replenishment``: the weekly replenishment request table (每周补货需求表), JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth import Principal, Role, require
from app.domain.inventory import reports
from app.domain.inventory.report_schemas import REPLENISHMENT_CSV_FIELDS, ReplenishmentTable
from app.domain.inventory.rules import DEFAULT_COVER_DAYS
from app.domain.store import service as stores
from app.routers._common import ClockDep, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/replenishment", tags=["inventory"], route_class=TransactionalRoute)

# Reports are not the warehouse app's (API.md, Auth).
ReportReader = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# Excel only reads a CSV as UTF-8 (Chinese titles) when it starts with a byte-order mark.
BOM = "\ufeff"

_CSV_EXAMPLE = (
    BOM + ",".join(REPLENISHMENT_CSV_FIELDS) + "\r\n"
    "12,1,TEA-500G,西湖龙井 500g,hot,10.0000,60,10,50,0,5.0,7,7,140,230\r\n"
)


def _media_q(accept: str, media_type: str) -> float:
    """The quality the Accept header gives to exactly ``media_type`` (0 if not listed)."""
    best = 0.0
    for part in accept.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        if name.lower() != media_type:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, q)
    return best


def wants_csv(accept: str | None) -> bool:
    """Whether the client asked for CSV (listed, and not ranked below JSON)."""
    if not accept:
        return False
    csv_q = _media_q(accept, "text/csv")
    return csv_q > 0 and csv_q >= _media_q(accept, "application/json")


def to_csv(table: ReplenishmentTable) -> str:
    """The table's items as CSV: a header row of field names, then one row per SKU."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow(REPLENISHMENT_CSV_FIELDS)
    for item in table.items:
        data: dict[str, Any] = item.model_dump(mode="json")
        writer.writerow("" if data[f] is None else data[f] for f in REPLENISHMENT_CSV_FIELDS)
    return out.getvalue()


@router.get(
    "",
    response_model=ReplenishmentTable,
    responses={
        200: {
            "description": "The table as JSON, or as CSV (UTF-8 with a byte-order mark) "
            "when `Accept: text/csv`.",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}},
        },
        **problems(401, 403, 404, 422),
    },
)
async def get_replenishment(
    request: Request,
    principal: ReportReader,
    session: Session,
    clock: ClockDep,
    store_id: Annotated[
        str | None, Query(description="Only this store (default: the key's scope).")
    ] = None,
) -> ReplenishmentTable | Response:
    """Active SKUs with sales rate, cover and suggested order quantity, most urgent first."""
    requested = path_id(store_id, "store") if store_id is not None else None
    store_ids = await stores.store_filter(session, principal, requested)
    now = clock.now()
    table = ReplenishmentTable(
        store_id=requested,
        generated_at=now,
        cover_days=DEFAULT_COVER_DAYS,
        items=await reports.replenishment(session, store_ids, now),
    )
    # Accept is read here rather than declared: OpenAPI ignores Accept header parameters.
    if wants_csv(request.headers.get("accept")):
        name = f"replenishment-{requested or 'all'}-{now:%Y-%m-%d}.csv"
        return Response(
            content=to_csv(table).encode("utf-8"),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return table
