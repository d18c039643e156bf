"""Pure report rules (DOMAIN.md §6): rates, averages, the day's share of the monthly target,
range limits and how days add up to a range's totals."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from app.domain.errors import RuleViolation

MAX_RANGE_DAYS = 366
RATE_PLACES = Decimal("0.0001")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def rate(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    """``numerator ÷ denominator`` to four places (half up); None when the denominator is 0."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES, ROUND_HALF_UP)


def money(value: Decimal) -> Decimal:
    """An amount to the fen, half up."""
    return value.quantize(CENT, ROUND_HALF_UP)


def average(total: Decimal, count: int) -> Decimal | None:
    """客单价 (AOV): ``total ÷ count`` to the fen; None when nothing was counted."""
    if not count:
        return None
    return money(total / count)


def days_in_month(day: date) -> int:
    """Days of the month ``day`` is in."""
    return calendar.monthrange(day.year, day.month)[1]


def daily_target(monthly_target: Decimal | None, day: date) -> Decimal | None:
    """The day's share of the month's sales target, exact (the month spread evenly over its
    days); None when the month has no target."""
    if monthly_target is None:
        return None
    return Decimal(monthly_target) / days_in_month(day)


def check_range(start: date, end: date) -> None:
    """``422`` unless ``start ≤ end`` and the range holds at most :data:`MAX_RANGE_DAYS` days."""
    if start > end:
        raise RuleViolation(
            "invalid_date_range",
            f"'from' ({start}) is after 'to' ({end}).",
            errors=[{"loc": ["query", "from"], "msg": "after 'to'", "type": "invalid"}],
        )
    days = (end - start).days + 1
    if days > MAX_RANGE_DAYS:
        raise RuleViolation(
            "date_range_too_long",
            f"The range holds {days} days; at most {MAX_RANGE_DAYS} are allowed.",
            errors=[
                {
                    "loc": ["query", "to"],
                    "msg": f"at most {MAX_RANGE_DAYS} days from 'from'",
                    "type": "invalid",
                }
            ],
        )


@dataclass(frozen=True, slots=True)
class Counts:
    """The additive figures of a day (or of several days added up)."""

    placed: int = 0
    paid: int = 0
    gmv: Decimal = ZERO
    buyers: int = 0
    visitors: int = 0
    ad_spend: Decimal = ZERO
    shipped: int = 0
    shipped_on_time: int = 0
    overdue: int = 0
    penalties: Decimal = ZERO
    refunds: int = 0
    refund_amount: Decimal = ZERO
    tickets_opened: int = 0
    tickets_resolved: int = 0
    tickets_resolved_in_sla: int = 0
    # The exact target share (None: no target set for any day counted).
    target: Decimal | None = None

    def __add__(self, other: Counts) -> Counts:
        target = (
            self.target
            if other.target is None
            else other.target
            if self.target is None
            else self.target + other.target
        )
        return Counts(
            placed=self.placed + other.placed,
            paid=self.paid + other.paid,
            gmv=self.gmv + other.gmv,
            buyers=self.buyers + other.buyers,
            visitors=self.visitors + other.visitors,
            ad_spend=self.ad_spend + other.ad_spend,
            shipped=self.shipped + other.shipped,
            shipped_on_time=self.shipped_on_time + other.shipped_on_time,
            overdue=self.overdue + other.overdue,
            penalties=self.penalties + other.penalties,
            refunds=self.refunds + other.refunds,
            refund_amount=self.refund_amount + other.refund_amount,
            tickets_opened=self.tickets_opened + other.tickets_opened,
            tickets_resolved=self.tickets_resolved + other.tickets_resolved,
            tickets_resolved_in_sla=self.tickets_resolved_in_sla + other.tickets_resolved_in_sla,
            target=target,
        )


def total(days: list[Counts]) -> Counts:
    """A range's totals: every count and amount summed (buyers too: buyer-days, see
    docs/reports.md), the target shares summed."""
    out = Counts()
    for day in days:
        out = out + day
    return out


@dataclass(frozen=True, slots=True)
class Figures:
    """Every figure of DOMAIN.md §6 derived from :class:`Counts`."""

    counts: Counts
    payment_rate: Decimal | None
    aov: Decimal | None
    conversion_rate: Decimal | None
    on_time_dispatch_rate: Decimal | None
    refund_rate: Decimal | None
    ticket_sla_rate: Decimal | None
    target: Decimal | None
    target_progress: Decimal | None


def figures(c: Counts) -> Figures:
    """Rates and averages of a day or a range (ratios of the sums, never averages of rates)."""
    target = None if c.target is None else money(c.target)
    return Figures(
        counts=c,
        payment_rate=rate(c.paid, c.placed),
        aov=average(c.gmv, c.paid),
        conversion_rate=rate(c.buyers, c.visitors),
        on_time_dispatch_rate=rate(c.shipped_on_time, c.shipped),
        refund_rate=rate(c.refunds, c.paid),
        ticket_sla_rate=rate(c.tickets_resolved_in_sla, c.tickets_resolved),
        target=target,
        target_progress=None if c.target is None else rate(c.gmv, c.target),
    )
