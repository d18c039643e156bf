"""Request and response shapes of promotions: one ``rules`` schema per ``kind``."""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.domain.types import (
    NO_NUL,
    Id,
    Instant,
    JsonInt,
    NonNegativeMoney,
    Text,
    check_amount,
)

_PERCENT_RE = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,2})?$")
_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
CODE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def _parse_percent(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("percent must be a number like 12.5")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if not _PERCENT_RE.match(text):
        raise ValueError("percent must be a number with at most two decimals")
    percent = Decimal(text)
    if not 0 < percent < 100:
        raise ValueError("percent must be over 0 and under 100")
    return percent


def _instant_text(value: Any) -> Any:
    # pydantic reads a JSON number as a Unix timestamp: not an ISO 8601 instant.
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 date-time with an offset")
    return value


At = Annotated[Instant, BeforeValidator(_instant_text)]
"""An instant in a body: ISO 8601 text with an offset only."""


def _date_text(value: Any) -> Any:
    if not (isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_date_text)]


Percent = Annotated[
    Decimal,
    BeforeValidator(_parse_percent),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number"}, {"type": "string"}],
            "examples": [20],
            "description": "A percent over 0 and under 100, at most two decimals.",
        }
    ),
]


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("amount must be over 0")
    check_amount(value, "amount")
    return value


PositiveMoney = Annotated[NonNegativeMoney, AfterValidator(_positive)]


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PercentOffRules(_Rules):
    """直接打折: every covered SKU at ``percent`` off."""

    percent: Percent


class AmountOffRules(_Rules):
    """A fixed amount off the covered subtotal."""

    amount: PositiveMoney


class ThresholdTier(_Rules):
    """Spend ``min_spend``, get ``off``."""

    min_spend: NonNegativeMoney
    off: PositiveMoney


class ThresholdOffRules(_Rules):
    """满减: the highest tier reached applies."""

    tiers: list[ThresholdTier] = Field(min_length=1, max_length=20)

    @field_validator("tiers")
    @classmethod
    def _increasing(cls, tiers: list[ThresholdTier]) -> list[ThresholdTier]:
        for a, b in itertools.pairwise(tiers):
            if not (a.min_spend < b.min_spend and a.off < b.off):
                raise ValueError("tiers must be strictly increasing in min_spend and off")
        return tiers


class MultiBuyTier(_Rules):
    """Buy ``min_qty`` covered units, get ``percent`` off each."""

    min_qty: JsonInt = Field(ge=1, le=100_000)
    percent: Percent


class MultiBuyRules(_Rules):
    """满件折: the highest tier reached applies."""

    tiers: list[MultiBuyTier] = Field(min_length=1, max_length=20)

    @field_validator("tiers")
    @classmethod
    def _increasing(cls, tiers: list[MultiBuyTier]) -> list[MultiBuyTier]:
        for a, b in itertools.pairwise(tiers):
            if not (a.min_qty < b.min_qty and a.percent < b.percent):
                raise ValueError("tiers must be strictly increasing in min_qty and percent")
        return tiers


class GiftRules(_Rules):
    """满就送: spend ``min_spend`` on covered SKUs, get one ``gift_sku_id``."""

    min_spend: NonNegativeMoney
    gift_sku_id: Id


class FreeShippingRules(_Rules):
    """包邮 from ``min_spend`` (always, if omitted)."""

    min_spend: NonNegativeMoney | None = None


SkuKey = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,17}$", description="A SKU id.")]


class SpecialPriceRules(_Rules):
    """限时特价: a price per SKU."""

    prices: dict[SkuKey, NonNegativeMoney] = Field(min_length=1, max_length=500)


class GroupBuyRules(_Rules):
    """拼团: a price per SKU when bought as a group of ``group_size``."""

    group_size: JsonInt = Field(ge=2, le=1000)
    prices: dict[SkuKey, NonNegativeMoney] = Field(min_length=1, max_length=500)


class CouponRules(_Rules):
    """店铺券: ``amount`` off once the order reaches ``min_spend`` (after other discounts)."""

    amount: PositiveMoney
    min_spend: NonNegativeMoney


