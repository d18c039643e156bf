"""Platform default dispatch policies and how a store's overrides combine with them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class LatePenalty:
    """``clamp(rate × paid_amount, min, max)``; a fixed penalty is rate 0, min = max."""

    rate: Decimal
    min: Decimal
    max: Decimal

    def amount(self, paid_amount: Decimal) -> Decimal:
        """The penalty for one late order, rounded half up to the fen (DOMAIN.md §1)."""
        raw = self.rate * paid_amount
        return min(max(raw, self.min), self.max).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    """The effective dispatch policy of a store."""

    dispatch_hours: int
    internal_target_hours: int
    late_penalty: LatePenalty
    pickup_grace_hours: int
    auto_complete_days: int


def _fixed(amount: str) -> LatePenalty:
    return LatePenalty(Decimal("0"), Decimal(amount), Decimal(amount))


# DOMAIN.md §1: 48 h everywhere; penalties differ by platform.
_PENALTIES: dict[str, LatePenalty] = {
    "pdd": _fixed("3.00"),
    "taobao": LatePenalty(Decimal("0.10"), Decimal("5.00"), Decimal("100.00")),
    "tmall": LatePenalty(Decimal("0.10"), Decimal("5.00"), Decimal("100.00")),
    "douyin": _fixed("10.00"),
    "jd": _fixed("0.00"),
    "other": _fixed("0.00"),
}
DEFAULT_DISPATCH_HOURS = 48
DEFAULT_INTERNAL_TARGET_HOURS = 24
DEFAULT_PICKUP_GRACE_HOURS = 24
DEFAULT_AUTO_COMPLETE_DAYS = 10


def platform_default(platform: str) -> DispatchPolicy:
    """The default policy of a platform."""
    return DispatchPolicy(
        dispatch_hours=DEFAULT_DISPATCH_HOURS,
        internal_target_hours=DEFAULT_INTERNAL_TARGET_HOURS,
        late_penalty=_PENALTIES[platform],
        pickup_grace_hours=DEFAULT_PICKUP_GRACE_HOURS,
        auto_complete_days=DEFAULT_AUTO_COMPLETE_DAYS,
    )


def effective_policy(platform: str, overrides: dict[str, Any]) -> DispatchPolicy:
    """Platform defaults with the store's overrides on top (field by field)."""
    base = platform_default(platform)
    penalty_over = overrides.get("late_penalty") or {}
    penalty = LatePenalty(
        rate=Decimal(str(penalty_over.get("rate", base.late_penalty.rate))),
        min=Decimal(str(penalty_over.get("min", base.late_penalty.min))),
        max=Decimal(str(penalty_over.get("max", base.late_penalty.max))),
    )
    return DispatchPolicy(
        dispatch_hours=int(overrides.get("dispatch_hours", base.dispatch_hours)),
        internal_target_hours=int(
            overrides.get("internal_target_hours", base.internal_target_hours)
        ),
        late_penalty=penalty,
        pickup_grace_hours=int(overrides.get("pickup_grace_hours", base.pickup_grace_hours)),
        auto_complete_days=int(overrides.get("auto_complete_days", base.auto_complete_days)),
    )


def policy_problems(policy: DispatchPolicy) -> list[str]:
    """What makes a policy inconsistent (empty when it is fine)."""
    problems = []
    if policy.internal_target_hours > policy.dispatch_hours:
        problems.append("internal_target_hours must not exceed dispatch_hours")
    if policy.late_penalty.min > policy.late_penalty.max:
        problems.append("late_penalty.min must not exceed late_penalty.max")
    return problems


def is_valid_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
