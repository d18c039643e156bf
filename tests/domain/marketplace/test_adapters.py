"""Platform adapters, table-tested on the fixtures (tests/fixtures/marketplace/)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.domain.marketplace import common
from app.domain.marketplace.common import Mapped, MappingError
from app.domain.marketplace.ingest import ADAPTERS
from app.domain.types import format_money

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "marketplace"


def _load(name: str) -> list[dict[str, Any]]:
    # As the route reads them: numbers exact (Decimal), never binary floats.
    text = (FIXTURES / f"{name}.json").read_text(encoding="utf-8")
    cases: list[dict[str, Any]] = json.loads(text, parse_float=Decimal)["cases"]
    assert cases
    return cases


CASES = [
    pytest.param(platform, case, id=f"{platform}: {case['name']}")
    for platform in ("pdd", "taobao", "douyin", "jd")
    for case in _load(platform)
]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _view(m: Mapped) -> dict[str, Any]:
    line = m.lines[0]
    return {
        "external_id": m.external_id,
        "platform_status": m.platform_status,
        "placed_at": _iso(m.placed_at),
        "paid_at": _iso(m.paid_at),
        "discount": format_money(m.discount),
        "shipping_fee": format_money(m.shipping_fee),
        "unit_price": format_money(line.unit_price),
        "quantity": line.quantity,
        "sku_code": line.sku_code,
        "platform_sku_id": line.platform_sku_id,
        "group_buy": None
        if m.group_buy is None
        else {"group_id": m.group_buy["group_id"], "formed_at": _iso(m.group_buy["formed_at"])},
        "promised_ship_by": _iso(m.promised_ship_by),
        "buyer": m.buyer,
        "buyer_memo": m.buyer_memo,
        "urged_at": _iso(m.urged_at),
        "delivered_at": _iso(m.delivered_at),
        "shipment": None
        if m.shipment is None
        else {
            "carrier_code": m.shipment.carrier_code,
            "tracking_number": m.shipment.tracking_number,
            "shipped_at": _iso(m.shipment.shipped_at),
        },
    }


@pytest.mark.parametrize(("platform", "case"), CASES)
def test_fixture_maps(platform: str, case: dict[str, Any]) -> None:
    view = _view(ADAPTERS[platform].map_order(case["order"]))
    for key, want in case["expect"].items():
        assert view[key] == want, (key, view[key])


@pytest.mark.parametrize(("platform", "case"), CASES)
def test_total_equals_what_the_buyer_paid(platform: str, case: dict[str, Any]) -> None:
    m = ADAPTERS[platform].map_order(case["order"])
    subtotal = sum((ln.unit_price * ln.quantity for ln in m.lines), Decimal(0))
    assert subtotal - m.discount + m.shipping_fee >= 0
    assert m.discount >= 0


BAD = [pytest.param(c, id=f"{c['platform']}: {c['name']}") for c in _load("bad")]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_names_the_field(case: dict[str, Any]) -> None:
    with pytest.raises(MappingError) as caught:
        ADAPTERS[case["platform"]].map_order(case["order"])
    assert caught.value.field == case["field"]


def test_taobao_id_over_2_53_stays_exact() -> None:
    order = _load("taobao")[0]["order"]["trade_fullinfo_get_response"]["trade"]
    del order["tid_str"]
    assert order["tid"] > 2**53
    assert ADAPTERS["taobao"].map_order(order).external_id == "2023456789012345678"


def test_pdd_float_never_accepted() -> None:
    # The route parses with Decimal; a float reaching the mapper is refused, not rounded.
    with pytest.raises(MappingError):
        common.yuan(59.8, "goods_price")


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (Decimal("59.8"), "59.80"),
        (Decimal("4.5"), "4.50"),
        (0, "0.00"),
        ("200.07", "200.07"),
        (Decimal("0.1") + Decimal("0.2"), "0.30"),
    ],
)
def test_yuan_exact(value: Any, want: str) -> None:
    assert format_money(common.yuan(value, "x")) == want


@pytest.mark.parametrize(
    ("value", "want"), [(8980, "89.80"), (1, "0.01"), (0, "0.00"), ("4990", "49.90")]
)
def test_douyin_fen(value: Any, want: str) -> None:
    assert format_money(common.fen(value, "x")) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("2024-11-11 09:58:41", "2024-11-11T09:58:41+08:00"),
        ("", None),
        ("0001-01-01 00:00:00", None),
        ("1970-01-01 00:00:00", None),
        (None, None),
    ],
)
def test_beijing_time(value: Any, want: str | None) -> None:
    assert _iso(common.beijing(value, "t")) == want


@pytest.mark.parametrize(
    "value", ["2024/11/11 09:58", "yesterday", 1731254321, "2024-13-40 00:00:00"]
)
def test_beijing_time_malformed(value: Any) -> None:
    with pytest.raises(MappingError):
        common.beijing(value, "t")


@pytest.mark.parametrize(("value", "want"), [(1731254321, "2024-11-10T23:58:41+08:00"), (0, None)])
def test_unix_seconds(value: int, want: str | None) -> None:
    assert _iso(common.unix(value, "t")) == want
