"""Shared pieces of the platform adapters: exact money, Beijing time, the mapped form.

Every adapter is a pure function ``platform order object → Mapped`` that raises
:class:`MappingError` naming the platform field it could not read; the caller queues such
orders for review (nothing is dropped). Field names and meanings follow
``shared/research/marketplace_payloads.md`` (confirmed or observed only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

CENT = Decimal("0.01")
BEIJING = timezone(timedelta(hours=8))
# "No time" as the platforms write it: PDD "", JD 0001-01-01 / 1970-01-01 (research §4.5).
NO_TIME = frozenset({"", "0001-01-01 00:00:00", "1970-01-01 00:00:00"})
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
MAX_YUAN = Decimal("999999999999.99")  # numeric(14,2)
# The largest exponent an amount can have and still be quantized to cents within the
# default decimal context's 28 digits (larger ones are refused before quantizing).
_HUGE = 25
# Masked phones ("138****5521"), virtual numbers ("18877771111-123").
_PHONE = re.compile(r"^\+?[0-9* -]{3,32}$")
HIDDEN = "***"

PLATFORM_STATUSES = (
    "pending_payment",
    "awaiting_shipment",
    "group_pending",
    "group_failed",
    "refund_pending",
    "shipped",
    "delivered",
    "completed",
    "cancelled",
)


class MappingError(Exception):
    """A platform order that cannot be mapped; ``field`` names the platform field."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(f"{field}: {msg}")
        self.field = field
        self.msg = msg


@dataclass(slots=True)
class MappedLine:
    """A line as the platform gives it: our seller code and/or the platform's SKU id."""

    loc: str
    sku_code: str | None
    platform_sku_id: str | None
    quantity: int
    unit_price: Decimal


@dataclass(slots=True)
class MappedShipment:
    """A shipment the platform reports (made elsewhere): its carrier in the platform's code."""

    carrier_code: str | None
    tracking_number: str
    shipped_at: datetime | None


@dataclass(slots=True)
class Mapped:
    """A platform order in the canonical snapshot's terms (SKUs not yet resolved)."""

    external_id: str
    platform_status: str
    placed_at: datetime
    paid_at: datetime | None
    buyer: dict[str, Any]
    lines: list[MappedLine]
    shipping_fee: Decimal
    discount: Decimal
    group_buy: dict[str, Any] | None = None
    promised_ship_by: datetime | None = None
    buyer_memo: str | None = None
    urged_at: datetime | None = None
    shipment: MappedShipment | None = None
    delivered_at: datetime | None = None
    notes: list[str] = field(default_factory=list)


