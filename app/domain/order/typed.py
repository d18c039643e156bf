"""Intake bodies built in-process from typed values (marketplace adapters, snapshots).

:func:`typed_order` checks such a body against every rule of :class:`OrderCreate` (lengths,
patterns, ranges, amounts that fit ``numeric(14,2)``, paid not before placed) in plain
Python and returns the same values pydantic would produce (instants in UTC, money through
:func:`parse_money`) as a :class:`TypedOrder`; it returns None for anything it does not
vouch for (a JSON body with strings for times and money, a rule broken, a coupon), and the
caller then validates with pydantic, which names the error. Validating 1,000 mapped orders
with pydantic cost as much as mapping them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from app.domain.types import MAX_AMOUNT, MAX_ID, MAX_INSTANT, MIN_INSTANT, parse_money

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_PHONE = re.compile(r"\+?[0-9* -]{3,32}")
_ORDER_KEYS = frozenset(
    {
        "store_id",
        "external_id",
        "placed_at",
        "paid_at",
        "buyer",
        "items",
        "shipping_fee",
        "discount",
        "group_buy",
        "promised_ship_by",
        "allow_backorder",
    }
)
_BUYER_KEYS = frozenset({"name", "phone", "province", "city", "address", "platform_buyer_id"})
_LINE_KEYS = frozenset({"sku_code", "sku_id", "quantity", "unit_price"})
_GROUP_KEYS = frozenset({"group_id", "formed_at"})
_ZERO = Decimal("0.00")


class LineData(Protocol):
    """A checked order line: :class:`ItemIn` or :class:`TypedLine`."""

    @property
    def sku_code(self) -> str | None: ...
    @property
    def sku_id(self) -> int | None: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price(self) -> Decimal: ...


class BuyerData(Protocol):
    """A checked buyer: :class:`Buyer` or :class:`TypedBuyer`."""

    @property
    def name(self) -> str: ...
    @property
    def phone(self) -> str: ...
    @property
    def province(self) -> str: ...
    @property
    def city(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def platform_buyer_id(self) -> str | None: ...


class GroupData(Protocol):
    """A checked group buy: :class:`GroupBuyIn` or :class:`TypedGroup`."""

    @property
    def group_id(self) -> str: ...
    @property
    def formed_at(self) -> datetime | None: ...


class OrderData(Protocol):
    """A checked intake body: :class:`OrderCreate` or :class:`TypedOrder`."""

    @property
    def store_id(self) -> int: ...
    @property
    def external_id(self) -> str: ...
    @property
    def placed_at(self) -> datetime: ...
    @property
    def paid_at(self) -> datetime | None: ...
    @property
    def buyer(self) -> BuyerData: ...
    @property
    def items(self) -> Sequence[LineData]: ...
    @property
    def shipping_fee(self) -> Decimal: ...
    @property
    def discount(self) -> Decimal: ...
    @property
    def coupon_code(self) -> str | None: ...
    @property
    def promotion_ids(self) -> list[int] | None: ...
    @property
    def group_buy(self) -> GroupData | None: ...
    @property
    def promised_ship_by(self) -> datetime | None: ...
    @property
    def allow_backorder(self) -> bool: ...


@dataclass
class TypedBuyer:
    """:class:`Buyer`'s fields (a plain class: promotion limits read it with ``vars``)."""

    name: str
    phone: str
    province: str
    city: str
    address: str
    platform_buyer_id: str | None = None


@dataclass(slots=True)
class TypedLine:
    """:class:`ItemIn`'s fields."""

    sku_code: str | None
    sku_id: int | None
    quantity: int
    unit_price: Decimal


@dataclass(slots=True)
class TypedGroup:
    """:class:`GroupBuyIn`'s fields."""

    group_id: str
    formed_at: datetime | None


@dataclass(slots=True)
class TypedOrder:
    """:class:`OrderCreate`'s fields, checked by :func:`typed_order` (no coupon, no
    promotions: bodies naming them are validated by pydantic)."""

    store_id: int
    external_id: str
    placed_at: datetime
    paid_at: datetime | None
    buyer: TypedBuyer
    items: list[TypedLine]
    shipping_fee: Decimal
    discount: Decimal
    group_buy: TypedGroup | None
    promised_ship_by: datetime | None
    allow_backorder: bool
    coupon_code: None = None
    promotion_ids: None = None


class _Refused(Exception):
    """Not vouched for: pydantic decides (and names the error)."""


