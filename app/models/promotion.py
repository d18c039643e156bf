"""Promotions, their usage counters, per-buyer uses, order discounts and ad spend."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from app.models._types import MONEY, created_at_column, id_column

PROMOTION_KINDS = (
    "percent_off",
    "multi_buy",
    "threshold_off",
    "amount_off",
    "gift",
    "free_shipping",
    "special_price",
    "group_buy",
    "coupon",
)


def _ts(nullable: bool = True) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Promotion(SQLModel, table=True):
    """A store promotion: kind, rules, window, weekly schedule and limits."""

    __tablename__ = "promotions"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('percent_off', 'multi_buy', 'threshold_off', 'amount_off', 'gift', "
            "'free_shipping', 'special_price', 'group_buy', 'coupon')",
            name="ck_promotions_kind",
        ),
        sa.CheckConstraint("ends_at > starts_at", name="ck_promotions_window"),
        sa.CheckConstraint("kind <> 'coupon' OR code IS NOT NULL", name="ck_promotions_code"),
        # A coupon code names one live coupon per store; parallel creates race on this index.
        sa.Index(
            "uq_promotions_store_id_code",
            "store_id",
            "code",
            unique=True,
            postgresql_where=sa.text("code IS NOT NULL AND ended_at IS NULL"),
        ),
        sa.Index("ix_promotions_store_id_id", "store_id", "id"),
        # The calendar sweep: promotions with a window boundary still to announce.
        sa.Index(
            "ix_promotions_next_boundary_at",
            "next_boundary_at",
            postgresql_where=sa.text("next_boundary_at IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    rules: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(pg.JSONB, nullable=False)
    )
    # None: every SKU of the store.
    sku_ids: list[int] | None = Field(default=None, sa_column=sa.Column(pg.ARRAY(sa.BigInteger)))
    starts_at: datetime = Field(sa_column=_ts(False))
    ends_at: datetime = Field(sa_column=_ts(False))
    schedule: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(pg.JSONB))
    stackable: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    code: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    usage_limit: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    per_buyer_limit: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    budget: Decimal | None = Field(default=None, sa_column=sa.Column(MONEY))
    # Set when ended early (POST …/end) or by the sweep once its window has passed.
    ended_at: datetime | None = Field(default=None, sa_column=_ts())
    # Calendar events are announced up to calendar_at; the next boundary after it.
    calendar_at: datetime = Field(sa_column=_ts(False))
    next_boundary_at: datetime | None = Field(default=None, sa_column=_ts())
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())


class PromotionCounter(SQLModel, table=True):
    """One shard of a promotion's usage limit and budget: claims take from a random shard."""

    __tablename__ = "promotion_counters"
    __table_args__ = (
        sa.CheckConstraint("uses_left >= 0", name="ck_promotion_counters_uses_left"),
        sa.CheckConstraint("budget_left >= 0", name="ck_promotion_counters_budget_left"),
    )

    promotion_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("promotions.id"), primary_key=True, autoincrement=False
        )
    )
    shard: int = Field(sa_column=sa.Column(sa.SmallInteger, primary_key=True, autoincrement=False))
    uses_left: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    budget_left: Decimal | None = Field(default=None, sa_column=sa.Column(MONEY))


class PromotionBuyer(SQLModel, table=True):
    """How many times one buyer used a promotion (per-buyer limits)."""

    __tablename__ = "promotion_buyers"
    __table_args__ = (sa.CheckConstraint("uses >= 0", name="ck_promotion_buyers_uses"),)

    promotion_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("promotions.id"), primary_key=True, autoincrement=False
        )
    )
    buyer_key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    uses: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))


class OrderPromotion(SQLModel, table=True):
    """The discount one promotion gave one order; a redeemed coupon notes what it claimed."""

    __tablename__ = "order_promotions"
    __table_args__ = (sa.Index("ix_order_promotions_promotion_id", "promotion_id"),)

    order_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("orders.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    promotion_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("promotions.id"), primary_key=True, autoincrement=False
        )
    )
    amount: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    # The counter shard a redemption claimed from (null: nothing claimed).
    shard: int | None = Field(default=None, sa_column=sa.Column(sa.SmallInteger))
    buyer_key: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    redeemed: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    # Set when a cancellation or full refund gave the use back.
    returned_at: datetime | None = Field(default=None, sa_column=_ts())


class PromotionSpend(SQLModel, table=True):
    """Ad spend attributed to a promotion on one day (a second post replaces it)."""

    __tablename__ = "promotion_spend"

    promotion_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("promotions.id"), primary_key=True, autoincrement=False
        )
    )
    spend_date: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    amount: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())
