"""Buyer privacy (API.md, Conventions → Personal data): who sees phone and street address.

An ``operator`` key (the internal web frontend) sees them masked in order lists; reading one
order shows them in full and leaves an audit entry naming the key. ``warehouse`` (labels),
``integration`` (the ERP) and ``admin`` keys always see them in full. Name, province and city
are never masked: they do not locate a buyer on their own.
"""

from __future__ import annotations

import re
from enum import StrEnum

from app.domain.order.schemas import BuyerOut

MASK = "*"
_KEEP_HEAD, _KEEP_TAIL = 3, 4
_SHORT_TAIL = 2
_MAINLAND_CODE = "86"
_MAINLAND_MOBILE_DIGITS = 11
# Where the street begins: after the first 区 (district), 县 (county) or 旗 (banner); failing
# those, after a county-level 市. Not when the character is part of a place in the street
# (小区 housing estate, 社区 community, 园区 park, 校区 campus, 景区 scenic area, 街区 block,
# 超市 supermarket, 市场 market).
_DISTRICT_RE = re.compile(r"^.{1,20}?(?<![小社园校景街])[区县旗]")
_CITY_RE = re.compile(r"^.{1,20}?(?<!超)市(?!场)")


class BuyerView(StrEnum):
    """How an order's buyer is shown to a reader."""

    FULL = "full"
    MASKED = "masked"
    FULL_AUDITED = "full_audited"
    """Shown in full, and the disclosure is recorded in the audit trail."""


def buyer_view(role: str, *, many: bool) -> BuyerView:
    """How a key with ``role`` sees buyers in a list (``many``) or in a single-order read."""
    if role != "operator":
        return BuyerView.FULL
    return BuyerView.MASKED if many else BuyerView.FULL_AUDITED


def mask_phone(phone: str) -> str:
    """``13800138000`` → ``138****8000``: the first 3 and last 4 digits stay.

    Separators are dropped; a ``+86`` mainland number keeps its prefix and masks the 11-digit
    number after it. A number under 8 digits keeps only its last 2 (keeping 7 would show
    nearly all of it).
    """
    digits = re.sub(r"\D", "", phone)
    prefix = ""
    if (
        phone.lstrip().startswith("+")
        and digits.startswith(_MAINLAND_CODE)
        and len(digits) == len(_MAINLAND_CODE) + _MAINLAND_MOBILE_DIGITS
    ):
        prefix, digits = "+86 ", digits[len(_MAINLAND_CODE) :]
    if len(digits) <= _KEEP_HEAD + _KEEP_TAIL:
        kept = digits[-_SHORT_TAIL:] if len(digits) > _SHORT_TAIL else ""
        return prefix + MASK * (len(digits) - len(kept)) + kept
    hidden = len(digits) - _KEEP_HEAD - _KEEP_TAIL
    return prefix + digits[:_KEEP_HEAD] + MASK * hidden + digits[-_KEEP_TAIL:]


def mask_address(address: str) -> str:
    """``西湖区文三路 1 号`` → ``西湖区****``: the street address cut after the district.

    The district is the first 区/县/旗 in the first 21 characters (so a full address that
    repeats province and city keeps them too), else a county-level 市; with neither, nothing
    of the street is shown.
    """
    text = address.strip()
    match = _DISTRICT_RE.match(text) or _CITY_RE.match(text)
    kept = match.group(0) if match else ""
    return kept + MASK * 4


def mask_buyer(buyer: BuyerOut) -> BuyerOut:
    """The buyer with phone and street address masked."""
    return buyer.model_copy(
        update={"phone": mask_phone(buyer.phone), "address": mask_address(buyer.address)}
    )
