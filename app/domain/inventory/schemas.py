"""Request and response shapes of the stock ledger, stock figures, stocktakes and sync."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.domain.inventory.rules import VelocityClass
from app.domain.types import BULK_MAX, Id, JsonInt, Note, bulk_items

MAX_QUANTITY = 1_000_000_000
REFERENCE_PATTERN = r"^[^\x00]{1,200}$"


class MovementKind(StrEnum):
    """Kinds a client may post; ``ship`` and ``stocktake`` are written by the service."""

    RECEIVE = "receive"
    ADJUST = "adjust"
    DAMAGE = "damage"
    RETURN = "return"


LEDGER_KINDS = ("receive", "adjust", "damage", "return", "ship", "stocktake")


class MovementCreate(BaseModel):
    """A stock movement: ``receive``/``return`` add, ``damage`` removes, ``adjust`` is signed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"sku_id": "12", "kind": "receive", "quantity": 120, "reference": "PO-2026-1111"},
                {"sku_id": "12", "kind": "damage", "quantity": 2, "reason": "破损"},
            ]
        },
    )

    sku_id: Id
    kind: MovementKind
    quantity: JsonInt = Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)
    reason: Note | None = None
    reference: str | None = Field(default=None, pattern=REFERENCE_PATTERN)

    @model_validator(mode="after")
    def _sign(self) -> MovementCreate:
        if self.kind == MovementKind.ADJUST:
            if self.quantity == 0:
                raise ValueError("an adjust movement needs a non-zero quantity")
        elif self.quantity <= 0:
            raise ValueError(f"{self.kind.value} needs a positive quantity")
        return self

    @property
    def delta(self) -> int:
        """The signed change of on_hand."""
        return -self.quantity if self.kind == MovementKind.DAMAGE else self.quantity


class MovementPublic(BaseModel):
    """One ledger entry; ``quantity`` is the signed change of ``on_hand``."""

    id: Id
    sku_id: Id
    store_id: Id
    kind: str = Field(examples=["receive"])
    quantity: int = Field(examples=[120], description="Signed change of on_hand.")
    on_hand_after: int = Field(examples=[340])
    reason: str | None
    reference: str | None
    api_key_id: Id | None = Field(description="The key that made the change.")
    created_at: datetime


class StockPublic(BaseModel):
    """A SKU's stock figures."""

    sku_id: Id
    on_hand: int
    reserved: int
    available: int
    low_stock: bool
    threshold: int
    reorder_point: int
    velocity_class: VelocityClass
    avg_daily_sales: Decimal = Field(examples=["2.1429"])
    backordered: int = Field(description="Units ordered but waiting for stock.")


class StocktakeLineIn(BaseModel):
    """A counted quantity."""

    model_config = ConfigDict(extra="forbid")

    sku_id: Id
    counted: JsonInt = Field(ge=0, le=MAX_QUANTITY)


class StocktakeCreate(BaseModel):
    """A stocktake (盘点) of some SKUs of one store, applied all or nothing."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "store_id": "1",
                    "lines": [{"sku_id": "12", "counted": 118}, {"sku_id": "13", "counted": 40}],
                    "note": "月末盘点",
                }
            ]
        },
    )

    store_id: Id
    lines: list[StocktakeLineIn] = Field(min_length=1, max_length=5000)
    note: Note | None = None


class StocktakeLinePublic(BaseModel):
    """Expected (before), counted and variance of one SKU."""

    sku_id: Id
    expected: int
    counted: int
    variance: int
    released: int = Field(
        description="Units taken back from reservations because the count fell below them."
    )


class StocktakePublic(BaseModel):
    """An applied stocktake."""

    id: Id
    store_id: Id
    note: str | None
    api_key_id: Id | None
    created_at: datetime
    lines: list[StocktakeLinePublic]


class StockLevelItem(BaseModel):
    """One absolute level pushed by the ERP."""

    model_config = ConfigDict(extra="forbid")

    store_id: Id
    sku_code: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")
    on_hand: JsonInt = Field(ge=0, le=MAX_QUANTITY)


class StockLevelsSync(BaseModel):
    """Absolute stock levels from the ERP (≤ 1,000 items); each item succeeds or fails alone."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"store_id": "1", "sku_code": "TEA-500G", "on_hand": 340},
                        {"store_id": "1", "sku_code": "TEA-250G", "on_hand": 0},
                    ]
                }
            ]
        },
    )

    items: Annotated[list[dict[str, Any]], bulk_items(StockLevelItem)] = Field(
        min_length=1, max_length=BULK_MAX
    )


class BulkResult(BaseModel):
    """One item's outcome: ``status`` 200 with the result, or an error problem."""

    index: int
    status: int
    id: str | None = None
    sku_id: str | None = None
    on_hand: int | None = None
    changed: bool | None = None
    movement_id: str | None = None
    error: dict[str, Any] | None = None


class BulkResults(BaseModel):
    """Results in input order."""

    results: list[BulkResult]
