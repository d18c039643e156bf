"""Pure order rules: transitions, allocation, totals and the time-based read model."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.domain.dispatch.rules import Risk
from app.domain.order import rules
from app.domain.order.rules import Allocation, Flag, OrderFacts, Status
from app.domain.store.rules import effective_policy, platform_default

T = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
H = timedelta(hours=1)
S = timedelta(seconds=1)
PDD = platform_default("pdd")

PENDING, AWAITING = Status.PENDING_PAYMENT, Status.AWAITING_SHIPMENT
SHIPPED, DELIVERED = Status.SHIPPED, Status.DELIVERED
COMPLETED, CANCELLED = Status.COMPLETED, Status.CANCELLED

# ---------------------------------------------------------------------------------------------
# Transitions (DOMAIN.md §2)

ALLOWED: dict[str, set[Status]] = {
    "pay": {PENDING},
    "ship": {AWAITING},
    "cancel": {PENDING, AWAITING},
    "deliver": {SHIPPED},
    "complete": {SHIPPED, DELIVERED},
    "hold": {PENDING, AWAITING},
    "release": {PENDING, AWAITING},
    "track": {SHIPPED, DELIVERED},
}


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("status", list(Status))
def test_transitions(action: str, status: Status) -> None:
    assert rules.can(action, status.value) is (status in ALLOWED[action])


def test_every_action_is_in_the_table() -> None:
    assert set(rules.TRANSITIONS) == set(ALLOWED)


def test_nothing_leaves_completed_or_cancelled() -> None:
    for action in rules.TRANSITIONS:
        assert not rules.can(action, "completed")
        assert not rules.can(action, "cancelled")


def test_unknown_status_or_action_is_an_error() -> None:
    with pytest.raises(ValueError, match="refunded"):
        rules.can("ship", "refunded")
    with pytest.raises(KeyError):
        rules.can("teleport", "awaiting_shipment")


# ---------------------------------------------------------------------------------------------
# Allocation and totals


@pytest.mark.parametrize(
    ("requested", "reserved", "expected"),
    [
        ([2, 1], [2, 1], Allocation.FULL),
        ([1], [1], Allocation.FULL),
        ([2], [3], Allocation.FULL),
        ([2, 1], [0, 0], Allocation.SHORT),
        ([5], [0], Allocation.SHORT),
        ([2, 1], [2, 0], Allocation.PARTIAL),
        ([2, 1], [1, 1], Allocation.PARTIAL),
        ([5], [4], Allocation.PARTIAL),
    ],
)
def test_allocation(requested: list[int], reserved: list[int], expected: Allocation) -> None:
    assert rules.allocation(requested, reserved) == expected


def test_allocation_needs_one_reservation_per_line() -> None:
    with pytest.raises(ValueError, match="shorter"):
        rules.allocation([1, 2], [1])


@pytest.mark.parametrize(
    ("lines", "discount", "shipping", "expected"),
    [
        ([(2, "129.90"), (1, "59.90")], "10.00", "5.00", ("319.70", "10.00", "5.00", "314.70")),
        ([(1, "59.90")], "0.00", "0.00", ("59.90", "0.00", "0.00", "59.90")),
        ([(3, "0.10")], "0.00", "0.00", ("0.30", "0.00", "0.00", "0.30")),
        ([(1, "100")], "0", "8", ("100.00", "0", "8", "108.00")),
        ([], "0.00", "6.00", ("0.00", "0.00", "6.00", "6.00")),
        ([(10, "9.99")], "20.00", "0.00", ("99.90", "20.00", "0.00", "79.90")),
    ],
)
def test_totals(
    lines: list[tuple[int, str]],
    discount: str,
    shipping: str,
    expected: tuple[str, str, str, str],
) -> None:
    t = rules.totals([(q, Decimal(p)) for q, p in lines], Decimal(discount), Decimal(shipping))
    assert (str(t.subtotal), str(t.discount), str(t.shipping_fee), str(t.total)) == expected


# ---------------------------------------------------------------------------------------------
# The read model at ``now``

DEADLINE = T + 48 * H


def facts(**changes: Any) -> OrderFacts:
    """An awaiting, fully allocated pdd order paid at T (deadline T + 48 h)."""
    base = OrderFacts(
        status=AWAITING.value,
        allocation=Allocation.FULL.value,
        clock_started_at=T,
        dispatch_deadline=DEADLINE,
        at_risk_at=T + 24 * H,
        total=Decimal("59.90"),
        penalty=Decimal("0.00"),
        on_hold=False,
        refund_pending=False,
        urgent=False,
        shipped_at=None,
        picked_up_at=None,
        shipped_late=False,
        tracking_pattern_mismatch=False,
        fake_shipment_risk=False,
    )
    return dataclasses.replace(base, **changes)


def shipped(**changes: Any) -> OrderFacts:
    """The same order, shipped at T + 10 h."""
    return facts(status=SHIPPED.value, shipped_at=T + 10 * H, **changes)


@pytest.mark.parametrize(
    ("now", "risk", "left"),
    [
        (T + 1 * H, Risk.ON_TRACK, 47 * 3600),
        (T + 24 * H, Risk.AT_RISK, 24 * 3600),
        (DEADLINE, Risk.AT_RISK, 0),
        (DEADLINE + S, Risk.OVERDUE, -1),
    ],
)
def test_risk_and_seconds_left_of_an_awaiting_order(now: datetime, risk: Risk, left: int) -> None:
    v = rules.view(facts(), PDD, now)
    assert (v.risk, v.seconds_left) == (risk, left)


@pytest.mark.parametrize(
    "order",
    [
        facts(status=PENDING.value, clock_started_at=None, dispatch_deadline=None),
        facts(clock_started_at=None, dispatch_deadline=None),  # group not formed yet
        shipped(),
        facts(status=DELIVERED.value, shipped_at=T + 10 * H, picked_up_at=T + 11 * H),
        facts(status=COMPLETED.value, shipped_at=T + 10 * H, picked_up_at=T + 11 * H),
        facts(status=CANCELLED.value),
    ],
)
def test_no_risk_unless_awaiting_with_a_clock(order: OrderFacts) -> None:
    v = rules.view(order, PDD, DEADLINE + 100 * H)
    assert (v.risk, v.seconds_left, v.penalty) == (None, None, Decimal("0.00"))


@pytest.mark.parametrize(
    ("platform", "total", "now", "expected"),
    [
        ("pdd", "59.90", DEADLINE - S, "0.00"),
        ("pdd", "59.90", DEADLINE, "0.00"),
        ("pdd", "59.90", DEADLINE + S, "3.00"),
        ("taobao", "20.00", DEADLINE + S, "5.00"),
        ("taobao", "300.00", DEADLINE + S, "30.00"),
        ("taobao", "2000.00", DEADLINE + S, "100.00"),
        ("taobao", "123.45", DEADLINE + S, "12.35"),
        ("douyin", "59.90", DEADLINE + S, "10.00"),
        ("jd", "59.90", DEADLINE + S, "0.00"),
    ],
)
def test_penalty_accrues_only_after_the_deadline(
    platform: str, total: str, now: datetime, expected: str
) -> None:
    v = rules.view(facts(total=Decimal(total)), platform_default(platform), now)
    assert str(v.penalty) == expected


@pytest.mark.parametrize(
    ("order", "now"),
    [
        (facts(penalty=Decimal("7.00")), DEADLINE + S),  # awaiting: not recomputed
        (facts(penalty=Decimal("7.00")), DEADLINE - S),
        (shipped(penalty=Decimal("7.00"), shipped_late=True), DEADLINE + 100 * H),
        (
            facts(status=COMPLETED.value, shipped_at=T, penalty=Decimal("7.00")),
            DEADLINE + 100 * H,
        ),
    ],
)
def test_a_stored_penalty_is_kept(order: OrderFacts, now: datetime) -> None:
    assert rules.view(order, PDD, now).penalty == Decimal("7.00")


def test_a_shipped_order_does_not_accrue_a_penalty() -> None:
    v = rules.view(shipped(picked_up_at=T + 11 * H), PDD, DEADLINE + 100 * H)
    assert v.penalty == Decimal("0.00")


def test_the_penalty_follows_the_store_policy() -> None:
    policy = effective_policy("pdd", {"late_penalty": {"min": "4.50", "max": "4.50"}})
    assert str(rules.view(facts(), policy, DEADLINE + S).penalty) == "4.50"


@pytest.mark.parametrize(
    ("order", "now", "expected"),
    [
        (facts(), T + 1 * H, []),
        # stock_short only while the order is open
        (facts(allocation="short"), T + 1 * H, [Flag.STOCK_SHORT]),
        (facts(allocation="partial"), T + 1 * H, [Flag.STOCK_SHORT]),
        (
            facts(status=PENDING.value, allocation="short", dispatch_deadline=None),
            T + 1 * H,
            [Flag.STOCK_SHORT],
        ),
        (shipped(allocation="short", picked_up_at=T + 11 * H), T + 20 * H, []),
        (facts(status=CANCELLED.value, allocation="short"), T + 1 * H, []),
        # urgent: short within 12 h of the deadline
        (facts(allocation="short"), DEADLINE - 12 * H - S, [Flag.STOCK_SHORT]),
        (facts(allocation="short"), DEADLINE - 12 * H, [Flag.STOCK_SHORT, Flag.URGENT]),
        (facts(allocation="partial"), DEADLINE - H, [Flag.STOCK_SHORT, Flag.URGENT]),
        (facts(allocation="short"), DEADLINE + H, [Flag.STOCK_SHORT, Flag.URGENT]),
        (facts(), DEADLINE - H, []),
        (
            facts(allocation="short", clock_started_at=None, dispatch_deadline=None),
            T + 100 * H,
            [Flag.STOCK_SHORT],
        ),
        # urgent: stored (a shipping chase), only while open
        (facts(urgent=True), T + 1 * H, [Flag.URGENT]),
        (shipped(urgent=True, picked_up_at=T + 11 * H), T + 20 * H, []),
        # holds and refunds
        (facts(on_hold=True), T + 1 * H, [Flag.ON_HOLD]),
        (facts(refund_pending=True), T + 1 * H, [Flag.REFUND_PENDING]),
        (
            facts(on_hold=True, refund_pending=True, allocation="short"),
            T + 1 * H,
            [Flag.STOCK_SHORT, Flag.ON_HOLD, Flag.REFUND_PENDING],
        ),
        # after shipment
        (shipped(shipped_late=True, picked_up_at=T + 11 * H), T + 20 * H, [Flag.SHIPPED_LATE]),
        (
            shipped(tracking_pattern_mismatch=True, picked_up_at=T + 11 * H),
            T + 20 * H,
            [Flag.TRACKING_PATTERN_MISMATCH],
        ),
        (shipped(), T + 34 * H, []),  # 24 h after shipment: still within grace
        (shipped(), T + 34 * H + S, [Flag.FAKE_SHIPMENT_RISK]),
        (shipped(picked_up_at=T + 34 * H), T + 40 * H, []),
        (shipped(picked_up_at=T + 34 * H + S), T + 40 * H, [Flag.FAKE_SHIPMENT_RISK]),
        (
            facts(
                status=DELIVERED.value,
                shipped_at=T + 10 * H,
                picked_up_at=T + 50 * H,
                fake_shipment_risk=True,
            ),
            T + 60 * H,
            [Flag.FAKE_SHIPMENT_RISK],
        ),
    ],
)
def test_flags(order: OrderFacts, now: datetime, expected: list[Flag]) -> None:
    assert rules.view(order, PDD, now).flags == expected


def test_the_pickup_grace_follows_the_store_policy() -> None:
    policy = effective_policy("pdd", {"pickup_grace_hours": 48})
    assert rules.view(shipped(), policy, T + 34 * H + S).flags == []
    assert rules.view(shipped(), policy, T + 58 * H + S).flags == [Flag.FAKE_SHIPMENT_RISK]


@pytest.mark.parametrize(
    ("short", "deadline", "now", "expected"),
    [
        (True, DEADLINE, DEADLINE - 12 * H, True),
        (True, DEADLINE, DEADLINE - 12 * H - S, False),
        (True, None, DEADLINE, False),
        (False, DEADLINE, DEADLINE, False),
    ],
)
def test_is_short_near_deadline(
    short: bool, deadline: datetime | None, now: datetime, expected: bool
) -> None:
    assert rules.is_short_near_deadline(short, deadline, now) is expected
    assert timedelta(hours=12) == rules.SHORT_URGENT_WITHIN
