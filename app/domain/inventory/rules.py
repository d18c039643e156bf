"""Pure stock rules (DOMAIN.md §3): velocity, thresholds, reorder point, replenishment."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

VELOCITY_WINDOW_DAYS = 28
HOT_PER_DAY = Decimal(5)
SLOW_PER_DAY = Decimal("0.2")
DEFAULT_LEAD_TIME_DAYS = 7
DEFAULT_COVER_DAYS = 14


class VelocityClass(StrEnum):
    """热销 / 常销 / 滞销."""

    HOT = "hot"
    REGULAR = "regular"
    SLOW = "slow"


SAFETY_DAYS = {VelocityClass.HOT: 7, VelocityClass.REGULAR: 3, VelocityClass.SLOW: 1}


def avg_daily_sales(units_shipped: int, window_days: int = VELOCITY_WINDOW_DAYS) -> Decimal:
    """Average daily units over the window, exact (rounded only for display)."""
    return Decimal(units_shipped) / Decimal(window_days)


def velocity_class(avg: Decimal) -> VelocityClass:
    """``hot`` ≥ 5/day, ``slow`` < 0.2/day, otherwise ``regular``."""
    if avg >= HOT_PER_DAY:
        return VelocityClass.HOT
    if avg < SLOW_PER_DAY:
        return VelocityClass.SLOW
    return VelocityClass.REGULAR


def _ceil(value: Decimal) -> int:
    return math.ceil(value)


@dataclass(frozen=True, slots=True)
class StockFigures:
    """Everything the read models show about a SKU's stock."""

    on_hand: int
    reserved: int
    available: int
    avg_daily_sales: Decimal
    velocity_class: VelocityClass
    lead_time_days: int
    safety_days: int
    reorder_point: int
    threshold: int
    low_stock: bool


def stock_figures(
    *,
    on_hand: int,
    reserved: int,
    units_shipped_28d: int,
    low_stock_threshold: int | None,
    lead_time_days: int | None,
    safety_days: int | None,
) -> StockFigures:
    """Derive availability, velocity, reorder point and low-stock state of a SKU."""
    avg = avg_daily_sales(units_shipped_28d)
    cls = velocity_class(avg)
    lead = DEFAULT_LEAD_TIME_DAYS if lead_time_days is None else lead_time_days
    safety = SAFETY_DAYS[cls] if safety_days is None else safety_days
    reorder = reorder_point(avg, lead, safety)
    threshold = reorder if low_stock_threshold is None else low_stock_threshold
    available = on_hand - reserved
    return StockFigures(
        on_hand=on_hand,
        reserved=reserved,
        available=available,
        avg_daily_sales=avg,
        velocity_class=cls,
        lead_time_days=lead,
        safety_days=safety,
        reorder_point=reorder,
        threshold=threshold,
        low_stock=is_low_stock(available, threshold),
    )


def reorder_point(avg: Decimal, lead_time_days: int, safety_days: int) -> int:
    """``ceil(avg_daily_sales × (lead_time_days + safety_days))``."""
    return _ceil(avg * (lead_time_days + safety_days))


def is_low_stock(available: int, threshold: int) -> bool:
    """A SKU is low when ``available ≤ threshold`` (DOMAIN.md §3).

    With no sales and no explicit threshold the threshold is 0, so only an empty SKU is low.
    """
    return available <= threshold


def is_replenished(status: str, delisted_by: str | None) -> bool:
    """Whether a SKU belongs in the stock reports: active or delisted for running out.

    A SKU delisted automatically is out of stock, often with buyers waiting: exactly what must
    be reordered. Only a SKU an operator delisted by hand is left out.
    """
    return status == "active" or delisted_by == "auto"


def suggested_qty(
    fig: StockFigures, *, backordered: int, cover_days: int = DEFAULT_COVER_DAYS
) -> int:
    """Units to order: enough for the waiting lines and to end above the low-stock threshold.

    ``max(0, max(ceil(avg × (lead + safety + cover)), threshold + 1) − available + backordered)``.
    DOMAIN.md §3 orders up to ``ceil(avg × (lead + safety + cover))``; that alone can be at or
    under the threshold (an explicit ``low_stock_threshold`` above the need, a trickle of sales,
    an empty SKU that never sold), so a low-stock SKU got 0. The order-up-to level is therefore
    at least ``threshold + 1``: a SKU that is low always gets a positive suggestion, and what it
    suggests brings it out of low stock once the backorders are served.
    """
    need = _ceil(fig.avg_daily_sales * (fig.lead_time_days + fig.safety_days + cover_days))
    target = max(need, fig.threshold + 1)
    return max(0, target - fig.available + backordered)


def days_of_cover(
    available: int, units_shipped: int, window_days: int = VELOCITY_WINDOW_DAYS
) -> Decimal | None:
    """``available / avg_daily_sales``, one place rounded half up; None when nothing sells.

    Computed as ``available × window / units`` from integers: dividing by the rounded
    ``avg_daily_sales`` turned exact halves such as 5.25 into 5.2499… (shown 5.2), and the
    replenishment table sorts on this value in SQL, which must agree to the digit.
    """
    if units_shipped == 0:
        return None
    exact = Decimal(available * window_days) / Decimal(units_shipped)
    return exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def display_avg(avg: Decimal) -> Decimal:
    """Average daily sales as shown (4 places)."""
    return avg.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Transitions:
    """What a change of availability triggers (DOMAIN.md §3: low stock, out of stock, delist)."""

    low: bool | None = None
    """True: crossed into low stock (emit ``stock.low``); False: recovered (re-arm)."""
    out: bool | None = None
    """True: ran out (emit ``stock.out``); False: stock returned (re-arm)."""
    delist: bool = False
    relist: bool = False

    @property
    def any(self) -> bool:
        """Whether anything must be written."""
        return self.low is not None or self.out is not None or self.delist or self.relist


def _crossing(now: bool, notified: bool) -> bool | None:
    """True when a condition newly holds, False when it newly stopped, else None."""
    return None if now == notified else now


def stock_transitions(
    *,
    available: int,
    threshold: int,
    low_notified: bool,
    out_notified: bool,
    status: str,
    delisted_by: str | None,
) -> Transitions:
    """Crossings since the last notification, with hysteresis; manual delists are kept."""
    low_now = is_low_stock(available, threshold)
    out_now = available <= 0
    return Transitions(
        low=_crossing(low_now, low_notified),
        out=_crossing(out_now, out_notified),
        delist=out_now and status == "active",
        relist=not out_now and status == "delisted" and delisted_by == "auto",
    )
