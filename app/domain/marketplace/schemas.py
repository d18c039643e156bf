"""Request and response shapes of marketplace sync."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.domain.order.schemas import Buyer, Carrier, ExternalId, GroupBuyIn, ItemIn
from app.domain.types import (
    BULK_MAX,
    NO_NUL,
    Id,
    Instant,
    NonNegativeMoney,
    Note,
    bulk_items,
    check_amount,
)

PlatformStatus = Literal[
    "pending_payment",
    "awaiting_shipment",
    "group_pending",
    "group_failed",
    "refund_pending",
    "shipped",
    "delivered",
    "completed",
    "cancelled",
]
Platform = Literal["pdd", "taobao", "douyin", "jd"]

_EXAMPLE: dict[str, Any] = {
    "platform_status": "awaiting_shipment",
    "placed_at": "2026-11-11T09:58:41+08:00",
    "paid_at": "2026-11-11T09:58:47+08:00",
    "buyer": {
        "name": "王*",
        "phone": "138****5521",
        "province": "浙江省",
        "city": "杭州市",
        "address": "西湖区 文三路***号",
    },
    "items": [{"sku_code": "TEA-500G", "quantity": 2, "unit_price": "59.80"}],
    "shipping_fee": "0.00",
    "discount": "13.00",
    "group_buy": {"group_id": "6582039471", "formed_at": "2026-11-11T10:02:13+08:00"},
    "promised_ship_by": "2026-11-13T10:02:13+08:00",
    "buyer_memo": "请用纸箱包装",
}


class SnapshotBuyer(Buyer):
    """The buyer as the platform gives it (masked or encrypted values stored as given), with
    the platform's buyer id where it has one (``platform_buyer_id``, on every order body)."""


class ShipmentIn(BaseModel):
    """A shipment made elsewhere (the platform reports it shipped)."""

    model_config = ConfigDict(extra="forbid")

    carrier: Carrier
    tracking_number: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
    shipped_at: Instant | None = None


class _SnapshotFields(BaseModel):
    placed_at: Instant
    paid_at: Instant | None = None
    buyer: SnapshotBuyer
    items: list[ItemIn] = Field(min_length=1, max_length=200)
    shipping_fee: NonNegativeMoney = Decimal("0.00")
    discount: NonNegativeMoney = Decimal("0.00")
    group_buy: GroupBuyIn | None = None
    promised_ship_by: Instant | None = None
    allow_backorder: bool = Field(default=True, strict=True)
    buyer_memo: Note | None = None
    platform_status: PlatformStatus
    shipment: ShipmentIn | None = Field(
        default=None, description="Required when the platform shipped an order we have not."
    )
    delivered_at: Instant | None = Field(default=None, description="For delivered/completed.")
    urged_at: Instant | None = Field(default=None, description="催发货: the buyer urged shipping.")

    @model_validator(mode="after")
    def _consistent(self) -> _SnapshotFields:
        check_amount(
            sum((i.unit_price * i.quantity for i in self.items), start=self.shipping_fee),
            "subtotal + shipping_fee",
        )
        if self.paid_at is not None and self.paid_at < self.placed_at:
            raise ValueError("paid_at must not be before placed_at")
        if self.platform_status == "pending_payment" and self.paid_at is not None:
            raise ValueError("a pending_payment snapshot has no paid_at")
        if self.platform_status not in ("pending_payment", "cancelled") and self.paid_at is None:
            raise ValueError(f"a {self.platform_status} snapshot needs paid_at")
        if self.platform_status in ("group_pending", "group_failed") and self.group_buy is None:
            raise ValueError(f"a {self.platform_status} snapshot needs group_buy")
        return self


