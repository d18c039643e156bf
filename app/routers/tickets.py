"""``/v1/tickets``: customer-service tickets, their threads, SLA lists and resolution."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth import Principal, Role, require
from app.domain.ticket import queries, resolution, service
from app.domain.ticket.queries import Filters
from app.domain.ticket.rules import Priority, SlaState, TicketStatus, TicketType
from app.domain.ticket.schemas import (
    AssignIn,
    MessageIn,
    ResolveIn,
    TicketCreate,
    TicketPublic,
    TicketUpdate,
)
from app.domain.types import NO_CONTROL_CHARS
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import (
    ClockDep,
    IdempotencyKeyHeader,
    IfMatch,
    IsoInstant,
    Session,
    path_id,
    problems,
)
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/tickets", tags=["tickets"], route_class=TransactionalRoute)

TicketId = Annotated[str, Path(description="Ticket id.", examples=["77"])]
# API.md Auth: integration keys create and read tickets; warehouse keys see none.
Reader = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]
Writer = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR))]

_WRITE_ERRORS = problems(401, 403, 404, 409, 412, 422, codes={409: "invalid_transition"})


async def _read(
    session: Session, principal: Principal, ticket_id: int, clock: ClockDep
) -> TicketPublic:
    return await service.read_one(session, principal, ticket_id, clock.now())


@router.post(
    "",
    status_code=201,
    response_model=TicketPublic,
    responses={
        200: {"description": "The same ticket was taken before (retry): the existing ticket."},
        **problems(
            401, 403, 404, 409, 422, codes={404: "order_not_found", 409: "duplicate_ticket"}
        ),
    },
)
async def create_ticket(
    body: TicketCreate,
    principal: Reader,
    session: Session,
    clock: ClockDep,
    response: Response,
    _: IdempotencyKeyHeader = None,
) -> TicketPublic:
    """Open a ticket; SLA clocks start at `opened_at` (default now).

    Idempotent on `store_id` + `external_id`: the same content again is `200` with the
    existing ticket, other content `409 duplicate_ticket`. A refund or return ticket holds
    its unshipped order (`refund_pending`); a shipping chase flags its order `urgent`.
    """
    created = await service.create(session, principal, body, clock.now())
    if not created.created:
        response.status_code = 200
    return await _read(session, principal, created.ticket_id, clock)


@router.get("", response_model=Page[TicketPublic], responses=problems(401, 403, 404, 422))
async def list_tickets(
    principal: Reader,
    session: Session,
    clock: ClockDep,
    store_id: Annotated[str | None, Query(description="Only this store.")] = None,
    status: TicketStatus | None = None,
    type: Annotated[TicketType | None, Query(description="Ticket type.")] = None,
    priority: Priority | None = None,
    assignee: Annotated[
        str | None,
        Query(min_length=1, max_length=64, pattern=NO_CONTROL_CHARS, description="Agent."),
    ] = None,
    sla: Annotated[
        SlaState | None,
        Query(description="Open tickets `breached` (a due instant passed) or `due_soon` (< 2 h)."),
    ] = None,
    order_id: Annotated[str | None, Query(description="Tickets of this order.")] = None,
    opened_from: Annotated[IsoInstant | None, Query(description="opened_at ≥ this.")] = None,
    opened_to: Annotated[IsoInstant | None, Query(description="opened_at < this.")] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[TicketPublic]:
    """Tickets newest first, with their threads; `sla_state` computed from the clock now."""
    before = decode_cursor(cursor, "tickets", 1)[0] if cursor else None
    now = clock.now()
    filters = Filters(
        store_id=path_id(store_id, "store") if store_id is not None else None,
        status=status,
        type=type,
        priority=priority,
        assignee=assignee,
        sla=sla,
        order_id=path_id(order_id, "order") if order_id is not None else None,
        opened_from=opened_from,
        opened_to=opened_to,
    )
    rows = await queries.list_page(
        session, principal, filters, now=now, before_id=before, limit=limit
    )
    page = page_of(rows, limit, lambda r: encode_cursor("tickets", r.id))
    return Page(
        items=await service.read_models(session, page.items, now), next_cursor=page.next_cursor
    )


@router.get("/{ticket_id}", response_model=TicketPublic, responses=problems(401, 403, 404))
async def get_ticket(
    ticket_id: TicketId, principal: Reader, session: Session, clock: ClockDep
) -> TicketPublic:
    """One ticket with its whole thread; `sla_state` as of now."""
    return await _read(session, principal, path_id(ticket_id, "ticket"), clock)


@router.post(
    "/{ticket_id}/messages",
    response_model=TicketPublic,
    responses=problems(401, 403, 404, 422),
)
async def add_message(
    ticket_id: TicketId,
    body: MessageIn,
    principal: Writer,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> TicketPublic:
    """Add an agent reply, a customer message or an internal note to the thread.

    The first `agent` message sets `first_response_at` (the first-response SLA).
    """
    tid = path_id(ticket_id, "ticket")
    await service.add_message(session, principal, tid, body, clock.now())
    return await _read(session, principal, tid, clock)


@router.post("/{ticket_id}/assign", response_model=TicketPublic, responses=_WRITE_ERRORS)
async def assign_ticket(
    ticket_id: TicketId,
    body: AssignIn,
    principal: Writer,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> TicketPublic:
    """Give the ticket to an agent (kept in the audit trail with the key)."""
    tid = path_id(ticket_id, "ticket")
    await service.assign(session, principal, tid, body, clock.now(), if_match)
    return await _read(session, principal, tid, clock)


@router.patch("/{ticket_id}", response_model=TicketPublic, responses=_WRITE_ERRORS)
async def update_ticket(
    ticket_id: TicketId,
    body: TicketUpdate,
    principal: Writer,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
) -> TicketPublic:
    """Change priority or subject (`If-Match`); a new priority recomputes both due instants."""
    tid = path_id(ticket_id, "ticket")
    await service.change(session, principal, tid, body, clock.now(), if_match)
    return await _read(session, principal, tid, clock)


@router.post(
    "/{ticket_id}/resolve",
    response_model=TicketPublic,
    responses=problems(
        401, 403, 404, 409, 412, 422, codes={409: "invalid_transition", 422: "refund_exceeds_paid"}
    ),
)
async def resolve_ticket(
    ticket_id: TicketId,
    body: ResolveIn,
    principal: Writer,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> TicketPublic:
    """Resolve with an outcome; a refund is recorded on the order (never above what was paid).

    `422 refund_exceeds_paid` beyond the paid amount left, `422 order_not_paid` on an unpaid
    order. A full refund of an unshipped order cancels it and releases its stock; `restock`
    on a shipped `return_refund` writes `return` movements. The order's refund hold lifts
    with its last open refund/return ticket.
    """
    tid = path_id(ticket_id, "ticket")
    await resolution.resolve(session, principal, tid, body, clock.now(), if_match)
    return await _read(session, principal, tid, clock)


@router.post("/{ticket_id}/reopen", response_model=TicketPublic, responses=_WRITE_ERRORS)
async def reopen_ticket(
    ticket_id: TicketId,
    principal: Writer,
    session: Session,
    clock: ClockDep,
    if_match: IfMatch,
    _: IdempotencyKeyHeader = None,
) -> TicketPublic:
    """Open a resolved ticket again; a new resolution clock starts now."""
    tid = path_id(ticket_id, "ticket")
    await service.reopen(session, principal, tid, clock.now(), if_match)
    return await _read(session, principal, tid, clock)
