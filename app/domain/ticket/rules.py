"""Ticket rules (DOMAIN.md §4): default priorities, SLA due instants in service hours,
``sla_state`` at read time, escalation. Pure functions; ``now`` is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum


class TicketType(StrEnum):
    """What the buyer asks for."""

    INQUIRY = "inquiry"
    SHIPPING_CHASE = "shipping_chase"
    REFUND = "refund"
    RETURN_REFUND = "return_refund"
    EXCHANGE = "exchange"
    LOST_PARCEL = "lost_parcel"
    COMPLAINT = "complaint"
    INVOICE = "invoice"


class Priority(StrEnum):
    """How soon a ticket must be handled; ``urgent`` halves both SLA clocks."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketStatus(StrEnum):
    """``open`` → ``resolved`` (→ ``open`` again by reopen)."""

    OPEN = "open"
    RESOLVED = "resolved"


class SlaState(StrEnum):
    """Where a ticket stands against its due instants."""

    OK = "ok"
    DUE_SOON = "due_soon"
    BREACHED = "breached"


class Outcome(StrEnum):
    """How a ticket was resolved."""

    ANSWERED = "answered"
    REFUNDED = "refunded"
    REPLACED = "replaced"
    COMPENSATED = "compensated"
    REJECTED = "rejected"
    CLAIM_FILED = "claim_filed"


class Author(StrEnum):
    """Who wrote a message: an agent's reply, the customer, or an internal note."""

    AGENT = "agent"
    CUSTOMER = "customer"
    NOTE = "note"


_HIGH_BY_DEFAULT = frozenset(
    {TicketType.REFUND, TicketType.RETURN_REFUND, TicketType.COMPLAINT, TicketType.LOST_PARCEL}
)
# Types that hold an unshipped order (DOMAIN.md §2 "Holds") and that escalate (§4).
HOLDING_TYPES = frozenset({TicketType.REFUND, TicketType.RETURN_REFUND})
ESCALATING_TYPES = frozenset({TicketType.REFUND, TicketType.RETURN_REFUND, TicketType.COMPLAINT})

FIRST_RESPONSE = timedelta(minutes=30)
RESOLUTION = timedelta(hours=24)
LOST_PARCEL_RESOLUTION = timedelta(hours=72)
DUE_SOON = timedelta(hours=2)
ESCALATE_AFTER = timedelta(hours=12)
DEFAULT_SERVICE_START = 8 * 60
DEFAULT_SERVICE_END = 23 * 60


def default_priority(ticket_type: TicketType) -> Priority:
    """refund, return_refund, complaint, lost_parcel → high; the rest normal (§4)."""
    return Priority.HIGH if ticket_type in _HIGH_BY_DEFAULT else Priority.NORMAL


@dataclass(frozen=True, slots=True)
class ServiceHours:
    """The customer-service day in store time: ``[start, end)`` minutes after midnight."""

    start_minute: int = DEFAULT_SERVICE_START
    end_minute: int = DEFAULT_SERVICE_END
    tz: tzinfo = UTC

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The service window of a store-local ``day``, as UTC instants."""
        midnight = datetime.combine(day, time(0), tzinfo=self.tz)
        start = (midnight + timedelta(minutes=self.start_minute)).astimezone(UTC)
        end = (midnight + timedelta(minutes=self.end_minute)).astimezone(UTC)
        return start, end


def add_service_time(at: datetime, amount: timedelta, hours: ServiceHours) -> datetime:
    """``at`` plus ``amount`` counted only inside the service windows (every day)."""
    remaining = amount
    day = at.astimezone(hours.tz).date()
    cursor = at
    for _ in range(400):  # a window every day: this ends within a few iterations
        start, end = hours.window(day)
        cursor = max(cursor, start)
        if cursor < end:
            available = end - cursor
            if remaining <= available:
                return (cursor + remaining).astimezone(UTC)
            remaining -= available
        day += timedelta(days=1)
        cursor = max(cursor, hours.window(day)[0])
    raise ValueError("service hours never open")  # pragma: no cover - windows are non-empty


def first_response_allowance(priority: Priority) -> timedelta:
    """30 minutes of service time; urgent halves it."""
    return FIRST_RESPONSE / 2 if priority is Priority.URGENT else FIRST_RESPONSE


def resolution_allowance(ticket_type: TicketType, priority: Priority) -> timedelta:
    """24 calendar hours (72 h for lost_parcel); urgent halves it."""
    base = LOST_PARCEL_RESOLUTION if ticket_type is TicketType.LOST_PARCEL else RESOLUTION
    return base / 2 if priority is Priority.URGENT else base


def first_response_due(opened_at: datetime, priority: Priority, hours: ServiceHours) -> datetime:
    """When the first agent reply is due: counted in service hours from ``opened_at``."""
    return add_service_time(opened_at, first_response_allowance(priority), hours)


def resolution_due(started_at: datetime, ticket_type: TicketType, priority: Priority) -> datetime:
    """When the ticket must be resolved: calendar hours from the clock start."""
    return (started_at + resolution_allowance(ticket_type, priority)).astimezone(UTC)


def sla_state(
    *,
    status: TicketStatus,
    first_response_due: datetime,
    first_response_at: datetime | None,
    resolution_due: datetime,
    resolved_at: datetime | None,
    now: datetime,
) -> SlaState:
    """``breached`` once a due instant passed unmet, ``due_soon`` under 2 h before one, else ok.

    A resolved ticket keeps ``breached`` if it was answered or resolved late, else ``ok``.
    """
    if status is TicketStatus.RESOLVED:
        late_reply = first_response_at is not None and first_response_at > first_response_due
        late_fix = resolved_at is not None and resolved_at > resolution_due
        return SlaState.BREACHED if late_reply or late_fix else SlaState.OK
    pending = (
        [resolution_due]
        if first_response_at is not None
        else [
            first_response_due,
            resolution_due,
        ]
    )
    if any(due < now for due in pending):
        return SlaState.BREACHED
    if any(due - now < DUE_SOON for due in pending):
        return SlaState.DUE_SOON
    return SlaState.OK


def notice_level(due: datetime, now: datetime) -> int:
    """The SLA notice a due instant calls for at ``now``: 2 breached, 1 due soon, 0 none."""
    if due < now:
        return 2
    if due - now < DUE_SOON:
        return 1
    return 0


def escalates(
    ticket_type: TicketType, priority: Priority, started_at: datetime, now: datetime
) -> bool:
    """refund, return_refund, complaint still open 12 h after its clock started → urgent."""
    return (
        ticket_type in ESCALATING_TYPES
        and priority is not Priority.URGENT
        and now - started_at >= ESCALATE_AFTER
    )


def dedupe_key(ticket_id: int, kind: str) -> str:
    """Dedupe key of a ticket event, e.g. ``ticket:42:created``."""
    return f"ticket:{ticket_id}:{kind}"


def parse_hhmm(text: str, *, allow_24: bool) -> int:
    """``"08:30"`` → 510 minutes; ``"24:00"`` only where ``allow_24``; ValueError otherwise."""
    if len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        raise ValueError("time must be HH:MM")
    h, m = int(text[:2]), int(text[3:])
    if allow_24 and (h, m) == (24, 0):
        return 1440
    if h > 23 or m > 59:
        raise ValueError("time must be between 00:00 and 23:59 (end may be 24:00)")
    return h * 60 + m


def format_hhmm(minutes: int) -> str:
    """510 → ``"08:30"``."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