class SnapshotIn(_SnapshotFields):
    """The order as the platform sees it now (the path names store and external id)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})


class SnapshotBulkItem(_SnapshotFields):
    """One snapshot of a bulk request."""

    model_config = ConfigDict(extra="forbid")

    store_id: Id
    external_id: ExternalId


class SnapshotBulkIn(BaseModel):
    """Up to 1,000 snapshots; each is applied or refused on its own."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"orders": [{"store_id": "1", "external_id": "PDD2611110001", **_EXAMPLE}]}
            ]
        },
    )

    orders: Annotated[list[dict[str, Any]], bulk_items(SnapshotBulkItem)] = Field(
        min_length=1, max_length=BULK_MAX
    )


class PlatformOrdersIn(BaseModel):
    """Platform order objects as its list or detail API returns them (≤ 1,000)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "orders": [
                        {
                            "order_sn": "241111-538204917730512",
                            "order_status": 1,
                            "refund_status": 1,
                            "confirm_status": 1,
                            "group_status": 1,
                            "group_order_id": 6582039471,
                            "created_time": "2024-11-11 09:58:41",
                            "pay_time": "2024-11-11 09:58:47",
                            "confirm_time": "2024-11-11 10:02:13",
                            "last_ship_time": "2024-11-13 10:02:13",
                            "goods_amount": 119.6,
                            "discount_amount": 13.0,
                            "postage": 0,
                            "pay_amount": 106.6,
                            "province": "浙江省",
                            "city": "杭州市",
                            "town": "西湖区",
                            "receiver_name_mask": "王*",
                            "receiver_phone_mask": "138****5521",
                            "receiver_address_mask": "文三路***号",
                            "item_list": [
                                {
                                    "sku_id": 1158836420275,
                                    "outer_id": "SHT-4J-GRY-18",
                                    "goods_count": 2,
                                    "goods_price": 59.8,
                                }
                            ],
                        }
                    ]
                }
            ]
        },
    )

    orders: list[Any] = Field(min_length=1, max_length=BULK_MAX)


class SyncItemResult(BaseModel):
    """One item's outcome: ``status`` with ``id``, or ``error``; ``queued`` when it was
    kept in the review queue (``id`` is then the queue entry's)."""

    index: int
    status: int = Field(examples=[201])
    id: Id | None = None
    order_id: Id | None = None
    queued: bool | None = None
    error: dict[str, Any] | None = None


class SyncResults(BaseModel):
    """One result per item, in input order."""

    results: list[SyncItemResult]


class UnmappedPublic(BaseModel):
    """A platform order kept for review: the payload whole, and what could not be mapped."""

    id: Id
    store_id: Id
    platform: str
    external_id: str | None
    status: Literal["open", "resolved", "discarded"]
    problem: dict[str, Any]
    payload: Any
    attempts: int
    order_id: Id | None
    discard_reason: str | None
    created_at: datetime
    updated_at: datetime


class DiscardIn(BaseModel):
    """Why the entry is discarded (kept for audit)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "测试订单，不发货"}]}
    )

    reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=NO_NUL)]


class ShipCall(BaseModel):
    """A shipment to confirm to the platform, in its ship call's parameters."""

    id: Id = Field(description="The shipment's id (the order's): confirm it with this.")
    order_id: Id
    external_id: str
    carrier: str
    tracking_number: str
    shipped_at: datetime
    api: str = Field(examples=["pdd.logistics.online.send"])
    params: dict[str, Any] = Field(
        examples=[
            {
                "order_sn": "241111-538204917730512",
                "logistics_id": "115",
                "tracking_number": "73100000000001",
            }
        ]
    )
    error: str | None = Field(
        default=None,
        description="`carrier_code_missing`: the store has no code for this carrier on this "
        "platform (set `carrier_codes` on the store); the parameter is null.",
    )
    missing: str | None = Field(default=None, examples=["carrier_codes.pdd.ZTO"])


class ConfirmIn(BaseModel):
    """Shipments confirmed to the platform."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ids": ["981"]}]})

    ids: list[Id] = Field(min_length=1, max_length=BULK_MAX)


class ConfirmOut(BaseModel):
    """Which ids were marked sent; ``unknown`` ones are not shipments of this platform."""

    confirmed: list[Id]
    unknown: list[Id]
