"""after-sales tickets: tickets, their threads, store service hours, refunded amounts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:00:00.000000

- ``tickets`` keep their due instants (first response in service hours, resolution in
  calendar hours), so SLA lists and the sweep are index scans over open tickets.
- ``ticket_messages``: the thread (agent, customer, note), with the key that wrote it.
- ``stores.service_start_minute`` / ``service_end_minute``: the customer-service day
  (default 08:00–23:00 store time).
- ``orders.refunded_amount``: the sum refunded, never above the paid total (CHECK).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may emit sqlmodel.sql.sqltypes.AutoString
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.add_column(
        "stores",
        sa.Column("service_start_minute", sa.Integer(), server_default="480", nullable=False),
    )
    op.add_column(
        "stores",
        sa.Column("service_end_minute", sa.Integer(), server_default="1380", nullable=False),
    )
    op.create_check_constraint(
        "ck_stores_service_hours",
        "stores",
        "service_start_minute >= 0 AND service_start_minute < service_end_minute "
        "AND service_end_minute <= 1440",
    )
    op.add_column(
        "orders",
        sa.Column(
            "refunded_amount", sa.Numeric(precision=14, scale=2), server_default="0", nullable=False
        ),
    )
    op.create_check_constraint(
        "ck_orders_refunded_amount",
        "orders",
        "refunded_amount >= 0 AND refunded_amount <= total",
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("store_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("priority", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("assignee", sa.Text(), nullable=True),
        sa.Column("customer", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_response_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolution_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("refund_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("compensation_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("restock", sa.Boolean(), nullable=True),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "type IN ('inquiry', 'shipping_chase', 'refund', 'return_refund', 'exchange', "
            "'lost_parcel', 'complaint', 'invoice')",
            name="ck_tickets_type",
        ),
        sa.CheckConstraint(
            "priority IN ('low', 'normal', 'high', 'urgent')", name="ck_tickets_priority"
        ),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_tickets_status"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_tickets_store_id_external_id",
        "tickets",
        ["store_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_index("ix_tickets_store_id_id", "tickets", ["store_id", "id"])
    op.create_index(
        "ix_tickets_open",
        "tickets",
        ["store_id", "id"],
        postgresql_where=_OPEN,
        postgresql_include=["first_response_due", "first_response_at", "resolution_due"],
    )
    op.create_index(
        "ix_tickets_open_assignee",
        "tickets",
        ["store_id", "assignee", "id"],
        postgresql_where=_OPEN,
    )
    op.create_index(
        "ix_tickets_order_id_open",
        "tickets",
        ["order_id"],
        postgresql_where=sa.text("status = 'open' AND order_id IS NOT NULL"),
    )
    op.create_index(
        "ix_tickets_first_response_pending",
        "tickets",
        ["first_response_due"],
        postgresql_where=sa.text("status = 'open' AND first_response_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_resolution_pending", "tickets", ["resolution_due"], postgresql_where=_OPEN
    )
    op.create_index(
        "ix_tickets_escalation",
        "tickets",
        ["resolution_started_at"],
        postgresql_where=sa.text(
            "status = 'open' AND priority <> 'urgent' "
            "AND type IN ('refund', 'return_refund', 'complaint')"
        ),
    )
    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("agent", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("api_key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "author IN ('agent', 'customer', 'note')", name="ck_ticket_messages_author"
        ),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_ticket_messages_ticket_id_id", "ticket_messages", ["ticket_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_messages_ticket_id_id", table_name="ticket_messages")
    op.drop_table("ticket_messages")
    op.drop_table("tickets")
    op.drop_constraint("ck_orders_refunded_amount", "orders", type_="check")
    op.drop_column("orders", "refunded_amount")
    op.drop_constraint("ck_stores_service_hours", "stores", type_="check")
    op.drop_column("stores", "service_end_minute")
    op.drop_column("stores", "service_start_minute")
