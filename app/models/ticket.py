"""After-sales tickets and their message threads (DOMAIN.md §4)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from app.models._types import MONEY, created_at_column, id_column

TICKET_TYPES = (
    "inquiry",
    "shipping_chase",
    "refund",
    "return_refund",
    "exchange",
    "lost_parcel",
    "complaint",
    "invoice",
)
OPEN = sa.text("status = 'open'")


def _ts(nullable: bool = True) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Ticket(SQLModel, table=True):
    """A customer-service ticket; due instants are stored so SLA lists are index scans."""

    __tablename__ = "tickets"
    __table_args__ = (
        sa.CheckConstraint(
            "type IN ('inquiry', 'shipping_chase', 'refund', 'return_refund', 'exchange', "
            "'lost_parcel', 'complaint', 'invoice')",
            name="ck_tickets_type",
        ),
        sa.CheckConstraint(
            "priority IN ('low', 'normal', 'high', 'urgent')", name="ck_tickets_priority"
        ),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_tickets_status"),
        # Intake retries: one ticket per platform after-sales number and store.
        sa.Index(
            "uq_tickets_store_id_external_id",
            "store_id",
            "external_id",
            unique=True,
            postgresql_where=sa.text("external_id IS NOT NULL"),
        ),
        # Lists: a store's tickets newest first; its open tickets (with the due instants, so
        # sla=breached|due_soon filter inside the index); its open tickets by assignee.
        sa.Index("ix_tickets_store_id_id", "store_id", "id"),
        sa.Index(
            "ix_tickets_open",
            "store_id",
            "id",
            postgresql_where=OPEN,
            postgresql_include=["first_response_due", "first_response_at", "resolution_due"],
        ),
        sa.Index(
            "ix_tickets_open_assignee",
            "store_id",
            "assignee",
            "id",
            postgresql_where=OPEN,
        ),
        # Order links: open tickets of an order (holds, auto-complete, read model counts).
        sa.Index(
            "ix_tickets_order_id_open",
            "order_id",
            postgresql_where=sa.text("status = 'open' AND order_id IS NOT NULL"),
        ),
        # Sweep: open tickets by due instant (first responses still pending; resolutions).
        sa.Index(
            "ix_tickets_first_response_pending",
            "first_response_due",
            postgresql_where=sa.text("status = 'open' AND first_response_at IS NULL"),
        ),
        sa.Index("ix_tickets_resolution_pending", "resolution_due", postgresql_where=OPEN),
        # Sweep: escalation candidates (DOMAIN.md §4), by when their clock started.
        sa.Index(
            "ix_tickets_escalation",
            "resolution_started_at",
            postgresql_where=sa.text(
                "status = 'open' AND priority <> 'urgent' "
                "AND type IN ('refund', 'return_refund', 'complaint')"
            ),
        ),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    order_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("orders.id"))
    )
    external_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    type: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    priority: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    assignee: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    customer: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(pg.JSONB))
    opened_at: datetime = Field(sa_column=_ts(False))
    first_response_due: datetime = Field(sa_column=_ts(False))
    first_response_at: datetime | None = Field(default=None, sa_column=_ts())
    # When the current resolution clock started: opened_at, or the last reopen.
    resolution_started_at: datetime = Field(sa_column=_ts(False))
    resolution_due: datetime = Field(sa_column=_ts(False))
    resolved_at: datetime | None = Field(default=None, sa_column=_ts())
    reopen_count: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    escalated_at: datetime | None = Field(default=None, sa_column=_ts())
    outcome: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    refund_amount: Decimal | None = Field(default=None, sa_column=sa.Column(MONEY))
    compensation_amount: Decimal | None = Field(default=None, sa_column=sa.Column(MONEY))
    restock: bool | None = Field(default=None, sa_column=sa.Column(sa.Boolean))
    content_hash: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_by: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())


class TicketMessage(SQLModel, table=True):
    """One message of a ticket's thread: agent reply, customer message or internal note."""

    __tablename__ = "ticket_messages"
    __table_args__ = (
        sa.CheckConstraint(
            "author IN ('agent', 'customer', 'note')", name="ck_ticket_messages_author"
        ),
        sa.Index("ix_ticket_messages_ticket_id_id", "ticket_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    ticket_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("tickets.id"), nullable=False)
    )
    author: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    agent: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    api_key_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    created_at: datetime = Field(sa_column=_ts(False))
