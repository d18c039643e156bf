"""webhook subscriptions and their delivery log

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 16:10:00.000000

``webhooks`` holds each subscription with its position in the event feed (the
``(tx_id, id)`` of the last event handled), its retry and circuit-breaker state and the
lease of the worker delivering it; ``webhook_deliveries`` one row per attempt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may emit sqlmodel.sql.sqltypes.AutoString
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("store_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("cursor_tx_id", sa.BigInteger(), nullable=False),
        sa.Column("cursor_event_id", sa.BigInteger(), nullable=False),
        sa.Column("last_delivered_event_id", sa.BigInteger(), nullable=True),
        _ts("last_delivered_at"),
        sa.Column("pending_event_id", sa.BigInteger(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        _ts("first_failure_at"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        _ts("breaker_open_until"),
        _ts("failing_since"),
        sa.Column("first_skipped_event_id", sa.BigInteger(), nullable=True),
        sa.Column("lease_token", sa.Text(), nullable=True),
        _ts("lease_until"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhooks_next_attempt_at", "webhooks", ["next_attempt_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("webhook_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        _ts("attempted_at", nullable=False),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook_id_id", "webhook_deliveries", ["webhook_id", "id"]
    )
    op.create_index("ix_webhook_deliveries_attempted_at", "webhook_deliveries", ["attempted_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_attempted_at", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_webhook_id_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhooks_next_attempt_at", table_name="webhooks")
    op.drop_table("webhooks")
