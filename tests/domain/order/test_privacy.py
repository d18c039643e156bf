"""Buyer privacy rules: phone and address masks, and who sees what (table-driven)."""

from __future__ import annotations

import pytest

from app.domain.order.privacy import BuyerView, buyer_view, mask_address, mask_buyer, mask_phone
from app.domain.order.schemas import BuyerOut


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800138000", "138****8000"),
        ("139 0013 9000", "139****9000"),
        ("+86 138-0013-8000", "+86 138****8000"),
        ("+8613800138000", "+86 138****8000"),
        ("021-6234 5678", "021****5678"),
        ("0571-8888-66667", "057******6667"),
        ("12345678", "123*5678"),
        ("8000123", "*****23"),
        ("955", "*55"),
        ("12", "**"),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("西湖区文三路 1 号", "西湖区****"),
        ("南山区科技园 2 号", "南山区****"),
        ("浦东新区世纪大道 100 号", "浦东新区****"),
        ("浙江省杭州市西湖区文三路 1 号", "浙江省杭州市西湖区****"),
        ("长沙县星沙街道 8 号", "长沙县****"),
        ("正镶白旗明安图镇 3 号", "正镶白旗****"),
        ("义乌市稠州北路 5 号", "义乌市****"),
        # Places inside the street are not districts: nothing of the street is shown.
        ("阳光小区 3 栋 201", "****"),
        ("黄龙市场 2 号", "****"),
        ("黄龙超市旁", "****"),
        ("城关镇幸福路 7 号", "****"),
        ("No. 1 Wensan Road", "****"),
    ],
)
def test_mask_address_cuts_after_the_district(address: str, masked: str) -> None:
    assert mask_address(address) == masked


@pytest.mark.parametrize(
    ("role", "many", "view"),
    [
        ("operator", True, BuyerView.MASKED),
        ("operator", False, BuyerView.FULL_AUDITED),
        ("warehouse", True, BuyerView.FULL),
        ("warehouse", False, BuyerView.FULL),
        ("integration", True, BuyerView.FULL),
        ("integration", False, BuyerView.FULL),
        ("admin", True, BuyerView.FULL),
        ("admin", False, BuyerView.FULL),
    ],
)
def test_who_sees_what(role: str, many: bool, view: BuyerView) -> None:
    assert buyer_view(role, many=many) is view


def test_mask_buyer_keeps_name_province_and_city() -> None:
    buyer = BuyerOut(
        name="张三", phone="13800138000", province="浙江省", city="杭州市", address="西湖区文三路"
    )
    assert mask_buyer(buyer) == BuyerOut(
        name="张三", phone="138****8000", province="浙江省", city="杭州市", address="西湖区****"
    )
    assert buyer.phone == "13800138000"  # the original is untouched
