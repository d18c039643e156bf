"""Webhook subscriptions, their delivery position and the log of delivery attempts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from app.models._types import created_at_column, id_column


def _ts(nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Webhook(SQLModel, table=True):
    """A subscription: events of some types (and stores) POSTed to ``url``, in feed order.

    ``(cursor_tx_id, cursor_event_id)`` is the feed position of the last event handled
    (delivered or skipped); the worker that holds ``lease_token`` until ``lease_until`` is
    the only one delivering for the subscription.
    """

    __tablename__ = "webhooks"
    __table_args__ = (sa.Index("ix_webhooks_next_attempt_at", "next_attempt_at"),)

    id: int | None = Field(default=None, sa_column=id_column())
    url: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    events: list[str] = Field(sa_column=sa.Column(pg.ARRAY(sa.Text), nullable=False))
    store_ids: list[int] | None = Field(
        default=None, sa_column=sa.Column(pg.ARRAY(sa.BigInteger), nullable=True)
    )
    # Kept usable (the worker signs with it); never logged, never returned.
    secret: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_by: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
    # Bumped by a redelivery: a worker that claimed an older version drops its position.
    version: int = Field(
        default=1, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1")
    )
    cursor_tx_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    cursor_event_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    last_delivered_event_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    last_delivered_at: datetime | None = Field(default=None, sa_column=_ts())
    pending_event_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    attempt: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    first_failure_at: datetime | None = Field(default=None, sa_column=_ts())
    next_attempt_at: datetime | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    consecutive_failures: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    breaker_open_until: datetime | None = Field(default=None, sa_column=_ts())
    failing_since: datetime | None = Field(default=None, sa_column=_ts())
    first_skipped_event_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    lease_token: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    lease_until: datetime | None = Field(default=None, sa_column=_ts())


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver one event to one subscription."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
        sa.Index("ix_webhook_deliveries_attempted_at", "attempted_at"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    webhook_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
        )
    )
    event_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    event_type: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    attempt: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    response_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    duration_ms: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    attempted_at: datetime = Field(sa_column=_ts(nullable=False))
