"""marketplace sync: snapshot hashes, platform refund hold, SKU platform refs, the intake
review queue, ship-back confirmations and per-store carrier codes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 16:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may emit sqlmodel.sql.sqltypes.AutoString
from sqlalchemy.dialects import postgresql as pg

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    false = sa.text("false")
    op.add_column(
        "orders",
        sa.Column("platform_refund_pending", sa.Boolean, nullable=False, server_default=false),
    )
    op.add_column("orders", sa.Column("buyer_memo", sa.Text))
    op.add_column("orders", sa.Column("platform_buyer_id", sa.Text))
    op.add_column("orders", sa.Column("urged_at", sa.DateTime(timezone=True)))
    op.add_column("orders", sa.Column("platform_ship_confirmed_at", sa.DateTime(timezone=True)))
    # Ship-back: shipments of a store not yet confirmed to the platform, by id.
    op.create_index(
        "ix_orders_unconfirmed_shipments",
        "orders",
        ["store_id", "id"],
        postgresql_where=sa.text(
            "tracking_number IS NOT NULL AND platform_ship_confirmed_at IS NULL"
        ),
    )
    op.add_column(
        "stores",
        sa.Column("carrier_codes", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    # The last applied snapshot's hash per order: a narrow table, so that recording a
    # batch's hashes inserts small rows instead of updating every wide order row.
    op.create_table(
        "order_snapshots",
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("hash", sa.Text, nullable=False),
    )
    op.create_table(
        "sku_platform_refs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("store_id", sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("sku_id", sa.BigInteger, sa.ForeignKey("skus.id"), nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("platform_sku_id", sa.Text, nullable=False),
        sa.UniqueConstraint(
            "store_id", "platform", "platform_sku_id", name="uq_sku_platform_refs_ref"
        ),
    )
    op.create_index("ix_sku_platform_refs_sku_id", "sku_platform_refs", ["sku_id"])
    op.create_table(
        "marketplace_unmapped",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("store_id", sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text),
        sa.Column("dedupe_key", sa.Text, nullable=False),
        sa.Column("payload", pg.JSONB, nullable=False),
        sa.Column("problem", pg.JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id")),
        sa.Column("discard_reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('open', 'resolved', 'discarded')", name="ck_marketplace_unmapped_status"
        ),
    )
    # The same order sent again while it waits for review is the same entry.
    op.create_index(
        "uq_marketplace_unmapped_open",
        "marketplace_unmapped",
        ["store_id", "platform", "dedupe_key"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_marketplace_unmapped_store_id_id", "marketplace_unmapped", ["store_id", "id"]
    )


def downgrade() -> None:
    op.drop_table("marketplace_unmapped")
    op.drop_table("sku_platform_refs")
    op.drop_table("order_snapshots")
    op.drop_column("stores", "carrier_codes")
    op.drop_index("ix_orders_unconfirmed_shipments", table_name="orders")
    for column in (
        "platform_ship_confirmed_at",
        "urged_at",
        "platform_buyer_id",
        "buyer_memo",
        "platform_refund_pending",
    ):
        op.drop_column("orders", column)
