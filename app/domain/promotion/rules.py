"""The pricing engine (DOMAIN.md §5): pure functions over integer cents, no I/O.

It takes the cart (SKU, quantity, unit price, floor), the promotions, and an instant:

1. item level (``special_price``, ``group_buy`` when buying as a group, ``percent_off``,
   ``multi_buy``): each line gets the single lowest unit price offered;
2. order level (``threshold_off``, ``amount_off``) on the item-level subtotal of the lines
   each applies to: the best one, or every stackable one together when that gives more;
3. one ``coupon``, its ``min_spend`` checked on the subtotal left after 1 and 2.

Order discounts are spread over their lines pro rata (the rounding remainder on the
largest line). No line is ever priced under its floor: a discount that would push it
there is cut, and the line says ``clamped``. ``gift`` and ``free_shipping`` apply beside
prices. Money is integer cents throughout; percents are basis points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app.domain.promotion.schedule import Timing, is_on


class Kind(StrEnum):
    """Promotion kinds (DOMAIN.md §5)."""

    PERCENT_OFF = "percent_off"
    MULTI_BUY = "multi_buy"
    THRESHOLD_OFF = "threshold_off"
    AMOUNT_OFF = "amount_off"
    GIFT = "gift"
    FREE_SHIPPING = "free_shipping"
    SPECIAL_PRICE = "special_price"
    GROUP_BUY = "group_buy"
    COUPON = "coupon"


ITEM_LEVEL = frozenset({Kind.SPECIAL_PRICE, Kind.GROUP_BUY, Kind.PERCENT_OFF, Kind.MULTI_BUY})
ORDER_LEVEL = frozenset({Kind.THRESHOLD_OFF, Kind.AMOUNT_OFF})
PRICING = ITEM_LEVEL | ORDER_LEVEL | {Kind.COUPON}


def cents(amount: Decimal | str | int) -> int:
    """Two-place money as integer cents (exact)."""
    return int(Decimal(amount).scaleb(2).to_integral_exact())


def money(value: int) -> Decimal:
    """Integer cents as a two-place Decimal."""
    return Decimal(value).scaleb(-2)


def basis_points(percent: Decimal | str | int) -> int:
    """A percent with at most two places as basis points (``12.5`` → 1250)."""
    return int(Decimal(percent).scaleb(2).to_integral_exact())


def percent_price(unit: int, bp: int) -> int:
    """``unit`` less ``bp`` basis points, rounded half up to the cent."""
    return (unit * (10_000 - bp) * 2 + 10_000) // 20_000


@dataclass(frozen=True, slots=True)
class Promo:
    """A promotion as the engine sees it: rules in cents and basis points.

    ``rules`` per kind: ``percent_off {bp}``, ``amount_off {amount}``,
    ``threshold_off {tiers: ((min_spend, off), …)}``, ``multi_buy {tiers: ((min_qty, bp), …)}``,
    ``gift {min_spend, gift_sku_id}``, ``free_shipping {min_spend}``,
    ``special_price {prices: {sku_id: price}}``, ``group_buy {group_size, prices}``,
    ``coupon {amount, min_spend}``.
    """

    id: int
    kind: Kind
    rules: Mapping[str, Any]
    sku_ids: frozenset[int] | None
    timing: Timing
    stackable: bool = False

    def covers(self, sku_id: int) -> bool:
        """Whether the promotion applies to ``sku_id``."""
        if self.sku_ids is not None and sku_id not in self.sku_ids:
            return False
        if self.kind in (Kind.SPECIAL_PRICE, Kind.GROUP_BUY):
            return sku_id in self.rules["prices"]
        return True


def engine_rules(kind: Kind, rules: Mapping[str, Any]) -> dict[str, Any]:
    """Validated API rules (Decimals, string SKU keys allowed) in engine units."""
    if kind is Kind.PERCENT_OFF:
        return {"bp": basis_points(rules["percent"])}
    if kind in (Kind.AMOUNT_OFF,):
        return {"amount": cents(rules["amount"])}
    if kind is Kind.THRESHOLD_OFF:
        return {"tiers": tuple((cents(t["min_spend"]), cents(t["off"])) for t in rules["tiers"])}
    if kind is Kind.MULTI_BUY:
        return {
            "tiers": tuple((int(t["min_qty"]), basis_points(t["percent"])) for t in rules["tiers"])
        }
    if kind is Kind.GIFT:
        return {"min_spend": cents(rules["min_spend"]), "gift_sku_id": int(rules["gift_sku_id"])}
    if kind is Kind.FREE_SHIPPING:
        return {"min_spend": cents(rules.get("min_spend") or 0)}
    if kind in (Kind.SPECIAL_PRICE, Kind.GROUP_BUY):
        out: dict[str, Any] = {"prices": {int(k): cents(v) for k, v in rules["prices"].items()}}
        if kind is Kind.GROUP_BUY:
            out["group_size"] = int(rules["group_size"])
        return out
    return {"amount": cents(rules["amount"]), "min_spend": cents(rules["min_spend"])}


@dataclass(frozen=True, slots=True)
class CartLine:
    """A cart line: unit price and floor in cents (floor None: no floor)."""

    sku_id: int
    quantity: int
    unit_price: int
    floor: int | None = None


@dataclass(slots=True)
class PricedLine:
    """A line after the engine: its unit price after item level and its final total."""

    sku_id: int
    quantity: int
    unit_price: int
    item_price: int
    total: int
    minimum: int
    clamped: bool = False

    @property
    def final_unit_price(self) -> int:
        """The line total per unit, rounded half up (never under the floor)."""
        return (self.total * 2 + self.quantity) // (2 * self.quantity)


@dataclass(frozen=True, slots=True)
class Applied:
    """A promotion that gave something: its discount in cents."""

    promotion_id: int
    kind: Kind
    discount: int


@dataclass(frozen=True, slots=True)
class Gift:
    """A gift a promotion adds to the order."""

    promotion_id: int
    sku_id: int
    quantity: int = 1


@dataclass(frozen=True, slots=True)
class Quote:
    """The engine's answer; ``coupon_applied`` False when a coupon was asked for but not met."""

    lines: list[PricedLine]
    applied: list[Applied]
    gifts: list[Gift]
    subtotal: int
    discount: int
    shipping_fee: int
    total: int
    coupon_applied: bool = False
    coupon_reason: str | None = None

    def discount_of(self, promotion_id: int) -> int:
        """The discount one promotion gave (0 if none)."""
        return sum(a.discount for a in self.applied if a.promotion_id == promotion_id)