RULES: dict[str, type[_Rules]] = {
    "percent_off": PercentOffRules,
    "amount_off": AmountOffRules,
    "threshold_off": ThresholdOffRules,
    "multi_buy": MultiBuyRules,
    "gift": GiftRules,
    "free_shipping": FreeShippingRules,
    "special_price": SpecialPriceRules,
    "group_buy": GroupBuyRules,
    "coupon": CouponRules,
}


class ScheduleIn(BaseModel):
    """Weekdays (1 Monday … 7 Sunday) and hours in store time; an ``end_time`` at or before
    ``start_time`` crosses midnight (22:00–02:00)."""

    model_config = ConfigDict(extra="forbid")

    weekdays: list[Annotated[JsonInt, Field(ge=1, le=7)]] = Field(min_length=1, max_length=7)
    start_time: str = Field(pattern=_TIME, examples=["10:00"])
    end_time: str = Field(pattern=_TIME, examples=["22:00"])

    @field_validator("weekdays")
    @classmethod
    def _distinct(cls, days: list[int]) -> list[int]:
        if len(set(days)) != len(days):
            raise ValueError("weekdays must not repeat")
        return sorted(days)


class SkuList(BaseModel):
    """Only these SKUs (of the promotion's store)."""

    model_config = ConfigDict(extra="forbid")

    sku_ids: list[Id] = Field(min_length=1, max_length=1000)


AppliesTo = Literal["all"] | SkuList
Code = Annotated[str, Field(pattern=CODE_PATTERN, description="Coupon code, unique per store.")]


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: Id
    name: Text
    applies_to: AppliesTo = "all"
    starts_at: At
    ends_at: At
    schedule: ScheduleIn | None = None
    stackable: bool = Field(default=False, strict=True)
    code: Code | None = None
    usage_limit: JsonInt | None = Field(default=None, ge=1, le=100_000_000)
    per_buyer_limit: JsonInt | None = Field(default=None, ge=1, le=1_000_000)
    budget: PositiveMoney | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _Common:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        kind = getattr(self, "kind", None)
        if kind == "coupon" and self.code is None:
            raise ValueError("a coupon needs a code")
        if kind != "coupon" and self.code is not None:
            raise ValueError("only a coupon has a code")
        return self


class PercentOffCreate(_Common):
    kind: Literal["percent_off"]
    rules: PercentOffRules


class AmountOffCreate(_Common):
    kind: Literal["amount_off"]
    rules: AmountOffRules


class ThresholdOffCreate(_Common):
    kind: Literal["threshold_off"]
    rules: ThresholdOffRules


class MultiBuyCreate(_Common):
    kind: Literal["multi_buy"]
    rules: MultiBuyRules


class GiftCreate(_Common):
    kind: Literal["gift"]
    rules: GiftRules


class FreeShippingCreate(_Common):
    kind: Literal["free_shipping"]
    rules: FreeShippingRules


class SpecialPriceCreate(_Common):
    kind: Literal["special_price"]
    rules: SpecialPriceRules


class GroupBuyCreate(_Common):
    kind: Literal["group_buy"]
    rules: GroupBuyRules


class CouponCreate(_Common):
    kind: Literal["coupon"]
    rules: CouponRules


PromotionCreateUnion = Annotated[
    PercentOffCreate
    | AmountOffCreate
    | ThresholdOffCreate
    | MultiBuyCreate
    | GiftCreate
    | FreeShippingCreate
    | SpecialPriceCreate
    | GroupBuyCreate
    | CouponCreate,
    Field(discriminator="kind"),
]
CREATE_EXAMPLE: dict[str, Any] = {
    "store_id": "1",
    "name": "双11 满减",
    "kind": "threshold_off",
    "rules": {"tiers": [{"min_spend": "200.00", "off": "20.00"}]},
    "applies_to": "all",
    "starts_at": "2026-11-11T00:00:00+08:00",
    "ends_at": "2026-11-12T00:00:00+08:00",
    "stackable": False,
}


class PromotionCreate(RootModel[PromotionCreateUnion]):
    """A new promotion: ``rules`` validated by the schema of its ``kind``."""

    model_config = ConfigDict(json_schema_extra={"examples": [CREATE_EXAMPLE]})


