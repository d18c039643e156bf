"""Pure ticket rules: the shared SLA vectors and every number of DOMAIN.md §4."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.domain.ticket import rules
from app.domain.ticket.rules import (
    Priority,
    ServiceHours,
    SlaState,
    TicketStatus,
    TicketType,
)
from tests.helpers import vector_cases

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT = ServiceHours(8 * 60, 23 * 60, SHANGHAI)
OFFICE = ServiceHours(9 * 60, 18 * 60, SHANGHAI)
BERLIN = ServiceHours(8 * 60, 23 * 60, ZoneInfo("Europe/Berlin"))
M = timedelta(minutes=1)
H = timedelta(hours=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _cases() -> list[Any]:
    return [pytest.param(c, id=c["name"]) for c in vector_cases("ticket_sla")]


@pytest.mark.parametrize("case", _cases())
def test_ticket_sla_vector(case: dict[str, Any]) -> None:
    ticket_type = TicketType(case["type"])
    given = case["priority_given"]
    priority = Priority(given) if given else rules.default_priority(ticket_type)
    opened = at(case["opened_at"])
    expect = case["expect"]
    assert priority.value == expect["priority"]
    assert rules.first_response_due(opened, priority, DEFAULT) == at(expect["first_response_due"])
    assert rules.resolution_due(opened, ticket_type, priority) == at(expect["resolution_due"])


@pytest.mark.parametrize(
    ("hours", "opened", "priority", "due"),
    [
        # Default 08:00–23:00 Shanghai.
        (DEFAULT, "2026-11-11T12:00:00+08:00", Priority.NORMAL, "2026-11-11T12:30:00+08:00"),
        (DEFAULT, "2026-11-11T22:50:00+08:00", Priority.NORMAL, "2026-11-12T08:20:00+08:00"),
        (DEFAULT, "2026-11-11T22:30:00+08:00", Priority.NORMAL, "2026-11-11T23:00:00+08:00"),
        (DEFAULT, "2026-11-11T22:31:00+08:00", Priority.NORMAL, "2026-11-12T08:01:00+08:00"),
        (DEFAULT, "2026-11-12T07:00:00+08:00", Priority.NORMAL, "2026-11-12T08:30:00+08:00"),
        (DEFAULT, "2026-11-11T23:30:00+08:00", Priority.NORMAL, "2026-11-12T08:30:00+08:00"),
        (DEFAULT, "2026-11-11T23:00:00+08:00", Priority.NORMAL, "2026-11-12T08:30:00+08:00"),
        (DEFAULT, "2026-11-12T00:00:00+08:00", Priority.URGENT, "2026-11-12T08:15:00+08:00"),
        (DEFAULT, "2026-11-11T22:50:00+08:00", Priority.URGENT, "2026-11-12T08:05:00+08:00"),
        # A Saturday is a service day like any other.
        (DEFAULT, "2026-11-14T22:45:00+08:00", Priority.NORMAL, "2026-11-15T08:15:00+08:00"),
        # 09:00–18:00 office hours.
        (OFFICE, "2026-11-11T12:00:00+08:00", Priority.NORMAL, "2026-11-11T12:30:00+08:00"),
        (OFFICE, "2026-11-11T08:00:00+08:00", Priority.NORMAL, "2026-11-11T09:30:00+08:00"),
        (OFFICE, "2026-11-11T17:50:00+08:00", Priority.NORMAL, "2026-11-12T09:20:00+08:00"),
        (OFFICE, "2026-11-11T22:50:00+08:00", Priority.NORMAL, "2026-11-12T09:30:00+08:00"),
        (OFFICE, "2026-11-14T18:00:00+08:00", Priority.HIGH, "2026-11-15T09:30:00+08:00"),
        # Another time zone: Berlin's 08:00–23:00 (UTC+1 in November).
        (BERLIN, "2026-11-11T22:50:00+01:00", Priority.NORMAL, "2026-11-12T08:20:00+01:00"),
        (BERLIN, "2026-11-11T12:00:00+08:00", Priority.NORMAL, "2026-11-11T08:30:00+01:00"),
        (BERLIN, "2026-11-11T07:00:00+01:00", Priority.NORMAL, "2026-11-11T08:30:00+01:00"),
    ],
)
def test_first_response_counts_only_service_hours(
    hours: ServiceHours, opened: str, priority: Priority, due: str
) -> None:
    assert rules.first_response_due(at(opened), priority, hours) == at(due)


def test_round_the_clock_service() -> None:
    always = ServiceHours(0, 1440, SHANGHAI)
    opened = at("2026-11-11T23:50:00+08:00")
    assert rules.first_response_due(opened, Priority.NORMAL, always) == opened + 30 * M


def test_across_daylight_saving_change() -> None:
    # Berlin leaves summer time on 2026-10-25: the window is 08:00–23:00 wall clock both days.
    opened = at("2026-10-24T22:50:00+02:00")
    assert rules.first_response_due(opened, Priority.NORMAL, BERLIN) == at(
        "2026-10-25T08:20:00+01:00"
    )


@pytest.mark.parametrize(
    ("ticket_type", "priority", "hours"),
    [
        (TicketType.REFUND, Priority.HIGH, 24),
        (TicketType.INQUIRY, Priority.LOW, 24),
        (TicketType.LOST_PARCEL, Priority.HIGH, 72),
        (TicketType.LOST_PARCEL, Priority.URGENT, 36),
        (TicketType.COMPLAINT, Priority.URGENT, 12),
    ],
)
def test_resolution_in_calendar_hours(
    ticket_type: TicketType, priority: Priority, hours: int
) -> None:
    opened = at("2026-11-11T22:50:00+08:00")  # service hours do not matter here
    assert rules.resolution_due(opened, ticket_type, priority) == opened + hours * H


def test_urgent_halves_both() -> None:
    assert rules.first_response_allowance(Priority.URGENT) == 15 * M
    assert rules.first_response_allowance(Priority.HIGH) == 30 * M
    assert rules.resolution_allowance(TicketType.REFUND, Priority.URGENT) == 12 * H


@pytest.mark.parametrize(
    ("ticket_type", "priority"),
    [
        (TicketType.REFUND, Priority.HIGH),
        (TicketType.RETURN_REFUND, Priority.HIGH),
        (TicketType.COMPLAINT, Priority.HIGH),
        (TicketType.LOST_PARCEL, Priority.HIGH),
        (TicketType.SHIPPING_CHASE, Priority.NORMAL),
        (TicketType.EXCHANGE, Priority.NORMAL),
        (TicketType.INQUIRY, Priority.NORMAL),
        (TicketType.INVOICE, Priority.NORMAL),
    ],
)
def test_default_priority_by_type(ticket_type: TicketType, priority: Priority) -> None:
    assert rules.default_priority(ticket_type) is priority


T0 = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ticket_type", "priority", "elapsed", "escalates"),
    [
        (TicketType.REFUND, Priority.HIGH, 12 * H - timedelta(seconds=1), False),
        (TicketType.REFUND, Priority.HIGH, 12 * H, True),
        (TicketType.RETURN_REFUND, Priority.NORMAL, 13 * H, True),
        (TicketType.COMPLAINT, Priority.LOW, 12 * H, True),
        (TicketType.REFUND, Priority.URGENT, 20 * H, False),
        (TicketType.LOST_PARCEL, Priority.HIGH, 20 * H, False),
        (TicketType.INQUIRY, Priority.NORMAL, 20 * H, False),
    ],
)
def test_escalation_at_exactly_12_hours(
    ticket_type: TicketType, priority: Priority, elapsed: timedelta, escalates: bool
) -> None:
    assert rules.escalates(ticket_type, priority, T0, T0 + elapsed) is escalates


def _state(now: datetime, *, responded: bool = False, status: str = "open") -> SlaState:
    return rules.sla_state(
        status=TicketStatus(status),
        first_response_due=T0 + 30 * M,
        first_response_at=T0 + 10 * M if responded else None,
        resolution_due=T0 + 24 * H,
        resolved_at=T0 + 5 * H if status == "resolved" else None,
        now=now,
    )


def test_sla_state_from_the_clock() -> None:
    assert _state(T0) is SlaState.DUE_SOON  # 30 min to the first response: under 2 h
    assert _state(T0 + 30 * M) is SlaState.DUE_SOON  # exactly due: not yet breached
    assert _state(T0 + 31 * M) is SlaState.BREACHED
    assert _state(T0 + 31 * M, responded=True) is SlaState.OK
    assert _state(T0 + 22 * H, responded=True) is SlaState.OK
    assert _state(T0 + 22 * H + M, responded=True) is SlaState.DUE_SOON
    assert _state(T0 + 24 * H + M, responded=True) is SlaState.BREACHED
    assert _state(T0 + 100 * H, responded=True, status="resolved") is SlaState.OK


def test_resolved_late_stays_breached() -> None:
    state = rules.sla_state(
        status=TicketStatus.RESOLVED,
        first_response_due=T0 + 30 * M,
        first_response_at=T0 + 40 * M,
        resolution_due=T0 + 24 * H,
        resolved_at=T0 + H,
        now=T0 + 2 * H,
    )
    assert state is SlaState.BREACHED


def test_notice_levels() -> None:
    due = T0 + 3 * H
    assert rules.notice_level(due, T0) == 0
    assert rules.notice_level(due, T0 + H + M) == 1
    assert rules.notice_level(due, due) == 1
    assert rules.notice_level(due, due + timedelta(seconds=1)) == 2


@pytest.mark.parametrize(
    ("text", "allow_24", "minutes"),
    [("08:00", False, 480), ("23:59", False, 1439), ("24:00", True, 1440), ("00:00", False, 0)],
)
def test_parse_hhmm(text: str, allow_24: bool, minutes: int) -> None:
    assert rules.parse_hhmm(text, allow_24=allow_24) == minutes
    if minutes < 1440:
        assert rules.format_hhmm(minutes) == text


@pytest.mark.parametrize("text", ["24:00", "25:00", "08:60", "8:00", "ab:cd", "08-00"])
def test_parse_hhmm_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="time must"):
        rules.parse_hhmm(text, allow_24=False)
