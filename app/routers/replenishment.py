"""``/v1/replenishment``: the weekly replenishment request table (每周补货需求表), JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import Principal, Role, require
from app.domain.inventory import reports
from app.domain.inventory.report_schemas import (
    REPLENISHMENT_CSV_FIELDS,
    ReplenishmentRow,
    ReplenishmentTable,
)
from app.domain.inventory.rules import DEFAULT_COVER_DAYS
from app.domain.store import service as stores
from app.domain.store import zones
from app.pagination import CursorParam, LimitParam, decode_cursor, encode_cursor, page_of
from app.routers._common import ClockDep, Session, path_id, problems
from app.routing import TransactionalRoute
from app.streaming import ClosingStreamingResponse, held_rows

router = APIRouter(prefix="/v1/replenishment", tags=["inventory"], route_class=TransactionalRoute)

# Reports are not the warehouse app's (API.md, Auth).
ReportReader = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]

CURSOR_KIND = "replenishment"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# Excel only reads a CSV as UTF-8 (Chinese titles) when it starts with a byte-order mark.
BOM = "\ufeff"

_CSV_EXAMPLE = (
    BOM + ",".join(REPLENISHMENT_CSV_FIELDS) + "\r\n"
    "12,1,TEA-500G,西湖龙井 500g,active,hot,10.0000,60,10,50,0,5.0,7,7,140,230\r\n"
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


# OWASP "CSV injection": a cell starting with one of these is a formula to a spreadsheet.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Only free-text columns are neutralised: numbers keep their sign and stay numbers.
TEXT_FIELDS = frozenset(
    name for name, field in ReplenishmentRow.model_fields.items() if field.annotation is str
)
# Rows buffered before a chunk of the CSV is sent.
CSV_CHUNK_ROWS = 200


def neutralise_cell(value: str) -> str:
    """A text cell a spreadsheet shows as text: formula-like values get a leading ``'``."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def csv_cells(row: ReplenishmentRow) -> list[str]:
    """One CSV line's cells; text cells neutralised, null as empty."""
    data: dict[str, Any] = row.model_dump(mode="json")
    cells = []
    for name in REPLENISHMENT_CSV_FIELDS:
        value = data[name]
        if value is None:
            cells.append("")
        elif name in TEXT_FIELDS:
            cells.append(neutralise_cell(value))
        else:
            cells.append(str(value))
    return cells


async def csv_chunks(rows: AsyncGenerator[ReplenishmentRow]) -> AsyncGenerator[bytes]:
    """The CSV export, a few hundred rows at a time: a header of field names, one row a SKU."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow(REPLENISHMENT_CSV_FIELDS)
    count = 0
    # Closed with this generator, so a download stopped midway releases its cursor at once.
    async with aclosing(rows):
        async for row in rows:
            writer.writerow(csv_cells(row))
            count += 1
            if count % CSV_CHUNK_ROWS == 0:
                yield out.getvalue().encode("utf-8")
                out.seek(0)
                out.truncate()
    yield out.getvalue().encode("utf-8")


async def _streamed_rows(
    engine: AsyncEngine, store_ids: list[int] | None, now: datetime
) -> AsyncGenerator[ReplenishmentRow]:
    # Runs while the response is sent, after the request's own session has closed.
    query, params = reports.replenishment_query(store_ids, now)
    async with aclosing(held_rows(engine, query, params)) as batches:
        async for batch in batches:
            for row in batch:
                yield reports.replenishment_row(row)


@router.get(
    "",
    response_model=ReplenishmentTable,
    responses={
        200: {
            "description": "A page of the table as JSON, or the whole table as CSV (UTF-8 "
            "with a byte-order mark, streamed) when `Accept: text/csv`. Text cells that a "
            "spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or "
            "CR) are prefixed with `'`; numbers are left as they are.",
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
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> ReplenishmentTable | Response:
    """Every active or auto-delisted SKU with sales rate, cover and quantity to order, most
    urgent first.

    SKUs that ran out and were delisted automatically are in the table (`status: delisted`),
    with the units buyers are waiting for counted in `suggested_qty`; only SKUs delisted by
    hand are left out. `suggested_qty` is the same figure as `suggested_reorder` in
    `/v1/low-stock`, and is positive for every low-stock SKU.

    JSON is paged (`limit`, `cursor` → `next_cursor`); CSV is the whole table in one
    streamed download (`limit` and `cursor` do not apply). The order is computed live: a
    SKU whose sales or stock change between two pages may move.
    """
    after = _position(cursor) if cursor else None
    requested = path_id(store_id, "store") if store_id is not None else None
    store_ids = await stores.store_filter(session, principal, requested)
    now = clock.now()
    # Accept is read here rather than declared: OpenAPI ignores Accept header parameters.
    if wants_csv(request.headers.get("accept")):
        # The store's own date (UTC's for several stores).
        day = now.astimezone(await zones.zone_of(session, requested))
        name = f"replenishment-{requested or 'all'}-{day:%Y-%m-%d}.csv"
        return ClosingStreamingResponse(
            csv_chunks(_streamed_rows(request.app.state.engine, store_ids, now)),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    rows = await reports.replenishment_page(session, store_ids, now, after, limit)
    page = page_of(
        rows, limit, lambda row: encode_cursor(CURSOR_KIND, *reports.replenishment_position(row))
    )
    table = ReplenishmentTable(
        store_id=requested,
        generated_at=now,
        cover_days=DEFAULT_COVER_DAYS,
        items=page.items,
        next_cursor=page.next_cursor,
    )
    return await zones.one_in_store_time(session, table)


def _position(cursor: str) -> reports.ReplenishmentPosition:
    rank, no_cover, cover, code, sku_id = decode_cursor(
        cursor, CURSOR_KIND, 5, text_at=frozenset({3})
    )
    return rank, no_cover, cover, code, sku_id