def obj(value: Any, name: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else a mapping error naming ``name``."""
    if not isinstance(value, dict):
        raise MappingError(name, "expected an object")
    return value


def text(value: Any, name: str, *, required: bool = False) -> str | None:
    """A string field (numbers become their digits: ids may come as either)."""
    if type(value) is str and value and "\x00" not in value:
        return value  # the common case first: mapping runs for every order of a batch
    if value is None or value == "":
        if required:
            raise MappingError(name, "missing")
        return None
    if isinstance(value, bool):
        raise MappingError(name, "expected a string")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    if not isinstance(value, str):
        raise MappingError(name, "expected a string")
    if "\x00" in value:
        raise MappingError(name, "contains NUL")
    return value


def integer(value: Any, name: str) -> int:
    """An integer given as a JSON number or a digit string (JD counts are strings)."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise MappingError(name, "expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise MappingError(name, "expected an integer")


def quantity(value: Any, name: str) -> int:
    """A line quantity: 1 to 100,000."""
    n = integer(value, name)
    if not 1 <= n <= 100_000:
        raise MappingError(name, "quantity must be 1 to 100000")
    return n


def yuan(value: Any, name: str, *, default: Decimal | None = None) -> Decimal:
    """Yuan as a JSON number (parsed as Decimal, never float) or a decimal string."""
    kind = type(value)
    amount: Decimal
    if kind is Decimal:  # the common case, kept cheap: a 1,000-order batch has ~5,000
        amount = value
    elif kind is int:
        amount = Decimal(value)
    elif kind is str and value.strip():
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise MappingError(name, "not a number") from None
    elif value is None or value == "":
        if default is not None:
            return default
        raise MappingError(name, "missing")
    else:
        # A float means the body was not parsed with Decimal: a bug upstream, not rounding.
        raise MappingError(name, "expected an amount (not a binary float)")
    if not amount.is_finite():
        raise MappingError(name, "not a number")
    if amount.adjusted() > _HUGE:  # 1e999: to cents it has more digits than Decimal holds
        raise MappingError(name, "negative amount" if amount < 0 else "too large")
    cents = amount.quantize(CENT)
    if cents != amount:
        raise MappingError(name, "more than two decimals")
    if cents < 0:
        raise MappingError(name, "negative amount")
    if cents > MAX_YUAN:
        raise MappingError(name, "too large")
    return cents


def fen(value: Any, name: str, *, default: int | None = None) -> Decimal:
    """Douyin amounts: integer fen → yuan (÷ 100). Sending fen raw would be a 100× error."""
    if value is None and default is not None:
        return (Decimal(default) / 100).quantize(CENT)
    n = integer(value, name)
    if n < 0:
        raise MappingError(name, "negative amount")
    if n >= 10**14:
        raise MappingError(name, "too large")
    return (Decimal(n) / 100).quantize(CENT)


def beijing(value: Any, name: str, *, required: bool = False) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` without offset is Beijing time (+08:00); sentinels are None."""
    if type(value) is str and len(value) == 19 and value not in NO_TIME:
        at = _local_time(value)  # the common case first (cached)
        if at is not None:
            return at
    if value is None or (isinstance(value, str) and value.strip() in NO_TIME):
        if required:
            raise MappingError(name, "missing")
        return None
    if not isinstance(value, str):
        raise MappingError(name, "expected 'yyyy-MM-dd HH:mm:ss'")
    at = _local_time(value.strip())
    if at is None:
        raise MappingError(name, "expected a valid 'yyyy-MM-dd HH:mm:ss' from 2000 on")
    return at


@lru_cache(maxsize=16384)
def _local_time(text: str) -> datetime | None:
    # By hand: strptime costs more than the rest of an order's mapping.
    if not _LOCAL_TIME.match(text):
        return None
    try:
        at = datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
            tzinfo=BEIJING,
        )
    except ValueError:
        return None
    return at if at.year >= 2000 else None


def unix(value: Any, name: str, *, required: bool = False) -> datetime | None:
    """Unix seconds (Douyin); 0 means not set."""
    if value is None or value == 0 or value == "":
        if required:
            raise MappingError(name, "missing")
        return None
    n = integer(value, name)
    if not 946684800 <= n < 4102444800:  # 2000-01-01 .. 2100-01-01
        raise MappingError(name, "implausible timestamp")
    return datetime.fromtimestamp(n, UTC).astimezone(BEIJING)


def buyer_text(*candidates: Any) -> str:
    """The first non-empty candidate (mask or ciphertext as given), else ``***``."""
    for value in candidates:
        if isinstance(value, str) and value.strip() and "\x00" not in value:
            return value.strip()[:500]
    return HIDDEN


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def buyer_name(*candidates: Any) -> str:
    """A name (200 characters at most, one line)."""
    name = buyer_text(*candidates)
    return (_CONTROL.sub(" ", name) if _CONTROL.search(name) else name)[:200]


def buyer_phone(*candidates: Any) -> str:
    """The first candidate that looks like a (masked) phone number, else ``***``."""
    for value in candidates:
        if isinstance(value, str) and _PHONE.match(value.strip()):
            return value.strip()
    return HIDDEN


def join_address(*parts: Any) -> str:
    """Address parts joined (district, street, detail), empty parts skipped."""
    kept = [p.strip() for p in parts if isinstance(p, str) and p.strip()]
    return buyer_text("".join(kept))


def discount_for(
    lines: list[MappedLine], shipping_fee: Decimal, paid: Decimal, name: str
) -> Decimal:
    """The explicit discount that makes our total (subtotal − discount + shipping) equal
    what the buyer paid; a paid amount above subtotal + shipping cannot be represented."""
    subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    discount = (subtotal + shipping_fee - paid).quantize(CENT)
    if discount < 0:
        raise MappingError(name, f"paid {paid} exceeds goods {subtotal} + shipping {shipping_fee}")
    return discount


def memo(value: Any) -> str | None:
    """The buyer's memo as given (2,000 characters at most)."""
    if isinstance(value, str) and value.strip():
        return value.replace("\x00", "")[:2000]
    return None


def line_list(o: dict[str, Any], field: str) -> list[Any]:
    """The order's non-empty list of lines under ``field``."""
    items = o.get(field)
    if not isinstance(items, list) or not items:
        raise MappingError(field, "no lines")
    return items


def map_lines(
    items: list[Any],
    field: str,
    *,
    codes: tuple[str, ...],
    sku_id: str,
    qty: str,
    price: str,
    money: Callable[[Any, str], Decimal],
) -> list[MappedLine]:
    """Platform lines → :class:`MappedLine`: the seller code is the first of ``codes`` that
    is set, the platform SKU id ``sku_id``; one of the two is required (a line is matched
    by seller code first, then by platform SKU id)."""
    lines = []
    for n, raw in enumerate(items):
        loc = f"{field}[{n}]"
        item = obj(raw, loc)
        code = None
        for name in codes:
            code = text(item.get(name), f"{loc}.{name}")
            if code is not None:
                break
        platform_sku = text(item.get(sku_id), f"{loc}.{sku_id}")
        if code is None and platform_sku is None:
            raise MappingError(f"{loc}.{codes[0]}", f"no seller code and no {sku_id}")
        lines.append(
            MappedLine(
                loc=loc,
                sku_code=code,
                platform_sku_id=platform_sku,
                quantity=quantity(item.get(qty), f"{loc}.{qty}"),
                unit_price=money(item.get(price), f"{loc}.{price}"),
            )
        )
    return lines
