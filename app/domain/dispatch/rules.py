"""Pure dispatch rules (DOMAIN.md §1–§2); ``now`` is always passed in."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from app.domain.store.rules import DispatchPolicy, LatePenalty

ZERO = Decimal("0.00")
# Clocks of phones, carriers and ERPs drift; an instant up to this far "in the future" is
# accepted (shipments, scans, group formation), no further: a device with a wrong clock can
# neither dodge a penalty nor block pickup scans (issue 8).
CLOCK_SKEW = timedelta(minutes=5)


class Risk(StrEnum):
    """Where an unshipped order stands against its dispatch deadline."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OVERDUE = "overdue"


def clock_start(
    paid_at: datetime | None, group_buy: bool, group_formed_at: datetime | None
) -> datetime | None:
    """Payment starts the clock; for a group buy (拼团), the group's formation does."""
    if group_buy:
        if paid_at is None or group_formed_at is None:
            return None
        # A buyer who joins a formed group starts the clock by paying.
        return max(paid_at, group_formed_at)
    return paid_at


def deadline(
    start: datetime | None, promised_ship_by: datetime | None, policy: DispatchPolicy
) -> datetime | None:
    """The platform's promised ship time if given, else clock start + dispatch hours."""
    if start is None:
        return None
    if promised_ship_by is not None:
        return promised_ship_by
    return start + timedelta(hours=policy.dispatch_hours)


def at_risk_from(start: datetime, due: datetime, policy: DispatchPolicy) -> datetime:
    """The instant an order turns at risk: min(internal target, half the window) after start."""
    return start + min(timedelta(hours=policy.internal_target_hours), (due - start) / 2)


def risk(start: datetime, due: datetime, now: datetime, policy: DispatchPolicy) -> Risk:
    """``overdue`` after the deadline; ``at_risk`` from :func:`at_risk_from`; else on track."""
    return risk_at(due, at_risk_from(start, due, policy), now)


def risk_at(due: datetime, at_risk: datetime, now: datetime) -> Risk:
    """Risk from a deadline and the instant the order turns at risk."""
    if now > due:
        return Risk.OVERDUE
    if now >= at_risk:
        return Risk.AT_RISK
    return Risk.ON_TRACK


def seconds_left(due: datetime, now: datetime) -> int:
    """Whole seconds until the deadline (negative once overdue)."""
    return math.floor((due - now).total_seconds())


def penalty(policy_penalty: LatePenalty, paid_amount: Decimal) -> Decimal:
    """The late-shipment penalty of one order (DOMAIN.md §1)."""
    return policy_penalty.amount(paid_amount)


def accrued_penalty(
    due: datetime | None, now: datetime, policy_penalty: LatePenalty, paid_amount: Decimal
) -> Decimal:
    """The penalty an unshipped order has accrued by ``now`` (0.00 until overdue)."""
    if due is None or now <= due:
        return ZERO
    return penalty(policy_penalty, paid_amount)


# Tracking numbers: 8–30 letters and digits (DOMAIN.md §2).
TRACKING_RE = re.compile(r"^[A-Za-z0-9]{8,30}$")

# Carrier patterns disagree between sources, so a mismatch is only a flag.
CARRIER_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "SF": (re.compile(r"^SF\d{13}$"), re.compile(r"^SF[A-Z0-9]\d{12}$")),
    "YTO": (re.compile(r"^YT\d{13}$"),),
    "JT": (re.compile(r"^JT\d{13}$"),),
    "ZTO": (re.compile(r"^7[3-8]\d{12}$"),),
    "STO": (re.compile(r"^77\d{13}$"), re.compile(r"^\d{12,13}$")),
    "YD": (re.compile(r"^\d{13,15}$"),),
    "EMS": (re.compile(r"^[A-Z]{2}\d{9}[A-Z]{2}$"), re.compile(r"^\d{13}$")),
    "JD": (re.compile(r"^JD[A-Z0-9]{11,13}$"),),
    "DBL": (re.compile(r"^DPK\d{12}$"), re.compile(r"^\d{10}$")),
}
CARRIERS = ("SF", "ZTO", "YTO", "STO", "YD", "JT", "EMS", "JD", "DBL", "OTHER")


def is_valid_tracking_number(number: str) -> bool:
    """8–30 characters, letters and digits only."""
    return TRACKING_RE.fullmatch(number) is not None


def tracking_matches_carrier(carrier: str, number: str) -> bool:
    """Whether ``number`` fits a known pattern of ``carrier`` (unknown carriers always fit)."""
    patterns = CARRIER_PATTERNS.get(carrier)
    if not patterns:
        return True
    return any(p.fullmatch(number) for p in patterns)


def is_fake_shipment_risk(
    shipped_at: datetime, picked_up_at: datetime | None, now: datetime, grace_hours: int
) -> bool:
    """No pickup scan within the grace period after shipping (虚假发货 risk)."""
    limit = shipped_at + timedelta(hours=grace_hours)
    if picked_up_at is not None:
        return picked_up_at > limit
    return now > limit


def auto_complete_at(
    shipped_at: datetime, delivered_at: datetime | None, auto_complete_days: int
) -> datetime:
    """Completion is due ``auto_complete_days`` after shipment, or 3 days after delivery."""
    by_shipment = shipped_at + timedelta(days=auto_complete_days)
    if delivered_at is None:
        return by_shipment
    return min(by_shipment, delivered_at + timedelta(days=3))
