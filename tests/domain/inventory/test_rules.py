"""Pure stock rules: every number of DOMAIN.md §3, the shared replenishment vectors, and the
low-stock / out-of-stock / delist transitions."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.inventory import rules
from app.domain.inventory.rules import VelocityClass
from tests.helpers import vector_cases

HOT, REGULAR, SLOW = VelocityClass.HOT, VelocityClass.REGULAR, VelocityClass.SLOW


def figures(
    units: int,
    *,
    on_hand: int = 0,
    reserved: int = 0,
    threshold: int | None = None,
    lead: int | None = None,
    safety: int | None = None,
) -> rules.StockFigures:
    """Stock figures of a SKU that shipped ``units`` in the last 28 days."""
    return rules.stock_figures(
        on_hand=on_hand,
        reserved=reserved,
        units_shipped_28d=units,
        low_stock_threshold=threshold,
        lead_time_days=lead,
        safety_days=safety,
    )


# ---------------------------------------------------------------------------------------------
# Defaults


def test_defaults() -> None:
    assert rules.VELOCITY_WINDOW_DAYS == 28
    assert rules.DEFAULT_LEAD_TIME_DAYS == 7
    assert rules.DEFAULT_COVER_DAYS == 14
    assert rules.HOT_PER_DAY == 5
    assert Decimal("0.2") == rules.SLOW_PER_DAY
    assert rules.SAFETY_DAYS == {HOT: 7, REGULAR: 3, SLOW: 1}


# ---------------------------------------------------------------------------------------------
# Velocity


@pytest.mark.parametrize(
    ("units", "expected_class"),
    [
        pytest.param(280, HOT, id="10-per-day"),
        pytest.param(140, HOT, id="exactly-5-per-day-is-hot"),
        pytest.param(139, REGULAR, id="just-under-5-per-day"),
        pytest.param(56, REGULAR, id="2-per-day"),
        pytest.param(6, REGULAR, id="6-units-0.214-per-day"),
        pytest.param(5, SLOW, id="5-units-0.178-per-day"),
        pytest.param(1, SLOW, id="one-unit"),
        pytest.param(0, SLOW, id="nothing-sold"),
    ],
)
def test_velocity_class_over_28_days(units: int, expected_class: VelocityClass) -> None:
    assert rules.velocity_class(rules.avg_daily_sales(units)) is expected_class
    assert figures(units).velocity_class is expected_class


@pytest.mark.parametrize(
    ("avg", "expected_class"),
    [
        (Decimal(5), HOT),
        (Decimal("4.9999"), REGULAR),
        (Decimal("0.2"), REGULAR),
        (Decimal("0.1999"), SLOW),
        (Decimal(0), SLOW),
    ],
)
def test_velocity_boundaries(avg: Decimal, expected_class: VelocityClass) -> None:
    assert rules.velocity_class(avg) is expected_class


def test_avg_is_exact_and_displayed_with_four_places() -> None:
    avg = rules.avg_daily_sales(3)
    assert avg == Decimal(3) / Decimal(28)
    assert rules.display_avg(avg) == Decimal("0.1071")
    assert str(rules.display_avg(rules.avg_daily_sales(280))) == "10.0000"
    assert str(rules.display_avg(rules.avg_daily_sales(60))) == "2.1429"  # 2.142857… half up
    assert rules.avg_daily_sales(14, window_days=7) == 2


# ---------------------------------------------------------------------------------------------
# Threshold and reorder point


@pytest.mark.parametrize(
    ("units", "expected_safety"),
    [
        pytest.param(140, 7, id="hot"),
        pytest.param(56, 3, id="regular"),
        pytest.param(3, 1, id="slow"),
    ],
)
def test_safety_days_by_class(units: int, expected_safety: int) -> None:
    fig = figures(units)
    assert fig.safety_days == expected_safety
    assert fig.lead_time_days == 7


def test_lead_time_and_safety_overrides() -> None:
    fig = figures(56, lead=10, safety=5)
    assert (fig.lead_time_days, fig.safety_days) == (10, 5)
    assert fig.reorder_point == 30  # 2/day × 15
    assert figures(56, lead=0, safety=0).reorder_point == 0


@pytest.mark.parametrize(
    ("units", "lead", "expected"),
    [
        pytest.param(280, None, 140, id="hot-10-per-day-x14"),
        pytest.param(140, None, 70, id="hot-5-per-day-x14"),
        pytest.param(56, 10, 26, id="regular-2-per-day-x13"),
        pytest.param(56, None, 20, id="regular-2-per-day-x10"),
        pytest.param(3, None, 1, id="slow-0.857-ceils-to-1"),
        pytest.param(6, None, 3, id="regular-0.214x10=2.14-ceils-to-3"),
        pytest.param(139, None, 50, id="regular-4.964x10=49.6-ceils-to-50"),
        pytest.param(0, None, 0, id="nothing-sold"),
    ],
)
def test_reorder_point_is_ceiled(units: int, lead: int | None, expected: int) -> None:
    fig = figures(units, lead=lead)
    assert fig.reorder_point == expected
    assert fig.threshold == expected


def test_reorder_point_formula() -> None:
    assert rules.reorder_point(Decimal(2), 7, 3) == 20
    assert rules.reorder_point(Decimal("2.01"), 7, 3) == 21
    assert rules.reorder_point(Decimal(0), 7, 7) == 0


@pytest.mark.parametrize("explicit", [0, 5, 500])
def test_explicit_threshold_wins(explicit: int) -> None:
    fig = figures(280, on_hand=300, threshold=explicit)
    assert fig.reorder_point == 140
    assert fig.threshold == explicit
    assert fig.low_stock is (explicit >= 300)


@pytest.mark.parametrize(
    ("available", "threshold", "low"),
    [(9, 10, True), (10, 10, True), (11, 10, False), (0, 0, True), (1, 0, False)],
)
def test_low_stock_at_or_under_threshold(available: int, threshold: int, low: bool) -> None:
    assert rules.is_low_stock(available, threshold) is low


def test_low_stock_uses_available_not_on_hand() -> None:
    # on_hand 200 is well above the reorder point 140, but 70 are reserved.
    fig = figures(280, on_hand=200, reserved=70)
    assert fig.available == 130
    assert fig.low_stock is True
    assert figures(280, on_hand=200, reserved=60).low_stock is True  # available 140 ≤ 140
    assert figures(280, on_hand=200, reserved=59).low_stock is False


def test_available_equal_to_reorder_point_is_low() -> None:
    assert figures(280, on_hand=140).low_stock is True
    assert figures(280, on_hand=141).low_stock is False


def test_nothing_sold_is_low_only_when_empty() -> None:
    assert figures(0, on_hand=0).low_stock is True
    assert figures(0, on_hand=1).low_stock is False


# ---------------------------------------------------------------------------------------------
# Replenishment


@pytest.mark.parametrize(
    ("units", "lead", "safety", "threshold", "available", "backordered", "expected"),
    [
        pytest.param(280, 7, 7, None, 50, 0, 230, id="hot-280-minus-50"),
        pytest.param(56, 10, 3, None, 5, 3, 52, id="backorders-add"),
        pytest.param(140, 7, 7, None, 200, 0, 0, id="never-negative"),
        pytest.param(140, 7, 7, None, 140, 0, 0, id="exactly-covered"),
        pytest.param(140, 7, 7, None, 139, 0, 1, id="one-short"),
        pytest.param(140, 7, 7, None, 200, 100, 40, id="backorders-beyond-stock"),
        pytest.param(3, 7, 1, None, 0, 0, 3, id="ceil-of-2.357"),
        # Low stock, yet the DOMAIN.md §3 need alone suggested 0: order up to threshold + 1.
        pytest.param(28, 7, 3, 100, 50, 0, 51, id="explicit-threshold-above-need"),
        pytest.param(28, 7, 3, 100, 100, 0, 1, id="at-explicit-threshold"),
        pytest.param(28, 7, 3, 100, 101, 0, 0, id="above-explicit-threshold"),
        pytest.param(1, 7, 1, None, 1, 0, 1, id="trickle-need-equals-reorder-point"),
        pytest.param(0, 7, 1, None, 0, 0, 1, id="never-sold-and-empty"),
        pytest.param(0, 7, 1, None, 4, 0, 0, id="never-sold-and-stocked"),
        pytest.param(0, 7, 1, None, 0, 4, 5, id="nothing-sells-backorders-and-one-more"),
        pytest.param(0, 7, 1, 10, 0, 4, 15, id="backorders-and-explicit-threshold"),
        pytest.param(56, 0, 0, 0, 0, 0, 28, id="no-lead-no-safety-still-covers-14-days"),
    ],
)
def test_suggested_qty(
    units: int,
    lead: int,
    safety: int,
    threshold: int | None,
    available: int,
    backordered: int,
    expected: int,
) -> None:
    fig = figures(units, on_hand=available, threshold=threshold, lead=lead, safety=safety)
    assert rules.suggested_qty(fig, backordered=backordered) == expected


def test_cover_days_default_is_14() -> None:
    fig = figures(28, lead=7, safety=7)  # 1/day
    assert rules.suggested_qty(fig, backordered=0) == 28  # 1/day × (7 + 7 + 14)
    assert rules.suggested_qty(fig, backordered=0, cover_days=0) == 15  # 14, or threshold + 1


@settings(max_examples=500, deadline=None)
@given(
    on_hand=st.integers(0, 2_000),
    reserved_share=st.floats(0, 1),
    units=st.integers(0, 3_000),
    threshold=st.none() | st.integers(0, 3_000),
    lead=st.none() | st.integers(0, 60),
    safety=st.none() | st.integers(0, 30),
    backordered=st.integers(0, 500),
)
def test_suggestion_brings_every_low_sku_out_of_low_stock(
    on_hand: int,
    reserved_share: float,
    units: int,
    threshold: int | None,
    lead: int | None,
    safety: int | None,
    backordered: int,
) -> None:
    """Low stock ⇒ a positive suggestion; what it suggests is the least that serves the
    backorders, ends above the threshold and is never under the DOMAIN.md §3 need."""
    reserved = int(on_hand * reserved_share)
    fig = figures(
        units, on_hand=on_hand, reserved=reserved, threshold=threshold, lead=lead, safety=safety
    )
    qty = rules.suggested_qty(fig, backordered=backordered)
    need = math.ceil(
        fig.avg_daily_sales * (fig.lead_time_days + fig.safety_days + rules.DEFAULT_COVER_DAYS)
    )
    assert qty >= max(0, need - fig.available + backordered)
    if fig.low_stock:
        assert qty > 0
    if qty > 0:
        after = fig.available + qty - backordered
        assert not rules.is_low_stock(after, fig.threshold)
        assert rules.is_low_stock(after - 1, fig.threshold) or after - 1 < need


@pytest.mark.parametrize(
    ("status", "delisted_by", "reported"),
    [
        pytest.param("active", None, True, id="active"),
        pytest.param("delisted", "auto", True, id="ran-out-delisted-automatically"),
        pytest.param("delisted", "manual", False, id="delisted-by-hand"),
    ],
)
def test_is_replenished(status: str, delisted_by: str | None, reported: bool) -> None:
    assert rules.is_replenished(status, delisted_by) is reported


@pytest.mark.parametrize(
    ("available", "units_28d", "expected"),
    [
        (50, 280, Decimal("5.0")),  # 10/day
        (0, 280, Decimal("0.0")),
        (10, 84, Decimal("3.3")),  # 3/day
        (5, 56, Decimal("2.5")),  # 2/day
        (1, 3, Decimal("9.3")),  # 9.333…
        (3, 224, Decimal("0.4")),  # 0.375 rounds half up
        (6, 32, Decimal("5.3")),  # exactly 5.25: half up (not 5.2499… from a rounded average)
        (10, 32, Decimal("8.8")),  # exactly 8.75
        (4, 0, None),
        (0, 0, None),
    ],
)
def test_days_of_cover(available: int, units_28d: int, expected: Decimal | None) -> None:
    got = rules.days_of_cover(available, units_28d)
    assert got == expected
    if expected is not None:
        assert str(got) == str(expected)


# ---------------------------------------------------------------------------------------------
# Shared vectors (tests/vectors/replenishment.json, a copy of shared/vectors/)


def _vector_cases() -> list[Any]:
    return [
        pytest.param(c, id=f"{c['units_shipped_last_28_days']}u-{c['available']}a")
        for c in vector_cases("replenishment")
    ]


@pytest.mark.parametrize("case", _vector_cases())
def test_replenishment_vector(case: dict[str, Any]) -> None:
    expect = case["expect"]
    fig = figures(
        case["units_shipped_last_28_days"],
        on_hand=case["available"],
        lead=case["lead_time_days"],
        threshold=case.get("low_stock_threshold"),
    )
    assert fig.available == case["available"]
    assert rules.display_avg(fig.avg_daily_sales) == Decimal(str(expect["avg_daily_sales"]))
    assert fig.velocity_class == expect["velocity_class"]
    assert fig.reorder_point == expect["reorder_point"]
    assert fig.threshold == case.get("low_stock_threshold", expect["reorder_point"])
    assert fig.low_stock is expect["low_stock"]
    suggested = rules.suggested_qty(fig, backordered=case["backordered"])
    assert suggested == expect["suggested_qty"]
    if fig.low_stock:
        assert suggested > 0


def test_vectors_are_present_and_cover_every_class() -> None:
    cases = vector_cases("replenishment")
    assert {c["expect"]["velocity_class"] for c in cases} == {"hot", "regular", "slow"}


# ---------------------------------------------------------------------------------------------
# Transitions: stock.low / stock.out with hysteresis, auto delist and relist


def transitions(
    available: int,
    *,
    threshold: int = 10,
    low_notified: bool = False,
    out_notified: bool = False,
    status: str = "active",
    delisted_by: str | None = None,
) -> rules.Transitions:
    """Transitions of a SKU at ``available`` (threshold 10 unless given)."""
    return rules.stock_transitions(
        available=available,
        threshold=threshold,
        low_notified=low_notified,
        out_notified=out_notified,
        status=status,
        delisted_by=delisted_by,
    )


@pytest.mark.parametrize(
    ("available", "low_notified", "expected_low"),
    [
        pytest.param(5, False, True, id="crosses-into-low"),
        pytest.param(10, False, True, id="at-threshold-is-low"),
        pytest.param(5, True, None, id="already-notified"),
        pytest.param(11, True, False, id="recovers-re-arms"),
        pytest.param(11, False, None, id="stays-above"),
    ],
)
def test_low_crossing(available: int, low_notified: bool, expected_low: bool | None) -> None:
    assert transitions(available, low_notified=low_notified).low is expected_low


def test_low_fires_once_and_rearms_after_recovery() -> None:
    """Walk availability up and down; count ``stock.low`` and ``stock.out`` firings."""
    low_notified = out_notified = False
    status, delisted_by = "active", None
    fired: list[str] = []
    for available in [20, 9, 8, 10, 11, 12, 3, 0, 0, 5, 50]:
        t = transitions(
            available,
            low_notified=low_notified,
            out_notified=out_notified,
            status=status,
            delisted_by=delisted_by,
        )
        if t.low is not None:
            low_notified = t.low
            if t.low:
                fired.append(f"low@{available}")
        if t.out is not None:
            out_notified = t.out
            if t.out:
                fired.append(f"out@{available}")
        if t.delist:
            status, delisted_by = "delisted", "auto"
            fired.append(f"delisted@{available}")
        if t.relist:
            status, delisted_by = "active", None
            fired.append(f"relisted@{available}")
    assert fired == ["low@9", "low@3", "out@0", "delisted@0", "relisted@5"]
    assert (low_notified, out_notified, status) == (False, False, "active")


def test_out_of_stock() -> None:
    t = transitions(0, low_notified=True)
    assert t.out is True
    assert t.delist is True
    assert t.low is None
    assert t.any
    assert transitions(0, low_notified=True, out_notified=True, status="delisted").any is False
    back = transitions(
        1, low_notified=True, out_notified=True, status="delisted", delisted_by="auto"
    )
    assert back.out is False
    assert back.relist is True
    assert back.low is None  # 1 ≤ 10: still low


def test_zero_threshold_out_of_stock_is_low_and_out() -> None:
    t = transitions(0, threshold=0)
    assert (t.low, t.out, t.delist) == (True, True, True)


def test_delist_only_when_active() -> None:
    assert transitions(0, status="active").delist is True
    assert transitions(0, status="delisted", delisted_by="auto").delist is False
    assert transitions(0, status="delisted", delisted_by="manual").delist is False
    assert transitions(5, status="active").delist is False


@pytest.mark.parametrize(
    ("delisted_by", "relist"),
    [
        pytest.param("auto", True, id="auto"),
        pytest.param("manual", False, id="manual"),
        (None, False),
    ],
)
def test_relist_only_auto_delists(delisted_by: str | None, relist: bool) -> None:
    t = transitions(5, out_notified=True, status="delisted", delisted_by=delisted_by)
    assert t.relist is relist
    assert t.delist is False


def test_relist_needs_stock() -> None:
    assert transitions(0, status="delisted", delisted_by="auto").relist is False
    assert transitions(5, status="active").relist is False


def test_manual_delist_is_kept() -> None:
    """A SKU an operator delisted by hand stays delisted through out-of-stock and restock."""
    for available in (0, 5, 100):
        t = transitions(available, status="delisted", delisted_by="manual")
        assert t.delist is False
        assert t.relist is False


def test_nothing_to_do() -> None:
    t = transitions(50)
    assert t == rules.Transitions()
    assert t.any is False
