"""``/v1/reports``: a store's daily KPI figures (DOMAIN.md §6), JSON or CSV (docs/reports.md)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.auth import Staff
from app.domain.report import service
from app.domain.report.schemas import CSV_FIELDS, DailyReport, DayFigures, RangeReport
from app.routers._common import ClockDep, IsoDate, Session, path_id, problems
from app.routers.replenishment import BOM, CSV_MEDIA_TYPE, neutralise_cell, wants_csv
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=TransactionalRoute)

StoreQuery = Annotated[str, Query(description="The store.", examples=["1"])]
_CSV_EXAMPLE = (
    BOM + ",".join(CSV_FIELDS) + "\r\n"
    "2026-11-11,1200,1130,0.9417,146900.00,130.00,1090,25000,0.0436,1010,983,0.9733,27,"
    "81.00,12,1480.50,0.0106,40,36,35,0.9722,50000.00,2.9380,3200.00\r\n"
    "total,1200,1130,0.9417,146900.00,130.00,1090,25000,0.0436,1010,983,0.9733,27,"
    "81.00,12,1480.50,0.0106,40,36,35,0.9722,50000.00,2.9380,3200.00\r\n"
)
_CSV_RESPONSE = {
    "description": "The report as JSON, or as CSV (UTF-8 with a byte-order mark, so "
    "spreadsheet programs show Chinese text) when `Accept: text/csv`: a header of the field "
    "names, one line per day and, for a range, a last line `total`. Text cells a spreadsheet "
    "would run as a formula are prefixed with `'`; null figures are empty cells.",
    "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}},
}
_RANGE_CODES = {422: "invalid_date_range"}


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "date":
        return neutralise_cell(str(value))
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _csv(rows: list[DayFigures], filename: str) -> Response:
    """The rows as a CSV download with a byte-order mark."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow([_cell(name, data[name]) for name in CSV_FIELDS])
    return Response(
        out.getvalue().encode("utf-8"),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/daily",
    response_model=DailyReport,
    responses={200: _CSV_RESPONSE, **problems(401, 403, 404, 422)},
)
async def get_daily(
    request: Request,
    principal: Staff,
    session: Session,
    clock: ClockDep,
    store_id: StoreQuery,
    day: Annotated[
        IsoDate | None,
        Query(
            alias="date",
            description="The store's local day, YYYY-MM-DD (default: its today).",
            examples=["2026-11-11"],
        ),
    ] = None,
) -> DailyReport | Response:
    """Every KPI of one local day of a store: orders, payment, GMV, AOV, buyers, visitors,
    conversion, dispatch, overdue, penalties, refunds, tickets and target progress.

    Each figure belongs to the day of its own event (placed, paid, shipped, deadline,
    refund, ticket time; docs/reports.md), so a past day only changes through events that
    belong to it.
    """
    report = await service.daily(session, principal, path_id(store_id, "store"), day, clock.now())
    if wants_csv(request.headers.get("accept")):
        figures = DayFigures.model_validate(report.model_dump(include=set(CSV_FIELDS)))
        return _csv([figures], f"report-{report.store_id}-{report.date}.csv")
    return report


@router.get(
    "/range",
    response_model=RangeReport,
    responses={
        200: _CSV_RESPONSE,
        **problems(401, 403, 404),
        422: {
            **problems(422, codes=_RANGE_CODES)[422],
            "description": "Unprocessable content (`invalid_date_range`: `from` after `to`; "
            "`date_range_too_long`: more than 366 days; `validation_error`: a date that is "
            "not YYYY-MM-DD or a missing parameter)",
        },
    },
)
async def get_range(
    request: Request,
    principal: Staff,
    session: Session,
    clock: ClockDep,
    store_id: StoreQuery,
    start: Annotated[
        IsoDate,
        Query(alias="from", description="First local day, YYYY-MM-DD.", examples=["2026-11-01"]),
    ],
    end: Annotated[
        IsoDate,
        Query(
            alias="to",
            description="Last local day, YYYY-MM-DD (at most 366 days in all).",
            examples=["2026-11-30"],
        ),
    ],
) -> RangeReport | Response:
    """Every KPI of each local day from `from` to `to` (both included, at most 366 days),
    plus the range's totals: counts and amounts summed, rates recomputed from the sums."""
    report = await service.date_range(
        session, principal, path_id(store_id, "store"), start, end, clock.now()
    )
    if wants_csv(request.headers.get("accept")):
        name = f"report-{report.store_id}-{report.from_}-{report.to}.csv"
        return _csv([*report.days, report.totals], name)
    return report
