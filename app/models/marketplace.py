"""Marketplace sync: platform SKU references and the intake review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from app.models._types import created_at_column, id_column


class SkuPlatformRef(SQLModel, table=True):
    """A platform's own SKU id for one of our SKUs (the fallback when no seller code maps)."""

    __tablename__ = "sku_platform_refs"
    __table_args__ = (
        sa.UniqueConstraint(
            "store_id", "platform", "platform_sku_id", name="uq_sku_platform_refs_ref"
        ),
        sa.Index("ix_sku_platform_refs_sku_id", "sku_id"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    sku_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("skus.id"), nullable=False)
    )
    platform: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    platform_sku_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False))


class MarketplaceUnmapped(SQLModel, table=True):
    """A platform order that could not be mapped, kept whole for review."""

    __tablename__ = "marketplace_unmapped"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('open', 'resolved', 'discarded')", name="ck_marketplace_unmapped_status"
        ),
        sa.Index(
            "uq_marketplace_unmapped_open",
            "store_id",
            "platform",
            "dedupe_key",
            unique=True,
            postgresql_where=sa.text("status = 'open'"),
        ),
        sa.Index("ix_marketplace_unmapped_store_id_id", "store_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    platform: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    external_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    dedupe_key: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    payload: Any = Field(sa_column=sa.Column(pg.JSONB, nullable=False))
    problem: dict[str, Any] = Field(sa_column=sa.Column(pg.JSONB, nullable=False))
    status: str = Field(
        default="open", sa_column=sa.Column(sa.Text, nullable=False, server_default="open")
    )
    order_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("orders.id"))
    )
    discard_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    attempts: int = Field(
        default=1, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1")
    )
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())


class OrderSnapshot(SQLModel, table=True):
    """The hash of the last snapshot applied to an order (an unchanged one is a no-op)."""

    __tablename__ = "order_snapshots"

    order_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("orders.id"), primary_key=True)
    )
    hash: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
