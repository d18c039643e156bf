"""Response shapes of the dispatch board and the pick list."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.domain.order.schemas import OrderSummary
from app.domain.types import Id, NonNegativeMoney

_SUMMARY_EXAMPLE: dict[str, Any] = {
    "id": "981",
    "store_id": "1",
    "external_id": "PDD2611110001",
    "status": "awaiting_shipment",
    "allocation": "full",
    "placed_at": "2026-11-11T10:00:00+08:00",
    "dispatch_deadline": "2026-11-13T10:01:00+08:00",
    "risk": "overdue",
    "seconds_left": -5400,
    "penalty": "3.00",
    "flags": ["urgent"],
    "total": "259.80",
}


class BoardCounts(BaseModel):
    """Awaiting-shipment orders of the store(s) by risk, and how many wait for stock."""

    on_track: int = Field(description="Deadline ahead, not yet at risk.", examples=[1520])
    at_risk: int = Field(
        description="Past min(internal target, half the window) since the clock started.",
        examples=[212],
    )
    overdue: int = Field(description="Past the dispatch deadline.", examples=[7])
    short: int = Field(
        description="Not fully allocated (`allocation` `partial` or `short`), whatever the risk.",
        examples=[31],
    )


class DispatchBoard(BaseModel):
    """Awaiting-shipment orders, most urgent first, with counts over all of them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "counts": {"on_track": 1520, "at_risk": 212, "overdue": 7, "short": 31},
                    "penalty_accrued": "21.00",
                    "items": [_SUMMARY_EXAMPLE],
                }
            ]
        }
    )

    counts: BoardCounts = Field(
        description="Over every awaiting order in scope, not just the items returned; "
        "orders whose group has not formed (no deadline) are in none of the risk counts."
    )
    penalty_accrued: NonNegativeMoney = Field(
        description="Late-shipment penalties of the overdue orders: the recorded penalty, "
        "else the store's policy applied to the order total (DOMAIN.md §1)."
    )
    items: list[OrderSummary] = Field(
        description="Overdue orders first; then urgent ones (shipping chase, or short stock "
        "within 12 h of the deadline); then all others (DOMAIN.md §2). Within each group by "
        "dispatch deadline, then `placed_at`; orders without a deadline (group not formed) "
        "last. `risk` is a label and a count, not the sort key."
    )


class PickSku(BaseModel):
    """Units of one SKU needed by the orders of the pick list."""

    sku_id: Id
    sku_code: str = Field(examples=["TEA-500G"])
    title: str = Field(examples=["西湖龙井 500g"])
    barcode: str | None = Field(examples=["6901234567892"])
    quantity: int = Field(description="Sum over the listed orders' lines.", examples=[4])


class PickLine(BaseModel):
    """One line of an order to pick."""

    line_no: int = Field(examples=[1])
    sku_id: Id
    sku_code: str = Field(examples=["TEA-500G"])
    title: str = Field(examples=["西湖龙井 500g"])
    barcode: str | None = Field(examples=["6901234567892"])
    quantity: int = Field(examples=[2])


class ShipTo(BaseModel):
    """The ship-to address, as the buyer gave it (packers print labels from it)."""

    name: str = Field(examples=["张三"])
    phone: str = Field(examples=["13800138000"])
    province: str = Field(examples=["浙江省"])
    city: str = Field(examples=["杭州市"])
    address: str = Field(examples=["西湖区文三路 1 号"])


class PickOrder(OrderSummary):
    """An order of the pick list: its summary, lines and ship-to address."""

    ship_to: ShipTo
    items: list[PickLine]


_SHIP_TO_EXAMPLE: dict[str, Any] = {
    "name": "张三",
    "phone": "13800138000",
    "province": "浙江省",
    "city": "杭州市",
    "address": "西湖区文三路 1 号",
}
_PICK_LINE_EXAMPLE: dict[str, Any] = {
    "line_no": 1,
    "sku_id": "12",
    "sku_code": "TEA-500G",
    "title": "西湖龙井 500g",
    "barcode": "6901234567892",
    "quantity": 2,
}


class PickList(BaseModel):
    """The next orders to pick, most urgent first, and the SKU totals to pull for them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "orders": [
                        {
                            **_SUMMARY_EXAMPLE,
                            "flags": [],
                            "ship_to": _SHIP_TO_EXAMPLE,
                            "items": [_PICK_LINE_EXAMPLE],
                        }
                    ],
                    "skus": [
                        {
                            "sku_id": "12",
                            "sku_code": "TEA-500G",
                            "title": "西湖龙井 500g",
                            "barcode": "6901234567892",
                            "quantity": 2,
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    orders: list[PickOrder] = Field(
        description="Awaiting orders that can ship now: fully allocated, not on hold, no "
        "refund pending, deadline set; ordered like the dispatch board (overdue, urgent, "
        "then the others; each by deadline, then `placed_at`)."
    )
    skus: list[PickSku] = Field(description="Totals over the listed orders, by SKU code.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page."
    )
