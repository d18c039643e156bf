"""Stores, their monthly targets and daily traffic."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from app.models._types import MONEY, created_at_column, id_column

PLATFORMS = ("pdd", "taobao", "tmall", "jd", "douyin", "other")


class Store(SQLModel, table=True):
    """A shop on one marketplace; every other row belongs to exactly one store."""

    __tablename__ = "stores"
    __table_args__ = (
        sa.CheckConstraint(
            "platform IN ('pdd', 'taobao', 'tmall', 'jd', 'douyin', 'other')",
            name="ck_stores_platform",
        ),
        sa.CheckConstraint(
            "service_start_minute >= 0 AND service_start_minute < service_end_minute "
            "AND service_end_minute <= 1440",
            name="ck_stores_service_hours",
        ),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    code: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    platform: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    timezone: str = Field(
        default="Asia/Shanghai",
        sa_column=sa.Column(sa.Text, nullable=False, server_default="Asia/Shanghai"),
    )
    # Only the fields the store overrides; the effective policy adds platform defaults.
    dispatch_policy: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=sa.Column(pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    # Customer-service day for ticket SLAs (DOMAIN.md §4), minutes after midnight store time.
    service_start_minute: int = Field(
        default=480, sa_column=sa.Column(sa.Integer, nullable=False, server_default="480")
    )
    service_end_minute: int = Field(
        default=1380, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1380")
    )
    # Ship-back (marketplace sync): {platform: {carrier: the platform's carrier code}}.
    carrier_codes: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=sa.Column(pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())


class StoreTarget(SQLModel, table=True):
    """Monthly sales target (``month`` is the first day of the month)."""

    __tablename__ = "store_targets"

    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), primary_key=True)
    )
    month: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    sales_target: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())


class StoreTraffic(SQLModel, table=True):
    """Daily visitors and ad spend, pushed from the marketplace export by the ERP."""

    __tablename__ = "store_traffic"

    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), primary_key=True)
    )
    day: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    visitors: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    ad_spend: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())
