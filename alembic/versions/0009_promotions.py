"""promotions: rules, windows, sharded usage counters, per-buyer uses, order discounts, ad spend

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:55:53.124446

A coupon code is unique per store among live coupons (a partial unique index). Usage
limits and budgets are split over counter shards so parallel redemptions rarely wait on
one row; per-buyer uses have a row per (promotion, buyer).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may emit sqlmodel.sql.sqltypes.AutoString
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "promotions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("store_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sku_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schedule", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("stackable", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("per_buyer_limit", sa.Integer(), nullable=True),
        sa.Column("budget", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("calendar_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_boundary_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind <> 'coupon' OR code IS NOT NULL", name="ck_promotions_code"),
        sa.CheckConstraint(
            "kind IN ('percent_off', 'multi_buy', 'threshold_off', 'amount_off', 'gift', 'free_shipping', 'special_price', 'group_buy', 'coupon')",
            name="ck_promotions_kind",
        ),
        sa.CheckConstraint("ends_at > starts_at", name="ck_promotions_window"),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_promotions_next_boundary_at",
        "promotions",
        ["next_boundary_at"],
        unique=False,
        postgresql_where=sa.text("next_boundary_at IS NOT NULL"),
    )
    op.create_index("ix_promotions_store_id_id", "promotions", ["store_id", "id"], unique=False)
    op.create_index(
        "uq_promotions_store_id_code",
        "promotions",
        ["store_id", "code"],
        unique=True,
        postgresql_where=sa.text("code IS NOT NULL AND ended_at IS NULL"),
    )
    op.create_table(
        "order_promotions",
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("promotion_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=True),
        sa.Column("buyer_key", sa.Text(), nullable=True),
        sa.Column("redeemed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
        ),
        sa.PrimaryKeyConstraint("order_id", "promotion_id"),
    )
    op.create_index(
        "ix_order_promotions_promotion_id", "order_promotions", ["promotion_id"], unique=False
    )
    op.create_table(
        "promotion_buyers",
        sa.Column("promotion_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("buyer_key", sa.Text(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.CheckConstraint("uses >= 0", name="ck_promotion_buyers_uses"),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
        ),
        sa.PrimaryKeyConstraint("promotion_id", "buyer_key"),
    )
    op.create_table(
        "promotion_counters",
        sa.Column("promotion_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=True),
        sa.Column("budget_left", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.CheckConstraint("budget_left >= 0", name="ck_promotion_counters_budget_left"),
        sa.CheckConstraint("uses_left >= 0", name="ck_promotion_counters_uses_left"),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
        ),
        sa.PrimaryKeyConstraint("promotion_id", "shard"),
    )
    op.create_table(
        "promotion_spend",
        sa.Column("promotion_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("spend_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
        ),
        sa.PrimaryKeyConstraint("promotion_id", "spend_date"),
    )


def downgrade() -> None:
    op.drop_table("promotion_spend")
    op.drop_table("promotion_counters")
    op.drop_table("promotion_buyers")
    op.drop_index("ix_order_promotions_promotion_id", table_name="order_promotions")
    op.drop_table("order_promotions")
    op.drop_index(
        "uq_promotions_store_id_code",
        table_name="promotions",
        postgresql_where=sa.text("code IS NOT NULL AND ended_at IS NULL"),
    )
    op.drop_index("ix_promotions_store_id_id", table_name="promotions")
    op.drop_index(
        "ix_promotions_next_boundary_at",
        table_name="promotions",
        postgresql_where=sa.text("next_boundary_at IS NOT NULL"),
    )
    op.drop_table("promotions")
