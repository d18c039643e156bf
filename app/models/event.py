"""The transactional outbox behind ``GET /v1/events`` and webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from app.models._types import created_at_column, id_column

# The writing transaction's id (xid8 as bigint). The feed orders by (tx_id, id) and only
# shows transactions below the oldest one still running, so a late commit is never skipped.
CURRENT_TX_ID = sa.text("(pg_current_xact_id()::text::bigint)")


class Event(SQLModel, table=True):
    """One state change, written in the same transaction as the change itself."""

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_tx_id_id", "tx_id", "id"),
        sa.Index("ix_events_store_id_tx_id_id", "store_id", "tx_id", "id"),
        sa.Index("ix_events_type_tx_id_id", "type", "tx_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    tx_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, nullable=False, server_default=CURRENT_TX_ID),
    )
    store_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    type: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    occurred_at: datetime | None = Field(default=None, sa_column=created_at_column())
    data: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(pg.JSONB, nullable=False)
    )
    # Time-based events (at risk, overdue, …) carry a key so a repeat sweep cannot emit twice.
    dedupe_key: str | None = Field(default=None, sa_column=sa.Column(sa.Text, unique=True))