def typed_order(body: Any) -> TypedOrder | None:
    """``body`` as a :class:`TypedOrder` if it passes every :class:`OrderCreate` rule with
    typed values (ints, aware datetimes, Decimals), else None."""
    # A JSON body (a client's) has a string here: refused without raising (no allocation,
    # so bulk intake's own bodies cost nothing more).
    if type(body) is not dict or type(body.get("placed_at")) is not datetime:
        return None
    try:
        return _order(body)
    except (_Refused, KeyError, ValueError, ArithmeticError):  # OverflowError: extreme instants
        return None


def _order(body: Any) -> TypedOrder:
    if type(body) is not dict or not body.keys() <= _ORDER_KEYS:
        raise _Refused
    items = _lines(body["items"])
    subtotal = sum((line.unit_price * line.quantity for line in items), Decimal(0))
    fee = _money(body.get("shipping_fee", _ZERO))
    # Everything non-negative: this bound covers each line and the subtotal too.
    if subtotal + fee > MAX_AMOUNT:
        raise _Refused
    placed_at = _instant(body["placed_at"])
    paid_at = _optional_instant(body.get("paid_at"))
    if paid_at is not None and paid_at < placed_at:
        raise _Refused
    allow_backorder = body.get("allow_backorder", True)
    if type(allow_backorder) is not bool:
        raise _Refused
    return TypedOrder(
        store_id=_id(body["store_id"]),
        external_id=_matching(body["external_id"], _EXTERNAL_ID, 64),
        placed_at=placed_at,
        paid_at=paid_at,
        buyer=_buyer(body["buyer"]),
        items=items,
        shipping_fee=fee,
        discount=_money(body.get("discount", _ZERO)),
        group_buy=_group(body.get("group_buy")),
        promised_ship_by=_optional_instant(body.get("promised_ship_by")),
        allow_backorder=allow_backorder,
    )


def _lines(value: Any) -> list[TypedLine]:
    if type(value) is not list or not 1 <= len(value) <= 200:
        raise _Refused
    lines = []
    for line in value:
        if type(line) is not dict or not line.keys() <= _LINE_KEYS:
            raise _Refused
        code, sku_id = line.get("sku_code"), line.get("sku_id")
        if (code is None) == (sku_id is None):
            raise _Refused
        quantity = line["quantity"]
        if type(quantity) is not int or not 1 <= quantity <= 100_000:
            raise _Refused
        price = _money(line["unit_price"])
        lines.append(
            TypedLine(
                sku_code=None if code is None else _text(code, 64, _NUL),
                sku_id=None if sku_id is None else _id(sku_id),
                quantity=quantity,
                unit_price=price,
            )
        )
    return lines


def _buyer(value: Any) -> TypedBuyer:
    if type(value) is not dict or not value.keys() <= _BUYER_KEYS:
        raise _Refused
    platform_id = value.get("platform_buyer_id")
    return TypedBuyer(
        name=_text(value["name"], 200, _CONTROL),
        phone=_matching(value["phone"], _PHONE, 32),
        province=_text(value["province"], 200, _CONTROL),
        city=_text(value["city"], 200, _CONTROL),
        address=_text(value["address"], 500, _NUL),
        platform_buyer_id=None if platform_id is None else _text(platform_id, 200, _NUL),
    )


def _group(value: Any) -> TypedGroup | None:
    if value is None:
        return None
    if type(value) is not dict or not value.keys() <= _GROUP_KEYS:
        raise _Refused
    return TypedGroup(
        group_id=_text(value["group_id"], 64, _NUL),
        formed_at=_optional_instant(value.get("formed_at")),
    )


_NUL = re.compile("\x00")


def _text(value: Any, max_length: int, refused: re.Pattern[str]) -> str:
    if type(value) is not str or not 1 <= len(value) <= max_length or refused.search(value):
        raise _Refused
    return value


def _matching(value: Any, pattern: re.Pattern[str], max_length: int) -> str:
    if type(value) is not str or len(value) > max_length or pattern.fullmatch(value) is None:
        raise _Refused
    return value


def _id(value: Any) -> int:
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise _Refused
    return value


def _money(value: Any) -> Decimal:
    # The schema's own parser: the same Decimal (two places) or the same refusal.
    if type(value) is not Decimal:
        raise _Refused
    money = parse_money(value)
    if money < 0:
        raise _Refused
    return money


def _instant(value: Any) -> datetime:
    # Instant: aware, in UTC, inside the range the service computes with.
    if type(value) is not datetime or value.utcoffset() is None:
        raise _Refused
    utc = value.astimezone(UTC)
    if not MIN_INSTANT <= utc < MAX_INSTANT:
        raise _Refused
    return utc


def _optional_instant(value: Any) -> datetime | None:
    return None if value is None else _instant(value)
