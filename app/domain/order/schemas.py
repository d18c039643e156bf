"""Request and response shapes of orders."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.domain.dispatch.rules import CARRIERS, Risk
from app.domain.order.rules import Allocation, Flag, Status
from app.domain.types import (
    BULK_MAX,
    NO_NUL,
    Id,
    Instant,
    JsonInt,
    NonNegativeMoney,
    Note,
    Text,
    bulk_items,
    check_amount,
)

Carrier = Literal["SF", "ZTO", "YTO", "STO", "YD", "JT", "EMS", "JD", "DBL", "OTHER"]
assert set(Carrier.__args__) == set(CARRIERS)  # type: ignore[attr-defined]

ExternalId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
# Marketplaces give masked phones ("138****5521"): `*` is accepted (marketplace sync).
Phone = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^\+?[0-9* -]{3,32}$")]


PlatformBuyerId = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]


class Buyer(BaseModel):
    """The buyer and the shipping address."""

    model_config = ConfigDict(extra="forbid")

    name: Text
    phone: Phone
    province: Text
    city: Text
    address: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]
    platform_buyer_id: PlatformBuyerId | None = Field(
        default=None,
        description="The marketplace's own buyer id (Taobao buyer_open_uid, Douyin open id, "
        "…). When given, per-buyer coupon limits count by it instead of the phone, which "
        "platforms mask.",
    )


class ItemIn(BaseModel):
    """A line: the SKU by ``sku_code`` or ``sku_id`` (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    sku_code: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_NUL)
    sku_id: Id | None = None
    quantity: JsonInt = Field(ge=1, le=100_000)
    unit_price: NonNegativeMoney

    @model_validator(mode="after")
    def _one_sku_reference(self) -> ItemIn:
        if (self.sku_code is None) == (self.sku_id is None):
            raise ValueError("give exactly one of sku_code or sku_id")
        check_amount(self.unit_price * self.quantity, "unit_price × quantity")
        return self


class GroupBuyIn(BaseModel):
    """拼团: the clock starts when the group forms."""

    model_config = ConfigDict(extra="forbid")

    group_id: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
    formed_at: Instant | None = None


class OrderCreate(BaseModel):
    """An order taken from the marketplace (idempotent on ``store_id`` + ``external_id``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "store_id": "1",
                    "external_id": "PDD2611110001",
                    "placed_at": "2026-11-11T10:00:00+08:00",
                    "paid_at": "2026-11-11T10:01:00+08:00",
                    "buyer": {
                        "name": "张三",
                        "phone": "13800138000",
                        "province": "浙江省",
                        "city": "杭州市",
                        "address": "西湖区文三路 1 号",
                    },
                    "items": [{"sku_code": "TEA-500G", "quantity": 2, "unit_price": "129.90"}],
                    "shipping_fee": "0.00",
                    "allow_backorder": True,
                }
            ]
        },
    )

    store_id: Id
    external_id: ExternalId
    placed_at: Instant
    paid_at: Instant | None = None
    buyer: Buyer
    items: list[ItemIn] = Field(min_length=1, max_length=200)
    shipping_fee: NonNegativeMoney = Decimal("0.00")
    discount: NonNegativeMoney = Decimal("0.00")
    coupon_code: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)] | None = None
    promotion_ids: list[Id] | None = Field(default=None, max_length=20)
    group_buy: GroupBuyIn | None = None
    promised_ship_by: Instant | None = None
    allow_backorder: bool = Field(default=True, strict=True)

    @field_validator("items")
    @classmethod
    def _subtotal_fits(cls, items: list[ItemIn]) -> list[ItemIn]:
        # numeric(14,2) overflows at 10^12: refuse the order here, naming the field,
        # rather than at the INSERT (which would fail a whole bulk batch).
        check_amount(sum((i.unit_price * i.quantity for i in items), Decimal(0)), "the subtotal")
        return items

    @field_validator("shipping_fee")
    @classmethod
    def _total_fits(cls, fee: Decimal, info: ValidationInfo) -> Decimal:
        items: list[ItemIn] | None = info.data.get("items")
        if items is not None:
            subtotal = sum((i.unit_price * i.quantity for i in items), Decimal(0))
            check_amount(subtotal + fee, "subtotal + shipping_fee")
        return fee

    @model_validator(mode="after")
    def _times_in_order(self) -> OrderCreate:
        if self.paid_at is not None and self.paid_at < self.placed_at:
            raise ValueError("paid_at must not be before placed_at")
        return self


class PayIn(BaseModel):
    """Payment of an order taken in unpaid."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"paid_at": "2026-11-11T10:05:00+08:00"}]}
    )

    paid_at: Instant
    group_formed_at: Instant | None = Field(
        default=None, description="For a group buy, when the group formed (if known now)."
    )


class ShipIn(BaseModel):
    """A shipment: carrier and tracking number (unique per store)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"carrier": "ZTO", "tracking_number": "73100000000001"}]},
    )

    carrier: Carrier
    tracking_number: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
    shipped_at: Instant | None = None


class GroupFormedIn(BaseModel):
    """A group buy's group formed (拼团成功): the dispatch clock starts."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"formed_at": "2026-11-11T10:30:00+08:00"}]},
    )

    formed_at: Instant = Field(
        description="When the group formed; at most 5 minutes ahead of the server's clock."
    )


