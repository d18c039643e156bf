"""Typed intake bodies (marketplace adapters): what the plain-Python check vouches for,
pydantic accepts with the very same values; what pydantic refuses, it never vouches for."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.domain.order.intake import content_hash
from app.domain.order.schemas import OrderCreate
from app.domain.order.typed import typed_order

BEIJING = timezone(timedelta(hours=8))
PLACED = datetime(2026, 11, 11, 10, 0, tzinfo=BEIJING)


def body() -> dict[str, Any]:
    """An intake body as the marketplace adapters build it (typed values)."""
    return {
        "store_id": 1,
        "external_id": "241111-538204917730512",
        "placed_at": PLACED,
        "paid_at": PLACED + timedelta(minutes=1),
        "buyer": {
            "name": "王*",
            "phone": "138****5521",
            "province": "浙江省",
            "city": "杭州市",
            "address": "西湖区文三路***号",
        },
        "items": [
            {"sku_id": 7, "quantity": 2, "unit_price": Decimal("59.80")},
            {"sku_code": "TEA-500G", "quantity": 1, "unit_price": Decimal("0.00")},
        ],
        "shipping_fee": Decimal("6.00"),
        "discount": Decimal("13.00"),
        "group_buy": {"group_id": "6582039471", "formed_at": PLACED + timedelta(minutes=3)},
        "promised_ship_by": PLACED + timedelta(hours=48),
    }


def _fields(data: Any) -> dict[str, Any]:
    names = ("name", "phone", "province", "city", "address", "platform_buyer_id")
    return {
        "store_id": data.store_id,
        "external_id": data.external_id,
        "placed_at": (data.placed_at, data.placed_at.tzinfo),
        "paid_at": data.paid_at and (data.paid_at, data.paid_at.tzinfo),
        "buyer": [getattr(data.buyer, n) for n in names],
        "items": [(i.sku_code, i.sku_id, i.quantity, str(i.unit_price)) for i in data.items],
        "money": (str(data.shipping_fee), str(data.discount)),
        "group": data.group_buy and (data.group_buy.group_id, data.group_buy.formed_at),
        "promised": data.promised_ship_by and (data.promised_ship_by, data.promised_ship_by.tzinfo),
        "rest": (data.coupon_code, data.promotion_ids, data.allow_backorder),
        "hash": content_hash(data),
    }


def _same_as_pydantic(value: dict[str, Any]) -> None:
    typed = typed_order(value)
    assert typed is not None
    assert _fields(typed) == _fields(OrderCreate.model_validate(value))


def test_a_typed_body_is_vouched_for_with_pydantics_values() -> None:
    _same_as_pydantic(body())
    minimal = body()
    for key in ("paid_at", "shipping_fee", "discount", "group_buy", "promised_ship_by"):
        del minimal[key]
    _same_as_pydantic(minimal)
    typed = typed_order(body())
    assert typed is not None
    assert typed.placed_at.tzinfo is UTC  # kept in UTC, as Instant does


def _set(path: str, value: Any) -> dict[str, Any]:
    out = body()
    target: Any = out
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return out


_DELETE = object()

# Each breaks one rule of OrderCreate (pydantic refuses it) or is not a typed value the
# check knows (pydantic decides): the check must not vouch for it.
NOT_VOUCHED = [
    ("store_id", 0),
    ("store_id", 2**63),
    ("store_id", True),
    ("external_id", "含中文"),
    ("external_id", "x" * 65),
    ("external_id", ""),
    ("placed_at", _DELETE),
    ("placed_at", datetime(2026, 11, 11, 10, 0)),  # no offset
    ("placed_at", datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=14)))),
    ("placed_at", datetime(9999, 12, 31, tzinfo=UTC)),
    ("paid_at", PLACED - timedelta(seconds=1)),  # paid before placed
    ("buyer.name", "x" * 201),
    ("buyer.name", "王\n"),
    ("buyer.name", ""),
    ("buyer.phone", "+" + "1" * 32),  # the pattern allows it, max_length not
    ("buyer.phone", "12"),
    ("buyer.phone", "138-abc"),
    ("buyer.city", "杭\x7f州"),
    ("buyer.address", "a" * 501),
    ("buyer.address", "a\x00"),
    ("buyer.platform_buyer_id", ""),
    ("buyer.platform_buyer_id", "x" * 201),
    ("buyer.email", "a@b.c"),
    ("items", []),
    ("items", [{"sku_id": 7, "quantity": 1, "unit_price": Decimal("1.00")}] * 201),
    ("items.0.quantity", 0),
    ("items.0.quantity", 100_001),
    ("items.0.quantity", True),
    ("items.0.sku_code", "X"),  # both references
    ("items.0.sku_id", _DELETE),  # neither
    ("items.1.sku_code", ""),
    ("items.1.sku_code", "x" * 65),
    ("items.0.unit_price", Decimal("59.805")),
    ("items.0.unit_price", Decimal("-1.00")),
    ("items.0.unit_price", Decimal("NaN")),
    ("items.0.unit_price", Decimal("1000000000000.00")),
    ("items.0.quantity", 100_000),  # 59.80 × 100,000 fits; with the next one it does not
    ("items.0.unit_price", Decimal("999999999999.99")),  # × 2 overflows numeric(14,2)
    ("items.0.price", Decimal("1.00")),
    ("shipping_fee", Decimal("999999999999.99")),  # subtotal + shipping overflows
    ("shipping_fee", Decimal("-0.01")),
    ("discount", Decimal("0.001")),
    ("group_buy.group_id", ""),
    ("group_buy.group_id", "g" * 65),
    ("group_buy.formed_at", "2026-11-11T10:00:00+08:00"),
    ("allow_backorder", 1),
    ("coupon_code", "SAVE5"),
    ("extra", 1),
]


ACCEPTED_BY_PYDANTIC = {"group_buy.formed_at", "coupon_code"}


@pytest.mark.parametrize(
    ("path", "value"), NOT_VOUCHED, ids=[f"{p}={v!r}"[:40] for p, v in NOT_VOUCHED]
)
def test_a_broken_rule_is_left_to_pydantic(path: str, value: Any) -> None:
    broken = _set(path, value)
    if path == "items.0.quantity" and value == 100_000:
        broken["items"][0]["unit_price"] = Decimal("99999999.99")
    assert typed_order(broken) is None
    if path in ACCEPTED_BY_PYDANTIC:
        OrderCreate.model_validate(broken)
    else:
        with pytest.raises(ValidationError):
            OrderCreate.model_validate(broken)


def test_json_bodies_are_left_to_pydantic() -> None:
    # What a client sends (strings for times and money) is never taken by the fast path.
    sent = {**body(), "placed_at": PLACED.isoformat(), "store_id": "1"}
    assert typed_order(sent) is None
    assert typed_order(None) is None
    assert typed_order([body()]) is None


_TEXT = st.one_of(
    st.sampled_from(["", "a", "王*", "138****5521", "+86 138", "x" * 64, "x" * 65, "a\n", "\x00"]),
    st.text(max_size=40),
)
_VALUES = st.one_of(
    _TEXT,
    st.integers(min_value=-2, max_value=2**64),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.sampled_from([Decimal("0.00"), Decimal("59.8"), Decimal("1E+2"), Decimal("-0.00")]),
    st.datetimes(timezones=st.sampled_from([UTC, BEIJING, timezone(timedelta(hours=-10))])),
    st.datetimes(),
)
_PATHS = [
    "store_id",
    "external_id",
    "placed_at",
    "paid_at",
    "buyer.name",
    "buyer.phone",
    "buyer.province",
    "buyer.address",
    "buyer.platform_buyer_id",
    "items.0.sku_id",
    "items.0.quantity",
    "items.0.unit_price",
    "items.1.sku_code",
    "shipping_fee",
    "discount",
    "group_buy.formed_at",
    "group_buy.group_id",
    "promised_ship_by",
    "allow_backorder",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _VALUES), min_size=1, max_size=3))
def test_whatever_is_vouched_for_pydantic_accepts_the_same(
    changes: list[tuple[str, Any]],
) -> None:
    value = body()
    for path, new in changes:
        value = _merge(value, _set(path, copy.deepcopy(new)), path)
    typed = typed_order(value)
    if typed is not None:
        assert _fields(typed) == _fields(OrderCreate.model_validate(value))


def _merge(base: dict[str, Any], changed: dict[str, Any], path: str) -> dict[str, Any]:
    """``base`` with the one field at ``path`` taken from ``changed``."""
    src: Any = changed
    dst: Any = base
    *parents, last = path.split(".")
    for part in parents:
        src = src[int(part)] if isinstance(src, list) else src[part]
        dst = dst[int(part)] if isinstance(dst, list) else dst[part]
    if isinstance(dst, list):
        dst[int(last)] = src[int(last)]
    else:
        dst[last] = src[last]
    return base
