"""orders and order_lines keep only indexes that back a documented query

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:50:00.000000

Every order intake wrote nine index entries for ``orders`` and three for each line. Now:

- ``(store_id, external_id)`` unique becomes ``(external_id, store_id)``: the same
  constraint for ``ON CONFLICT`` and retries, and it also serves the ``q`` search by
  marketplace number (``GET /v1/orders?q=``), so ``ix_orders_external_id`` goes.
- ``ix_orders_tracking_number`` (``q`` search by tracking number) only holds orders that
  have one: a new order has none, so intake no longer writes an entry for it.
- ``ix_order_lines_sku_id`` backs no query (lines are read by order) and goes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may emit sqlmodel.sql.sqltypes.AutoString

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_unique_constraint(
        "uq_orders_external_id_store_id", "orders", ["external_id", "store_id"]
    )
    op.drop_constraint("uq_orders_store_id_external_id", "orders", type_="unique")
    op.drop_index("ix_orders_external_id", table_name="orders")
    op.drop_index("ix_orders_tracking_number", table_name="orders")
    op.create_index(
        "ix_orders_tracking_number",
        "orders",
        ["tracking_number"],
        unique=False,
        postgresql_where=sa.text("tracking_number IS NOT NULL"),
    )
    op.drop_index("ix_order_lines_sku_id", table_name="order_lines")


def downgrade() -> None:
    op.create_index("ix_order_lines_sku_id", "order_lines", ["sku_id"], unique=False)
    op.drop_index("ix_orders_tracking_number", table_name="orders")
    op.create_index("ix_orders_tracking_number", "orders", ["tracking_number"], unique=False)
    op.create_index("ix_orders_external_id", "orders", ["external_id"], unique=False)
    op.create_unique_constraint(
        "uq_orders_store_id_external_id", "orders", ["store_id", "external_id"]
    )
    op.drop_constraint("uq_orders_external_id_store_id", "orders", type_="unique")
