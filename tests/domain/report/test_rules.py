"""Report rules (DOMAIN.md §6): rates, AOV, the day's target share, range limits, totals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app.domain.errors import RuleViolation
from app.domain.report import rules
from app.domain.report.rules import Counts


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 0, None),  # undefined, not 0
        (5, 0, None),
        (0, 7, Decimal("0.0000")),
        (1, 3, Decimal("0.3333")),
        (2, 3, Decimal("0.6667")),  # half up
        (1, 8, Decimal("0.1250")),
        (1, 20000, Decimal("0.0001")),  # 0.00005 rounds half up
        (1, 20001, Decimal("0.0000")),
        (9731, 10000, Decimal("0.9731")),
        (5, 4, Decimal("1.2500")),  # payment rate can pass 1
        (Decimal("410.00"), Decimal("100"), Decimal("4.1000")),
    ],
)
def test_rate(
    numerator: int | Decimal, denominator: int | Decimal, expected: Decimal | None
) -> None:
    assert rules.rate(numerator, denominator) == expected
    if expected is not None:
        assert expected.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("gmv", "paid", "expected"),
    [
        (Decimal("410.00"), 4, Decimal("102.50")),
        (Decimal("100.00"), 3, Decimal("33.33")),
        (Decimal("0.05"), 2, Decimal("0.03")),  # 0.025 half up
        (Decimal("0.00"), 0, None),
    ],
)
def test_average_order_value(gmv: Decimal, paid: int, expected: Decimal | None) -> None:
    assert rules.average(gmv, paid) == expected


@pytest.mark.parametrize(
    ("target", "day", "share"),
    [
        (Decimal("3000.00"), date(2026, 11, 11), Decimal("100")),  # November: 30 days
        (Decimal("3100.00"), date(2026, 12, 31), Decimal("100")),  # December: 31
        (Decimal("2800.00"), date(2026, 2, 1), Decimal("100")),  # February 2026: 28
        (Decimal("2900.00"), date(2028, 2, 29), Decimal("100")),  # leap February: 29
        (None, date(2026, 11, 11), None),
    ],
)
def test_daily_target_spreads_the_month_evenly(
    target: Decimal | None, day: date, share: Decimal | None
) -> None:
    assert rules.daily_target(target, day) == share


def test_a_month_of_target_shares_adds_up_to_the_target() -> None:
    share = rules.daily_target(Decimal("1000000.00"), date(2026, 11, 1))
    assert share is not None
    days = [Counts(target=share) for _ in range(30)]
    assert rules.figures(rules.total(days)).target == Decimal("1000000.00")
    # Shown to the fen per day, exact underneath.
    assert rules.figures(days[0]).target == Decimal("33333.33")


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (date(2026, 11, 11), date(2026, 11, 11), None),
        (date(2026, 1, 1), date(2026, 12, 31), None),  # 365
        (date(2024, 1, 1), date(2024, 12, 31), None),  # 366 (leap year)
        (date(2026, 1, 1), date(2027, 1, 1), None),  # 366
        (date(2026, 1, 1), date(2027, 1, 2), "date_range_too_long"),  # 367
        (date(2026, 11, 12), date(2026, 11, 11), "invalid_date_range"),
    ],
)
def test_check_range(start: date, end: date, code: str | None) -> None:
    if code is None:
        rules.check_range(start, end)
        return
    with pytest.raises(RuleViolation) as raised:
        rules.check_range(start, end)
    assert raised.value.code == code


def test_figures_of_a_day() -> None:
    c = Counts(
        placed=5,
        paid=4,
        gmv=Decimal("410.00"),
        buyers=3,
        visitors=100,
        shipped=2,
        shipped_on_time=1,
        refunds=1,
        tickets_resolved=2,
        tickets_resolved_in_sla=1,
        target=Decimal("100"),
    )
    f = rules.figures(c)
    assert (f.payment_rate, f.aov, f.conversion_rate) == (
        Decimal("0.8000"),
        Decimal("102.50"),
        Decimal("0.0300"),
    )
    assert (f.on_time_dispatch_rate, f.refund_rate, f.ticket_sla_rate) == (
        Decimal("0.5000"),
        Decimal("0.2500"),
        Decimal("0.5000"),
    )
    assert (f.target, f.target_progress) == (Decimal("100.00"), Decimal("4.1000"))


def test_totals_sum_then_divide_never_average_rates() -> None:
    busy = Counts(placed=100, paid=90, gmv=Decimal("9000.00"), visitors=1000, buyers=80)
    quiet = Counts(placed=1, paid=0, visitors=10, buyers=0)
    t = rules.figures(rules.total([busy, quiet]))
    assert t.counts.placed == 101
    assert t.payment_rate == Decimal("0.8911")  # 90/101, not (0.9 + 0) / 2
    assert t.conversion_rate == Decimal("0.0792")  # 80 buyer-days / 1010 visitor-days
    assert t.aov == Decimal("100.00")
    # No target on any day: null; on some days: those days' shares only.
    assert (t.target, t.target_progress) == (None, None)
    with_target = rules.total([busy, Counts(target=Decimal("4500"))])
    assert rules.figures(with_target).target_progress == Decimal("2.0000")