def _item_price(promo: Promo, line: CartLine, units: int, group_buy: bool) -> int | None:
    rules = promo.rules
    if promo.kind is Kind.SPECIAL_PRICE:
        return int(rules["prices"][line.sku_id])
    if promo.kind is Kind.GROUP_BUY:
        return int(rules["prices"][line.sku_id]) if group_buy else None
    if promo.kind is Kind.PERCENT_OFF:
        return percent_price(line.unit_price, rules["bp"])
    best = None
    for min_qty, bp in rules["tiers"]:
        if units >= min_qty:
            best = bp
    return None if best is None else percent_price(line.unit_price, best)


def _order_discount(promo: Promo, subtotal: int) -> int:
    if promo.kind is Kind.AMOUNT_OFF:
        return min(int(promo.rules["amount"]), subtotal)
    off = 0
    for min_spend, tier_off in promo.rules["tiers"]:
        if subtotal >= min_spend:
            off = tier_off
    return min(off, subtotal)


def spread(lines: Sequence[PricedLine], indexes: Sequence[int], amount: int) -> int:
    """Take ``amount`` off the lines at ``indexes`` pro rata to their totals, the rounding
    remainder on the largest line, never under a line's minimum; the amount taken."""
    weights = [lines[i].total for i in indexes]
    whole = sum(weights)
    if whole <= 0 or amount <= 0:
        return 0
    amount = min(amount, whole)
    shares = [amount * w // whole for w in weights]
    largest = max(range(len(weights)), key=lambda k: (weights[k], -k))
    shares[largest] += amount - sum(shares)
    taken = 0
    for i, share in zip(indexes, shares, strict=True):
        line = lines[i]
        give = min(share, line.total - line.minimum)
        if give < share:
            line.clamped = True
        line.total -= give
        taken += give
    return taken


@dataclass(slots=True)
class _Ledger:
    applied: dict[int, list[Any]] = field(default_factory=dict)

    def add(self, promo: Promo, amount: int) -> None:
        if promo.id in self.applied:
            self.applied[promo.id][1] += amount
        else:
            self.applied[promo.id] = [promo.kind, amount]


def quote(
    cart: Sequence[CartLine],
    promos: Sequence[Promo],
    at: datetime,
    *,
    group_buy: bool = False,
    coupon: Promo | None = None,
    shipping_fee: int = 0,
) -> Quote:
    """Price ``cart`` at instant ``at`` with the promotions on then (DOMAIN.md §5)."""
    on = sorted((p for p in promos if is_on(p.timing, at)), key=lambda p: p.id)
    ledger = _Ledger()
    lines: list[PricedLine] = []
    # Which lines each promotion covers (once), and the units item-level ones cover.
    cover = {p.id: [i for i, c in enumerate(cart) if p.covers(c.sku_id)] for p in on}
    covered = [(p, set(cover[p.id])) for p in on if p.kind in ITEM_LEVEL]
    units_of = {p.id: sum(cart[i].quantity for i in idx) for p, idx in covered}
    for n, line in enumerate(cart):
        floor = line.floor if line.floor is not None else 0
        minimum = min(floor, line.unit_price)
        best, winner = line.unit_price, None
        for promo, idx in covered:
            if n not in idx:
                continue
            price = _item_price(promo, line, units_of[promo.id], group_buy)
            if price is not None and price < best:
                best, winner = price, promo
        clamped = best < minimum
        best = max(best, minimum)
        if winner is not None and best < line.unit_price:
            ledger.add(winner, (line.unit_price - best) * line.quantity)
        lines.append(
            PricedLine(
                line.sku_id,
                line.quantity,
                line.unit_price,
                best,
                best * line.quantity,
                minimum * line.quantity,
                clamped,
            )
        )
    _order_level(lines, on, cover, ledger)
    coupon_applied, reason = _coupon(lines, coupon, at, ledger)
    goods = sum(p.total for p in lines)
    gifts: list[Gift] = []
    shipping = shipping_fee
    for promo in on:
        if promo.kind not in (Kind.GIFT, Kind.FREE_SHIPPING):
            continue
        eligible = sum(lines[i].total for i in cover[promo.id])
        if promo.kind is Kind.GIFT and eligible >= promo.rules["min_spend"] and eligible > 0:
            gifts.append(Gift(promo.id, int(promo.rules["gift_sku_id"])))
            ledger.add(promo, 0)
        elif (
            promo.kind is Kind.FREE_SHIPPING
            and shipping > 0
            and eligible > 0
            and eligible >= promo.rules["min_spend"]
        ):
            ledger.add(promo, shipping)
            shipping = 0
    subtotal = sum(p.unit_price * p.quantity for p in lines)
    applied = [Applied(pid, kind, amount) for pid, (kind, amount) in ledger.applied.items()]
    return Quote(
        lines=lines,
        applied=applied,
        gifts=gifts,
        subtotal=subtotal,
        discount=subtotal - goods,
        shipping_fee=shipping,
        total=goods + shipping,
        coupon_applied=coupon_applied,
        coupon_reason=reason,
    )


def _order_level(
    lines: list[PricedLine], on: Sequence[Promo], cover: dict[int, list[int]], ledger: _Ledger
) -> None:
    offers = []
    for promo in on:
        if promo.kind not in ORDER_LEVEL:
            continue
        idx = cover[promo.id]
        off = _order_discount(promo, sum(lines[i].total for i in idx))
        if off > 0:
            offers.append((promo, idx, off))
    if not offers:
        return
    best = max(offers, key=lambda o: (o[2], -o[0].id))
    stacked = [o for o in offers if o[0].stackable]
    chosen = stacked if sum(o[2] for o in stacked) > best[2] else [best]
    for promo, idx, off in chosen:
        ledger.add(promo, spread(lines, idx, off))


def _coupon(
    lines: list[PricedLine], coupon: Promo | None, at: datetime, ledger: _Ledger
) -> tuple[bool, str | None]:
    if coupon is None:
        return False, None
    if not is_on(coupon.timing, at):
        return False, "not_active"
    idx = [i for i, p in enumerate(lines) if coupon.covers(p.sku_id)]
    eligible = sum(lines[i].total for i in idx)
    if not idx or eligible <= 0 or eligible < coupon.rules["min_spend"]:
        return False, "min_spend_not_met"
    ledger.add(coupon, spread(lines, idx, int(coupon.rules["amount"])))
    return True, None


def split(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` cents split in proportion to ``weights`` (evenly if they are all 0), the
    rounding remainder on the largest share."""
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    largest = max(range(len(weights)), key=lambda k: (weights[k], -k))
    shares[largest] += total - sum(shares)
    return shares
