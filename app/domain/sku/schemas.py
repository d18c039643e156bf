"""Request and response shapes of SKUs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.domain.inventory.rules import VelocityClass
from app.domain.types import Id, JsonInt, NonNegativeMoney, Text

SKU_CODE_PATTERN = r"^[^\s\x00-\x1f][^\x00-\x1f]{0,63}$"
BARCODE_PATTERN = r"^[A-Za-z0-9-]{4,64}$"


class SkuStatus(StrEnum):
    """Whether the storefront sells the SKU."""

    ACTIVE = "active"
    DELISTED = "delisted"


class PlatformRef(BaseModel):
    """A marketplace's own SKU id for this SKU (marketplace sync maps lines by it when the
    seller code is missing); unique per store + platform + sku_id."""

    model_config = ConfigDict(extra="forbid")

    platform: Literal["pdd", "taobao", "douyin", "jd"]
    sku_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", examples=["1158836420275"]
    )


class _SkuFields(BaseModel):
    floor_price: NonNegativeMoney | None = Field(
        default=None, description="Lowest allowed selling price (default: cost_price)."
    )
    cost_price: NonNegativeMoney | None = None
    barcode: str | None = Field(default=None, pattern=BARCODE_PATTERN)
    low_stock_threshold: JsonInt | None = Field(default=None, ge=0, le=10_000_000)
    lead_time_days: JsonInt | None = Field(default=None, ge=0, le=365)
    safety_days: JsonInt | None = Field(default=None, ge=0, le=365)
    platform_refs: list[PlatformRef] | None = Field(
        default=None,
        max_length=50,
        description="Marketplace SKU ids (marketplace sync); on PATCH the list replaces them.",
    )


class SkuCreate(_SkuFields):
    """A new SKU."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "store_id": "1",
                    "sku_code": "TEA-500G",
                    "title": "西湖龙井 500g",
                    "price": "129.90",
                    "floor_price": "99.00",
                    "cost_price": "80.00",
                    "barcode": "6901234567892",
                    "lead_time_days": 5,
                }
            ]
        },
    )

    store_id: Id
    sku_code: str = Field(pattern=SKU_CODE_PATTERN, description="Unique within the store.")
    title: Text
    price: NonNegativeMoney

    @model_validator(mode="after")
    def _price_not_under_floor(self) -> SkuCreate:
        floor = self.floor_price if self.floor_price is not None else self.cost_price
        if floor is not None and self.price < floor:
            raise ValueError("price must not be under floor_price (or cost_price)")
        return self


class SkuUpdate(_SkuFields):
    """Changes to a SKU; ``status: delisted`` by hand keeps it delisted until set back."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"price": "119.90", "status": "active"}]}
    )

    sku_code: str | None = Field(default=None, pattern=SKU_CODE_PATTERN)
    title: Text | None = None
    price: NonNegativeMoney | None = None
    status: SkuStatus | None = None


class StockSummary(BaseModel):
    """Stock as the SKU read model shows it."""

    on_hand: int
    reserved: int
    available: int
    low_stock: bool
    threshold: int


class SkuPublic(BaseModel):
    """A SKU with its stock summary."""

    id: Id
    store_id: Id
    sku_code: str
    title: str
    price: NonNegativeMoney
    floor_price: NonNegativeMoney | None
    effective_floor_price: NonNegativeMoney | None = Field(
        description="floor_price, else cost_price, else none."
    )
    cost_price: NonNegativeMoney | None
    barcode: str | None
    low_stock_threshold: int | None
    lead_time_days: int | None
    safety_days: int | None
    status: SkuStatus
    delisted_by: str | None = Field(description="`auto` (out of stock) or `manual`.")
    velocity_class: VelocityClass
    avg_daily_sales: Decimal = Field(examples=["2.1429"])
    stock: StockSummary
    platform_refs: list[PlatformRef] = Field(default_factory=list)
    version: int
    created_at: datetime
    updated_at: datetime