class PromotionUpdate(BaseModel):
    """Changes to a promotion (``kind`` stays); every check runs again on the result."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"ends_at": "2026-11-13T00:00:00+08:00"}]},
    )

    name: Text | None = None
    rules: dict[str, Any] | None = None
    applies_to: AppliesTo | None = None
    starts_at: At | None = None
    ends_at: At | None = None
    schedule: ScheduleIn | None = None
    stackable: bool | None = Field(default=None, strict=True)
    code: Code | None = None
    usage_limit: JsonInt | None = Field(default=None, ge=1, le=100_000_000)
    per_buyer_limit: JsonInt | None = Field(default=None, ge=1, le=1_000_000)
    budget: PositiveMoney | None = None


class PromotionStatus(StrEnum):
    """Where a promotion's window stands now."""

    UPCOMING = "upcoming"
    ACTIVE = "active"
    ENDED = "ended"


class PromotionPublic(BaseModel):
    """A promotion, its status computed at read time."""

    id: Id
    store_id: Id
    name: str
    kind: str
    rules: dict[str, Any]
    applies_to: AppliesTo
    starts_at: datetime
    ends_at: datetime
    schedule: ScheduleIn | None
    stackable: bool
    code: str | None
    usage_limit: int | None
    per_buyer_limit: int | None
    budget: NonNegativeMoney | None
    status: PromotionStatus
    ended_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class QuoteItem(BaseModel):
    """A cart line."""

    model_config = ConfigDict(extra="forbid")

    sku_id: Id
    quantity: JsonInt = Field(ge=1, le=100_000)


class QuoteIn(BaseModel):
    """A cart to price with the store's promotions on at ``at`` (default now)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "store_id": "1",
                    "items": [{"sku_id": "12", "quantity": 2}],
                    "coupon_code": "SAVE10",
                    "buyer_id": "13800138000",
                }
            ]
        },
    )

    store_id: Id
    items: list[QuoteItem] = Field(min_length=1, max_length=200)
    coupon_code: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)] | None = None
    buyer_id: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)] | None = None
    at: At | None = None
    group_buy: bool = Field(default=False, strict=True)
    shipping_fee: NonNegativeMoney = Field(
        default=Decimal("0.00"), description="Shipping before free-shipping promotions."
    )


class QuoteLine(BaseModel):
    """A priced line; ``clamped``: a discount was cut to keep it at its floor."""

    sku_id: Id
    quantity: int
    unit_price: NonNegativeMoney
    final_unit_price: NonNegativeMoney
    line_total: NonNegativeMoney
    clamped: bool


class AppliedOut(BaseModel):
    """A promotion that gave something, and how much."""

    promotion_id: Id
    kind: str
    discount: NonNegativeMoney


class GiftOut(BaseModel):
    """A gift added beside the prices."""

    promotion_id: Id
    sku_id: Id
    quantity: int


class CouponOut(BaseModel):
    """Whether the asked-for coupon applies, and why not."""

    code: str
    applied: bool
    reason: str | None = Field(
        description="`unknown`, `not_active`, `min_spend_not_met`, `exhausted`, or null."
    )


class QuoteOut(BaseModel):
    """The full breakdown (DOMAIN.md §5); ``total = Σ line_total + shipping_fee``."""

    lines: list[QuoteLine]
    applied: list[AppliedOut]
    subtotal: NonNegativeMoney
    discount: NonNegativeMoney
    shipping_fee: NonNegativeMoney
    total: NonNegativeMoney
    gifts: list[GiftOut]
    coupon: CouponOut | None = None


class SpendIn(BaseModel):
    """Ad spend of one day (a second post for the date replaces it)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"date": "2026-11-11", "amount": "500.00"}]}
    )

    date: Day
    amount: NonNegativeMoney


class SpendOut(BaseModel):
    """The stored spend of one day."""

    promotion_id: Id
    date: date
    amount: NonNegativeMoney


class Grade(StrEnum):
    """ROI grade (DOMAIN.md §5)."""

    FAIL = "fail"
    PASS = "pass"
    GOOD = "good"
    EXCELLENT = "excellent"


class PerformanceOut(BaseModel):
    """What a promotion brought: ``roi = gmv / (discount_cost + ad_spend)``."""

    orders: int
    units: int
    gmv: NonNegativeMoney
    discount_cost: NonNegativeMoney
    ad_spend: NonNegativeMoney
    roi: Decimal | None = Field(description="Two decimals; null when the cost is 0.")
    grade: Grade | None = Field(description="Null when roi is null.")