class GroupFailedIn(BaseModel):
    """A group buy's group failed (拼团失败): the order is cancelled."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "拼团失败"}]}
    )

    reason: Note | None = Field(default=None, description="Default `group_failed`.")


class ShipBulkItem(ShipIn):
    """One order to ship."""

    order_id: Id


class ShipBulkIn(BaseModel):
    """Orders shipped by the warehouse (≤ 1,000); each succeeds or fails alone."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"order_id": "981", "carrier": "YTO", "tracking_number": "YT1234567890123"}
                    ]
                }
            ]
        },
    )

    items: Annotated[list[dict[str, Any]], bulk_items(ShipBulkItem)] = Field(
        min_length=1, max_length=BULK_MAX
    )


class ReasonIn(BaseModel):
    """Why (cancel, hold)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "买家取消"}]}
    )

    reason: Note


class TrackingIn(BaseModel):
    """A carrier scan."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"event": "picked_up", "at": "2026-11-11T18:00:00+08:00"}]},
    )

    event: Literal["picked_up", "in_transit", "delivered", "returned"]
    at: Instant


class OrderBulkIn(BaseModel):
    """Up to 1,000 orders; each is taken or refused on its own."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "orders": [
                        {
                            "store_id": "1",
                            "external_id": "PDD2611110002",
                            "placed_at": "2026-11-11T10:00:00+08:00",
                            "paid_at": "2026-11-11T10:01:00+08:00",
                            "buyer": {
                                "name": "李四",
                                "phone": "13900139000",
                                "province": "广东省",
                                "city": "深圳市",
                                "address": "南山区科技园 2 号",
                            },
                            "items": [
                                {"sku_code": "TEA-500G", "quantity": 1, "unit_price": "129.90"}
                            ],
                        }
                    ]
                }
            ]
        },
    )

    orders: Annotated[list[dict[str, Any]], bulk_items(OrderCreate)] = Field(
        min_length=1, max_length=BULK_MAX
    )


class BulkItemResult(BaseModel):
    """One item's outcome: ``status`` with ``id``, or ``error`` (a problem document)."""

    index: int
    status: int = Field(examples=[201])
    id: Id | None = None
    allocation: Allocation | None = Field(
        default=None,
        description="Bulk intake: the order's allocation (`short` and `partial` wait for stock).",
    )
    error: dict[str, Any] | None = None


class BulkResults(BaseModel):
    """One result per item, in input order."""

    results: list[BulkItemResult]


class BuyerOut(BaseModel):
    """Buyer as stored."""

    name: str
    phone: str
    province: str
    city: str
    address: str


class LineOut(BaseModel):
    """An order line."""

    line_no: int
    sku_id: Id
    sku_code: str
    quantity: int
    unit_price: NonNegativeMoney
    line_total: NonNegativeMoney
    reserved: int


class TrackingOut(BaseModel):
    """A carrier scan."""

    event: str
    at: datetime


class ShipmentOut(BaseModel):
    """The order's shipment."""

    carrier: str
    tracking_number: str
    shipped_at: datetime
    picked_up_at: datetime | None
    delivered_at: datetime | None
    events: list[TrackingOut]


class GroupBuyOut(BaseModel):
    """Group-buy state."""

    group_id: str | None
    formed_at: datetime | None


class DiscountOut(BaseModel):
    """The discount one promotion gave the order."""

    promotion_id: Id
    amount: NonNegativeMoney


class OrderPublic(BaseModel):
    """An order with its dispatch clock computed at read time."""

    id: Id
    store_id: Id
    external_id: str
    status: Status
    allocation: Allocation
    placed_at: datetime
    paid_at: datetime | None
    group_buy: GroupBuyOut | None
    promised_ship_by: datetime | None
    clock_started_at: datetime | None
    dispatch_deadline: datetime | None
    risk: Risk | None
    seconds_left: int | None
    penalty: NonNegativeMoney
    flags: list[Flag]
    buyer: BuyerOut
    items: list[LineOut]
    subtotal: NonNegativeMoney
    discount: NonNegativeMoney
    shipping_fee: NonNegativeMoney
    total: NonNegativeMoney
    coupon_code: str | None
    promotion_ids: list[Id]
    discounts: list[DiscountOut] = Field(
        default_factory=list, description="What each promotion the order used gave."
    )
    allow_backorder: bool
    hold_reason: str | None
    buyer_memo: str | None = Field(
        default=None, description="The buyer's note from the marketplace (marketplace sync)."
    )
    platform_buyer_id: str | None = Field(
        default=None, description="The marketplace's buyer id (marketplace sync)."
    )
    shipments: list[ShipmentOut]
    cancelled_at: datetime | None
    cancel_reason: str | None
    completed_at: datetime | None
    refunded_amount: NonNegativeMoney = Field(
        default=Decimal("0.00"), description="Sum refunded by after-sales tickets."
    )
    open_tickets: int = Field(default=0, description="After-sales tickets open on the order.")
    version: int
    created_at: datetime
    updated_at: datetime


class OrderSummary(BaseModel):
    """An awaiting order on the dispatch board or pick list."""

    id: Id
    store_id: Id
    external_id: str
    status: Status
    allocation: Allocation
    placed_at: datetime
    dispatch_deadline: datetime | None
    risk: Risk | None
    seconds_left: int | None
    penalty: NonNegativeMoney
    flags: list[Flag]
    total: NonNegativeMoney
