"""ROI and its grade (DOMAIN.md §5): ``roi = gmv / (discount given + ad spend)``."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from app.domain.promotion.schemas import Grade


def roi(gmv: Decimal, cost: Decimal) -> Decimal | None:
    """GMV per yuan of cost, two decimals; None when nothing was spent."""
    if cost <= 0:
        return None
    return (gmv / cost).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def grade(gmv: Decimal, cost: Decimal) -> Grade | None:
    """``fail`` < 3, ``pass`` ≥ 3, ``good`` ≥ 4, ``excellent`` ≥ 5 on the exact ratio
    (None without an ROI)."""
    if cost <= 0:
        return None
    value = gmv / cost
    if value >= 5:
        return Grade.EXCELLENT
    if value >= 4:
        return Grade.GOOD
    if value >= 3:
        return Grade.PASS
    return Grade.FAIL
