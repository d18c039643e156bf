"""SKUs and their stock balance."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models._types import MONEY, created_at_column, id_column


class Sku(SQLModel, table=True):
    """A sellable item of one store."""

    __tablename__ = "skus"
    __table_args__ = (
        sa.UniqueConstraint("store_id", "sku_code", name="uq_skus_store_id_sku_code"),
        sa.CheckConstraint("status IN ('active', 'delisted')", name="ck_skus_status"),
        sa.CheckConstraint(
            "delisted_by IS NULL OR delisted_by IN ('auto', 'manual')", name="ck_skus_delisted_by"
        ),
        sa.CheckConstraint("price >= 0", name="ck_skus_price"),
        sa.Index("ix_skus_barcode", "barcode"),
        sa.Index("ix_skus_store_id_id", "store_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    sku_code: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    title: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    price: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    floor_price: Decimal | None = Field(default=None, sa_column=sa.Column(MONEY))
    cost_price: Decimal | None = Field(default=None, sa_column=sa.Column(MONEY))
    barcode: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    low_stock_threshold: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    lead_time_days: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    safety_days: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    status: str = Field(
        default="active", sa_column=sa.Column(sa.Text, nullable=False, server_default="active")
    )
    delisted_by: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())


class StockLevel(SQLModel, table=True):
    """Running balance of a SKU's ledger; the CHECK makes overselling impossible."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        sa.CheckConstraint(
            "reserved >= 0 AND reserved <= on_hand", name="ck_stock_levels_reserved_within_on_hand"
        ),
    )

    sku_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("skus.id"), primary_key=True)
    )
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    on_hand: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    reserved: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    # Low-stock threshold as of the last refresh (SKU change, shipment, sweep), so that
    # stock changes can detect crossings without recomputing velocity every time.
    threshold: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    # Hysteresis: stock.low / stock.out fire once per crossing, re-armed on recovery.
    low_notified: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    out_notified: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())
