"""The floor check (DOMAIN.md §5): the worst unit price promotions on together can give.

The worst case: the lowest item-level price ``P``; then the order-level discount at its
steepest share ``off / max(min_spend, P)`` over all tiers (other SKUs can fill the cart up
to ``min_spend``, but the cart holds at least this line), the best single one or every
stackable one together; then the coupon the same way on the discounted price. Exactly the
floor is allowed. Exact fractions, no rounding until the price is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from app.domain.promotion.rules import ITEM_LEVEL, Kind, Promo, percent_price
from app.domain.promotion.schedule import overlaps


def _item_low(promo: Promo, sku_id: int, price: int) -> int:
    rules = promo.rules
    if promo.kind in (Kind.SPECIAL_PRICE, Kind.GROUP_BUY):
        return int(rules["prices"][sku_id])
    if promo.kind is Kind.PERCENT_OFF:
        return percent_price(price, rules["bp"])
    return percent_price(price, max(bp for _, bp in rules["tiers"]))


def _share(off: int, min_spend: int, price: Fraction) -> Fraction:
    base = max(Fraction(min_spend), price)
    if base <= 0:
        return Fraction(0)
    return min(Fraction(1), Fraction(off) / base)


def _order_share(promo: Promo, price: Fraction) -> Fraction:
    if promo.kind is Kind.AMOUNT_OFF:
        return _share(int(promo.rules["amount"]), 0, price)
    return max(_share(off, min_spend, price) for min_spend, off in promo.rules["tiers"])


def worst_price(sku_id: int, price: int, promos: Sequence[Promo]) -> Fraction:
    """The lowest unit price (cents, exact) ``promos`` on together can give ``sku_id``."""
    mine = [p for p in promos if p.covers(sku_id)]
    low = min([price, *(_item_low(p, sku_id, price) for p in mine if p.kind in ITEM_LEVEL)])
    worst = Fraction(low)
    shares = [
        (p, _order_share(p, worst)) for p in mine if p.kind in (Kind.THRESHOLD_OFF, Kind.AMOUNT_OFF)
    ]
    if shares:
        single = max(s for _, s in shares)
        stacked = sum((s for p, s in shares if p.stackable), Fraction(0))
        worst *= 1 - min(Fraction(1), max(single, stacked))
    coupons = [
        _share(int(p.rules["amount"]), int(p.rules["min_spend"]), worst)
        for p in mine
        if p.kind is Kind.COUPON
    ]
    if coupons:
        worst *= 1 - max(coupons)
    return worst


@dataclass(frozen=True, slots=True)
class Breach:
    """A SKU a set of promotions could sell under its floor (prices in cents)."""

    sku_id: int
    floor: int
    worst: Fraction

    @property
    def worst_cents(self) -> int:
        """The worst price rounded down to the cent (what the error shows)."""
        return self.worst.numerator // self.worst.denominator


@dataclass(frozen=True, slots=True)
class SkuPrice:
    """A SKU's list price and effective floor (cents; floor None: no floor)."""

    sku_id: int
    price: int
    floor: int | None


def check(new: Promo, others: Sequence[Promo], skus: Sequence[SkuPrice]) -> list[Breach]:
    """SKUs that ``new``, with every promotion on at some same instant, could price under
    their floor; ``others`` are the store's live promotions (``new``'s old self excluded)."""
    if new.kind not in PRICING_KINDS:
        return []
    together = [new, *(p for p in others if overlaps(p.timing, new.timing))]
    out = []
    for sku in skus:
        if sku.floor is None or not new.covers(sku.sku_id):
            continue
        worst = worst_price(sku.sku_id, sku.price, together)
        if worst < sku.floor:
            out.append(Breach(sku.sku_id, sku.floor, worst))
    return out


def check_sku(sku: SkuPrice, live: Sequence[Promo]) -> Breach | None:
    """Whether a SKU's (new) price and floor stay safe under its live promotions: for each
    one, with every other one it can be on together with."""
    if sku.floor is None:
        return None
    mine = [p for p in live if p.covers(sku.sku_id) and p.kind in PRICING_KINDS]
    worst: Fraction | None = None
    for promo in mine:
        together = [
            promo,
            *(p for p in mine if p is not promo and overlaps(p.timing, promo.timing)),
        ]
        low = worst_price(sku.sku_id, sku.price, together)
        worst = low if worst is None else min(worst, low)
    if worst is not None and worst < sku.floor:
        return Breach(sku.sku_id, sku.floor, worst)
    return None


PRICING_KINDS = ITEM_LEVEL | {Kind.THRESHOLD_OFF, Kind.AMOUNT_OFF, Kind.COUPON}
