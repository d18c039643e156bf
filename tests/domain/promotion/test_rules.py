"""The pricing engine and the floor check (DOMAIN.md §5), table-driven, plus properties."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.promotion import floor
from app.domain.promotion.rules import CartLine, Kind, Promo, engine_rules, quote, split
from app.domain.promotion.schedule import Timing, Weekly
from tests.helpers import vector_cases

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)  # Monday 12:00 in Shanghai
ALWAYS = Timing(T0 - timedelta(days=30), T0 + timedelta(days=30), None, SH)


def promo(
    ident: int,
    kind: str,
    rules: dict[str, Any],
    *,
    skus: set[int] | None = None,
    timing: Timing = ALWAYS,
    stackable: bool = False,
) -> Promo:
    k = Kind(kind)
    return Promo(
        ident,
        k,
        engine_rules(k, rules),
        None if skus is None else frozenset(skus),
        timing,
        stackable,
    )


# ---------------------------------------------------------------------------------------------
# The shared floor vectors: one SKU, price 100.00, floor 70.00, promotions on every SKU.


@pytest.mark.parametrize("case", vector_cases("promotion_floor"), ids=lambda c: c["new"]["kind"])
def test_floor_vectors(case: dict[str, Any]) -> None:
    def make(n: int, spec: dict[str, Any]) -> Promo:
        rules = dict(spec["rules"])
        if "prices" in rules:
            rules["prices"] = {"1": rules["prices"]["SKU"]}
        return promo(n, spec["kind"], rules)

    active = [make(n + 10, a) for n, a in enumerate(case["active"])]
    new = make(1, case["new"])
    sku = floor.SkuPrice(1, 10_000, 7_000)
    worst = floor.worst_price(1, 10_000, [new, *active])
    assert Decimal(worst.numerator) / worst.denominator / 100 == Decimal(case["worst_unit_price"])
    breaches = floor.check(new, active, [sku])
    assert ("below_floor_price" if breaches else "ok") == case["expect"]


# ---------------------------------------------------------------------------------------------
# Item level: the lowest unit price per line wins.


def test_item_level_lowest_price_wins_per_line() -> None:
    cart = [CartLine(1, 1, 10_000), CartLine(2, 2, 5_000)]
    promos = [
        promo(1, "percent_off", {"percent": 10}),
        promo(2, "special_price", {"prices": {"1": "85.00"}}),
    ]
    q = quote(cart, promos, T0)
    assert [line.item_price for line in q.lines] == [8_500, 4_500]
    assert q.discount_of(2) == 1_500
    assert q.discount_of(1) == 1_000
    assert q.total == 8_500 + 9_000


@pytest.mark.parametrize(
    ("qty", "price"),
    [(1, 10_000), (2, 9_000), (3, 9_000), (4, 8_000), (9, 8_000)],
)
def test_multi_buy_tier_boundaries(qty: int, price: int) -> None:
    p = promo(
        1, "multi_buy", {"tiers": [{"min_qty": 2, "percent": 10}, {"min_qty": 4, "percent": 20}]}
    )
    q = quote([CartLine(1, qty, 10_000)], [p], T0)
    assert q.lines[0].item_price == price


def test_group_buy_only_when_buying_as_a_group() -> None:
    p = promo(1, "group_buy", {"group_size": 3, "prices": {"1": "60.00"}})
    assert quote([CartLine(1, 1, 10_000)], [p], T0).total == 10_000
    assert quote([CartLine(1, 1, 10_000)], [p], T0, group_buy=True).total == 6_000


@pytest.mark.parametrize(
    ("subtotal", "off"),
    [(19_999, 0), (20_000, 2_000), (29_999, 2_000), (30_000, 5_000), (90_000, 5_000)],
)
def test_threshold_tier_boundaries(subtotal: int, off: int) -> None:
    p = promo(
        1,
        "threshold_off",
        {
            "tiers": [
                {"min_spend": "200.00", "off": "20.00"},
                {"min_spend": "300.00", "off": "50.00"},
            ]
        },
    )
    q = quote([CartLine(1, 1, subtotal)], [p], T0)
    assert q.discount == off


def test_order_level_best_one_unless_stacking_gives_more() -> None:
    cart = [CartLine(1, 1, 30_000)]
    a = promo(1, "amount_off", {"amount": "30.00"}, stackable=True)
    b = promo(2, "amount_off", {"amount": "20.00"}, stackable=True)
    c = promo(3, "amount_off", {"amount": "40.00"})
    assert quote(cart, [a, c], T0).discount == 4_000  # c alone beats a
    assert quote(cart, [a, b, c], T0).discount == 5_000  # a + b stacked beat c
    assert quote(cart, [a, b], T0).discount == 5_000


def test_order_discount_spread_pro_rata_with_remainder_on_largest_line() -> None:
    cart = [CartLine(1, 1, 10_000), CartLine(2, 1, 20_000), CartLine(3, 1, 3_333)]
    q = quote(cart, [promo(1, "amount_off", {"amount": "10.00"})], T0)
    cuts = [line.unit_price - line.total for line in q.lines]
    assert sum(cuts) == 1_000
    # 1000 × 10000/33333 = 300.003 → 300; 600.006 → 600; 99.99 → 99; remainder 1 on line 2.
    assert cuts == [300, 601, 99]


def test_coupon_after_min_spend_on_discounted_subtotal() -> None:
    cart = [CartLine(1, 1, 10_000)]
    pct = promo(1, "percent_off", {"percent": 20})
    coupon = promo(9, "coupon", {"amount": "10.00", "min_spend": "90.00"})
    q = quote(cart, [pct], T0, coupon=coupon)
    assert not q.coupon_applied
    assert q.coupon_reason == "min_spend_not_met"
    assert q.total == 8_000
    q = quote(cart, [], T0, coupon=coupon)
    assert q.coupon_applied
    assert q.total == 9_000


def test_engine_never_prices_under_floor_and_says_so() -> None:
    cart = [CartLine(1, 1, 10_000, floor=9_000)]
    q = quote(cart, [promo(1, "percent_off", {"percent": 50})], T0)
    assert q.lines[0].total == 9_000
    assert q.lines[0].clamped
    q = quote(cart, [promo(2, "amount_off", {"amount": "30.00"})], T0)
    assert q.lines[0].total == 9_000
    assert q.lines[0].clamped
    assert q.discount_of(2) == 1_000


def test_gift_and_free_shipping_beside_prices() -> None:
    cart = [CartLine(1, 2, 10_000)]
    gift = promo(1, "gift", {"min_spend": "150.00", "gift_sku_id": "5"})
    ship = promo(2, "free_shipping", {"min_spend": "199.00"})
    q = quote(cart, [gift, ship], T0, shipping_fee=800)
    assert [(g.promotion_id, g.sku_id) for g in q.gifts] == [(1, 5)]
    assert q.shipping_fee == 0
    assert q.discount_of(2) == 800
    assert q.total == 20_000


def test_split_proportional_and_even() -> None:
    assert split(1_000, [1, 1, 1]) == [333, 333, 334] or split(1_000, [1, 1, 1]) == [334, 333, 333]
    assert split(1_000, [0, 0]) == [500, 500]
    assert split(1_001, [3, 1]) == [751, 250]


# ---------------------------------------------------------------------------------------------
# Schedules in store time, across midnight and across the zone.


def _weekly(days: set[int], start: str, end: str, tz: Any = SH) -> Timing:
    return Timing(
        T0 - timedelta(days=30),
        T0 + timedelta(days=30),
        Weekly(frozenset(days), time.fromisoformat(start), time.fromisoformat(end)),
        tz,
    )


def _at(local: str, tz: Any = SH) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize(
    ("local", "on"),
    [
        ("2026-11-03T21:59", False),  # Tuesday before the window
        ("2026-11-03T22:00", True),
        ("2026-11-03T23:59", True),
        ("2026-11-04T00:00", True),  # Wednesday: the Tuesday window crosses midnight
        ("2026-11-04T01:59", True),
        ("2026-11-04T02:00", False),
        ("2026-11-04T22:30", False),  # Wednesday is not listed
        ("2026-11-02T01:00", False),  # Monday early: Sunday is not listed
    ],
)
def test_window_across_midnight(local: str, on: bool) -> None:
    p = promo(1, "percent_off", {"percent": 10}, timing=_weekly({2}, "22:00", "02:00"))
    assert (quote([CartLine(1, 1, 10_000)], [p], _at(local)).total == 9_000) is on


def test_schedule_is_in_store_time_not_utc() -> None:
    # Thursday 00:00-23:59 in Shanghai is Wednesday 16:00 UTC onwards.
    timing = _weekly({4}, "00:00", "23:59")
    p = promo(1, "free_shipping", {}, timing=timing)
    wed_utc_evening = datetime(2026, 11, 4, 17, 0, tzinfo=UTC)
    assert quote([CartLine(1, 1, 100)], [p], wed_utc_evening, shipping_fee=500).shipping_fee == 0
    ny = _weekly({4}, "00:00", "23:59", ZoneInfo("America/New_York"))
    p = promo(1, "free_shipping", {}, timing=ny)
    assert quote([CartLine(1, 1, 100)], [p], wed_utc_evening, shipping_fee=500).shipping_fee == 500


def test_overlap_is_exact_with_schedules() -> None:
    tue = _weekly({2}, "22:00", "02:00")
    wed_early = _weekly({3}, "01:00", "03:00")
    wed_late = _weekly({3}, "02:00", "04:00")
    thu = _weekly({4}, "00:00", "23:00")
    from app.domain.promotion.schedule import overlaps

    assert overlaps(tue, wed_early)
    assert not overlaps(tue, wed_late)
    assert not overlaps(tue, thu)
    assert overlaps(tue, ALWAYS)
    later = Timing(T0 + timedelta(days=40), T0 + timedelta(days=41), None, SH)
    assert not overlaps(ALWAYS, later)


def test_floor_check_ignores_promotions_never_on_together() -> None:
    sku = floor.SkuPrice(1, 10_000, 7_000)
    tue = promo(1, "percent_off", {"percent": 25}, timing=_weekly({2}, "00:00", "23:59"))
    thu = promo(2, "amount_off", {"amount": "10.00"}, timing=_weekly({4}, "00:00", "23:59"))
    assert floor.check(thu, [tue], [sku]) == []
    also_tue = promo(3, "amount_off", {"amount": "10.00"}, timing=_weekly({2}, "12:00", "13:00"))
    assert [b.sku_id for b in floor.check(also_tue, [tue], [sku])] == [1]
    assert floor.check_sku(floor.SkuPrice(1, 10_000, 7_600), [tue]) is not None
    assert floor.check_sku(floor.SkuPrice(1, 10_000, 7_500), [tue, thu]) is None


# ---------------------------------------------------------------------------------------------
# Properties over random carts and promotion sets.

prices = st.integers(min_value=1, max_value=100_000)


@st.composite
def promotions(draw: st.DrawFn, skus: list[int]) -> list[Promo]:
    out = []
    for n in range(draw(st.integers(0, 6))):
        kind = draw(
            st.sampled_from(
                [
                    "percent_off",
                    "special_price",
                    "multi_buy",
                    "threshold_off",
                    "amount_off",
                    "group_buy",
                ]
            )
        )
        if kind == "percent_off":
            rules: dict[str, Any] = {"percent": draw(st.integers(1, 99))}
        elif kind in ("special_price", "group_buy"):
            chosen = draw(st.lists(st.sampled_from(skus), min_size=1, unique=True))
            rules = {"prices": {str(s): str(Decimal(draw(prices)) / 100) for s in chosen}}
            if kind == "group_buy":
                rules["group_size"] = 2
        elif kind == "multi_buy":
            rules = {
                "tiers": [
                    {"min_qty": 2, "percent": draw(st.integers(1, 49))},
                    {"min_qty": 3, "percent": 50},
                ]
            }
        elif kind == "threshold_off":
            rules = {
                "tiers": [
                    {
                        "min_spend": str(Decimal(draw(prices)) / 100),
                        "off": str(Decimal(draw(prices)) / 100),
                    }
                ]
            }
        else:
            rules = {"amount": str(Decimal(draw(prices)) / 100)}
        out.append(promo(n + 1, kind, rules, stackable=draw(st.booleans())))
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[CartLine], list[Promo], Promo | None, int]:
    skus = [1, 2, 3, 4]
    cart = [
        CartLine(
            s,
            draw(st.integers(1, 5)),
            p := draw(prices),
            draw(st.one_of(st.none(), st.integers(0, p))),
        )
        for s in draw(st.lists(st.sampled_from(skus), min_size=1, max_size=4, unique=True))
    ]
    coupon = None
    if draw(st.booleans()):
        coupon = promo(
            99,
            "coupon",
            {
                "amount": str(Decimal(draw(prices)) / 100),
                "min_spend": str(Decimal(draw(st.integers(0, 100_000))) / 100),
            },
        )
    return cart, draw(promotions(skus)), coupon, draw(st.integers(0, 2_000))


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.booleans())
def test_quote_properties(scenario: Any, group: bool) -> None:
    cart, promos, coupon, shipping = scenario
    q = quote(cart, promos, T0, group_buy=group, coupon=coupon, shipping_fee=shipping)
    for line, c in zip(q.lines, cart, strict=True):
        floor_ = c.floor or 0
        assert line.total >= min(floor_, c.unit_price) * c.quantity
        assert line.final_unit_price >= min(floor_, c.unit_price)
    assert q.total == sum(line.total for line in q.lines) + q.shipping_fee
    assert q.discount == q.subtotal - sum(line.total for line in q.lines)
    assert q == quote(cart, promos, T0, group_buy=group, coupon=coupon, shipping_fee=shipping)


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.booleans())
def test_floor_check_accepted_sets_never_break_a_floor(scenario: Any, group: bool) -> None:
    cart, promos, coupon, _ = scenario
    everything = [*promos, *([coupon] if coupon else [])]
    skus = [floor.SkuPrice(c.sku_id, c.unit_price, c.floor) for c in cart]
    # Promotions accepted one by one, each checked against those accepted before it.
    accepted: list[Promo] = []
    for p in everything:
        if not floor.check(p, accepted, skus):
            accepted.append(p)
    kept_coupon = next((p for p in accepted if p.kind is Kind.COUPON), None)
    q = quote(
        cart,
        [p for p in accepted if p.kind is not Kind.COUPON],
        T0,
        group_buy=group,
        coupon=kept_coupon,
    )
    for line, c in zip(q.lines, cart, strict=True):
        assert not line.clamped or c.floor is None or c.floor > c.unit_price, (line, c)
        if c.floor is not None:
            assert Fraction(line.total, c.quantity) >= min(c.floor, c.unit_price)
