"""The stock ledger, reservations and stocktakes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models._types import created_at_column, id_column

MOVEMENT_KINDS = ("receive", "adjust", "damage", "return", "ship", "stocktake")


class StockMovement(SQLModel, table=True):
    """One immutable change of a SKU's ``on_hand`` (signed ``quantity``)."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('receive', 'adjust', 'damage', 'return', 'ship', 'stocktake')",
            name="ck_stock_movements_kind",
        ),
        sa.CheckConstraint("quantity <> 0", name="ck_stock_movements_quantity"),
        sa.CheckConstraint("on_hand_after >= 0", name="ck_stock_movements_on_hand_after"),
        sa.Index("ix_stock_movements_sku_id_id", "sku_id", "id"),
        sa.Index("ix_stock_movements_store_id_id", "store_id", "id"),
        # Velocity: units shipped per SKU over the last 28 days.
        sa.Index(
            "ix_stock_movements_ship",
            "sku_id",
            "created_at",
            postgresql_where=sa.text("kind = 'ship'"),
            postgresql_include=["quantity"],
        ),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    sku_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("skus.id"), nullable=False)
    )
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    kind: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    quantity: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    on_hand_after: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    reference: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    api_key_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())


class Reservation(SQLModel, table=True):
    """Stock held for one order line; ``reserved < requested`` means it waits (backorder)."""

    __tablename__ = "reservations"
    __table_args__ = (
        sa.CheckConstraint("requested > 0", name="ck_reservations_requested"),
        sa.CheckConstraint(
            "reserved >= 0 AND reserved <= requested", name="ck_reservations_reserved"
        ),
        sa.CheckConstraint(
            "status IN ('open', 'consumed', 'released')", name="ck_reservations_status"
        ),
        sa.UniqueConstraint("line_ref", name="uq_reservations_line_ref"),
        # Backorder allocation: earliest deadline, then earliest placed_at.
        sa.Index(
            "ix_reservations_waiting",
            "sku_id",
            "deadline",
            "placed_at",
            "id",
            postgresql_where=sa.text("status = 'open' AND reserved < requested"),
        ),
        sa.Index(
            "ix_reservations_held",
            "sku_id",
            "deadline",
            postgresql_where=sa.text("status = 'open' AND reserved > 0"),
        ),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    sku_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("skus.id"), nullable=False)
    )
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    # The holder: an order line (orders issue); any unique reference until then.
    line_ref: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    order_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    requested: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    reserved: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    deadline: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    placed_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    status: str = Field(
        default="open", sa_column=sa.Column(sa.Text, nullable=False, server_default="open")
    )
    # Stock taken inside COMMIT by a deferred trigger (migration 0005), not at insert.
    take_at_commit: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())


class Stocktake(SQLModel, table=True):
    """A count of some SKUs of a store (盘点), applied in one transaction."""

    __tablename__ = "stocktakes"
    __table_args__ = (sa.Index("ix_stocktakes_store_id_id", "store_id", "id"),)

    id: int | None = Field(default=None, sa_column=id_column())
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    note: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    api_key_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())


class StocktakeLine(SQLModel, table=True):
    """Expected, counted and variance of one SKU in a stocktake."""

    __tablename__ = "stocktake_lines"

    stocktake_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stocktakes.id"), primary_key=True)
    )
    sku_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("skus.id"), primary_key=True)
    )
    expected: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    counted: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    variance: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    released: int = Field(
        default=0,
        sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"),
    )
