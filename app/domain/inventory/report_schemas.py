"""Shapes of the stock reports: the low-stock list and the weekly replenishment table."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from app.domain.inventory.rules import DEFAULT_COVER_DAYS, VelocityClass
from app.domain.sku.schemas import SkuStatus
from app.domain.types import Id

_FOUR = Decimal("0.0001")
_ONE = Decimal("0.1")


def format_avg(value: Decimal) -> str:
    """Average daily sales on the wire: ``Decimal('10')`` → ``'10.0000'``."""
    return format(value.quantize(_FOUR, rounding=ROUND_HALF_UP), "f")


def format_cover(value: Decimal) -> str:
    """Days of cover on the wire: ``Decimal('5')`` → ``'5.0'``."""
    return format(value.quantize(_ONE, rounding=ROUND_HALF_UP), "f")


AvgDailySales = Annotated[
    Decimal,
    PlainSerializer(format_avg, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{4}$", "examples": ["10.0000"]}),
]
"""Units sold per day over the last 28 days, a decimal string with four places."""

DaysOfCover = Annotated[
    Decimal,
    PlainSerializer(format_cover, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d$", "examples": ["5.0"]}),
]
"""Days the available stock lasts at the current rate, a decimal string with one place."""


def _avg_field() -> Any:
    return Field(
        description="Average units sold per day over the last 28 days (`ship` movements), "
        "four decimal places.",
        examples=["10.0000"],
    )


def _status_field() -> Any:
    return Field(
        description="`active`, or `delisted` when the SKU ran out and was delisted "
        "automatically (it is relisted when stock returns). SKUs delisted by hand are not "
        "in the stock reports.",
        examples=["active"],
    )


_SUGGESTION = (
    "`max(0, max(ceil(avg_daily_sales × (lead_time_days + safety_days + cover_days)), "
    "threshold + 1) − available + backordered)`, `cover_days` 14: enough to serve the "
    "backorders and cover the lead time, the safety days and two more weeks of sales, and "
    "never less than what brings the SKU above its low-stock threshold, so a low-stock SKU "
    "always gets a positive quantity (no inbound stock is tracked). The same figure as "
    "`suggested_reorder` in `/v1/low-stock` and `suggested_qty` in `/v1/replenishment`."
)


def _velocity_field() -> Any:
    return Field(
        description="热销 `hot` ≥ 5/day, 滞销 `slow` < 0.2/day, otherwise 常销 `regular`.",
        examples=["hot"],
    )


class LowStockItem(BaseModel):
    """A SKU at or under its low-stock threshold (库存预警)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sku_id": "12",
                    "store_id": "1",
                    "sku_code": "TEA-500G",
                    "title": "西湖龙井 500g",
                    "status": "active",
                    "available": 50,
                    "threshold": 140,
                    "backordered": 0,
                    "velocity_class": "hot",
                    "avg_daily_sales": "10.0000",
                    "suggested_reorder": 230,
                }
            ]
        }
    )

    sku_id: Id
    store_id: Id
    sku_code: str = Field(examples=["TEA-500G"])
    title: str = Field(examples=["西湖龙井 500g"])
    status: SkuStatus = _status_field()
    available: int = Field(description="`on_hand − reserved`.", examples=[50])
    threshold: int = Field(
        description="`low_stock_threshold` if set, else the reorder point "
        "`ceil(avg_daily_sales × (lead_time_days + safety_days))`, computed now.",
        examples=[140],
    )
    backordered: int = Field(
        description="Units ordered by buyers that are still waiting for stock.", examples=[0]
    )
    velocity_class: VelocityClass = _velocity_field()
    avg_daily_sales: AvgDailySales = _avg_field()
    suggested_reorder: int = Field(
        description="Units to order, always > 0 here: " + _SUGGESTION, examples=[230]
    )


class ReplenishmentRow(BaseModel):
    """One active or auto-delisted SKU of the weekly replenishment request (补货需求表)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sku_id": "12",
                    "store_id": "1",
                    "sku_code": "TEA-500G",
                    "title": "西湖龙井 500g",
                    "status": "active",
                    "velocity_class": "hot",
                    "avg_daily_sales": "10.0000",
                    "on_hand": 60,
                    "reserved": 10,
                    "available": 50,
                    "backordered": 0,
                    "days_of_cover": "5.0",
                    "lead_time_days": 7,
                    "safety_days": 7,
                    "reorder_point": 140,
                    "suggested_qty": 230,
                }
            ]
        }
    )

    sku_id: Id
    store_id: Id
    sku_code: str = Field(examples=["TEA-500G"])
    title: str = Field(examples=["西湖龙井 500g"])
    status: SkuStatus = _status_field()
    velocity_class: VelocityClass = _velocity_field()
    avg_daily_sales: AvgDailySales = _avg_field()
    on_hand: int = Field(description="Units in the warehouse (sum of the ledger).", examples=[60])
    reserved: int = Field(description="Units held for unshipped order lines.", examples=[10])
    available: int = Field(description="`on_hand − reserved`.", examples=[50])
    backordered: int = Field(
        description="Units ordered by buyers that are still waiting for stock.", examples=[0]
    )
    days_of_cover: DaysOfCover | None = Field(
        description="`available / avg_daily_sales`, one decimal place; null when nothing sells.",
        examples=["5.0"],
    )
    lead_time_days: int = Field(description="The SKU's lead time (default 7).", examples=[7])
    safety_days: int = Field(
        description="The SKU's safety days (default by class: hot 7, regular 3, slow 1).",
        examples=[7],
    )
    reorder_point: int = Field(
        description="`ceil(avg_daily_sales × (lead_time_days + safety_days))`.", examples=[140]
    )
    suggested_qty: int = Field(description="Units to order: " + _SUGGESTION, examples=[230])


class ReplenishmentTable(BaseModel):
    """The weekly replenishment request: every active or auto-delisted SKU (not those delisted
    by hand); hot first, then regular, then slow; fewest days of cover first within a class
    (none last), then by SKU code."""

    store_id: Id | None = Field(
        description="The store asked for; null when the table covers the key's whole scope."
    )
    generated_at: datetime = Field(examples=["2026-11-12T09:00:00+08:00"])
    cover_days: int = Field(
        default=DEFAULT_COVER_DAYS,
        description="Days of sales the suggested quantities cover beyond the reorder point.",
        examples=[DEFAULT_COVER_DAYS],
    )
    items: list[ReplenishmentRow]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` for the next page; null on the last page.",
    )


REPLENISHMENT_CSV_FIELDS: tuple[str, ...] = tuple(ReplenishmentRow.model_fields)
"""Column order of the CSV export: the row's field names."""
