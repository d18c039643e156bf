"""Orders, their lines and tracking events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from app.models._types import MONEY, created_at_column, id_column

ORDER_STATUSES = (
    "pending_payment",
    "awaiting_shipment",
    "shipped",
    "delivered",
    "completed",
    "cancelled",
)
AWAITING = sa.text("status = 'awaiting_shipment'")


def _ts(nullable: bool = True) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Order(SQLModel, table=True):
    """A marketplace order; deadlines are stored so boards are index scans."""

    __tablename__ = "orders"
    __table_args__ = (
        # Intake retries (ON CONFLICT) and the q search by marketplace number (leading column).
        sa.UniqueConstraint("external_id", "store_id", name="uq_orders_external_id_store_id"),
        sa.CheckConstraint(
            "status IN ('pending_payment', 'awaiting_shipment', 'shipped', 'delivered', "
            "'completed', 'cancelled')",
            name="ck_orders_status",
        ),
        sa.CheckConstraint(
            "allocation IN ('full', 'partial', 'short')", name="ck_orders_allocation"
        ),
        # DOMAIN.md §4: the sum refunded never exceeds what was paid.
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= total", name="ck_orders_refunded_amount"
        ),
        # A tracking number belongs to one order per store (fake-shipment guard).
        sa.Index(
            "uq_orders_store_id_tracking_number",
            "store_id",
            "tracking_number",
            unique=True,
            postgresql_where=sa.text("tracking_number IS NOT NULL"),
        ),
        # Dispatch board and pick list: awaiting orders of a store by deadline.
        sa.Index(
            "ix_orders_board",
            "store_id",
            "dispatch_deadline",
            "id",
            postgresql_where=AWAITING,
            postgresql_include=["at_risk_at", "urgent", "allocation"],
        ),
        # The board's "urgent first" segment: urgent-flagged or short awaiting orders.
        sa.Index(
            "ix_orders_board_urgent",
            "store_id",
            "dispatch_deadline",
            "id",
            postgresql_where=sa.text(
                "status = 'awaiting_shipment' AND (urgent OR allocation <> 'full')"
            ),
            postgresql_include=["at_risk_at", "urgent", "allocation"],
        ),
        sa.Index("ix_orders_store_id_id", "store_id", "id"),
        sa.Index("ix_orders_store_id_status_id", "store_id", "status", "id"),
        sa.Index("ix_orders_store_id_placed_at", "store_id", "placed_at"),
        sa.Index("ix_orders_buyer_phone", "buyer_phone"),
        # The q search by tracking number; new orders have none, so intake skips it.
        sa.Index(
            "ix_orders_tracking_number",
            "tracking_number",
            postgresql_where=sa.text("tracking_number IS NOT NULL"),
        ),
        # Sweeps: shipped orders waiting for pickup / completion.
        sa.Index(
            "ix_orders_shipped",
            "shipped_at",
            postgresql_where=sa.text("status IN ('shipped', 'delivered')"),
        ),
        # Ship-back (marketplace sync): shipments not yet confirmed to the platform.
        sa.Index(
            "ix_orders_unconfirmed_shipments",
            "store_id",
            "id",
            postgresql_where=sa.text(
                "tracking_number IS NOT NULL AND platform_ship_confirmed_at IS NULL"
            ),
        ),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), nullable=False)
    )
    external_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    allocation: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    placed_at: datetime = Field(sa_column=_ts(False))
    paid_at: datetime | None = Field(default=None, sa_column=_ts())
    group_buy: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    group_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    group_formed_at: datetime | None = Field(default=None, sa_column=_ts())
    promised_ship_by: datetime | None = Field(default=None, sa_column=_ts())
    clock_started_at: datetime | None = Field(default=None, sa_column=_ts())
    dispatch_deadline: datetime | None = Field(default=None, sa_column=_ts())
    at_risk_at: datetime | None = Field(default=None, sa_column=_ts())
    buyer: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(pg.JSONB, nullable=False)
    )
    buyer_phone: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    subtotal: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    discount: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    shipping_fee: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    total: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    coupon_code: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    promotion_ids: list[int] | None = Field(
        default=None, sa_column=sa.Column(pg.ARRAY(sa.BigInteger))
    )
    allow_backorder: bool = Field(
        default=True, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="true")
    )
    on_hold: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    hold_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    refund_pending: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    urgent: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    carrier: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    tracking_number: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    tracking_pattern_mismatch: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    shipped_at: datetime | None = Field(default=None, sa_column=_ts())
    shipped_late: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    picked_up_at: datetime | None = Field(default=None, sa_column=_ts())
    delivered_at: datetime | None = Field(default=None, sa_column=_ts())
    returned_at: datetime | None = Field(default=None, sa_column=_ts())
    completed_at: datetime | None = Field(default=None, sa_column=_ts())
    cancelled_at: datetime | None = Field(default=None, sa_column=_ts())
    cancel_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # Recorded once, when the order became overdue (DOMAIN.md §1).
    penalty: Decimal = Field(
        default=Decimal("0.00"),
        sa_column=sa.Column(MONEY, nullable=False, server_default="0"),
    )
    # Sum of the refunds recorded by after-sales tickets (app/domain/ticket/refunds.py).
    refunded_amount: Decimal = Field(
        default=Decimal("0.00"),
        sa_column=sa.Column(MONEY, nullable=False, server_default="0"),
    )
    fake_shipment_risk: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    # Marketplace sync (migration 0012): a refund in progress on the platform holds the order
    # apart from ``refund_pending`` (open refund tickets); the last applied snapshot's hash
    # (order_snapshots) makes an unchanged snapshot a no-op.
    platform_refund_pending: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    buyer_memo: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    platform_buyer_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    urged_at: datetime | None = Field(default=None, sa_column=_ts())
    platform_ship_confirmed_at: datetime | None = Field(default=None, sa_column=_ts())
    # Hash of the intake body: a retried intake with the same content is the same order.
    content_hash: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
    updated_at: datetime | None = Field(default=None, sa_column=created_at_column())


class OrderLine(SQLModel, table=True):
    """One SKU of an order; its reservation has ``line_ref = 'order-line:<id>'``."""

    __tablename__ = "order_lines"
    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="ck_order_lines_quantity"),
        sa.Index("ix_order_lines_order_id", "order_id"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    order_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("orders.id"), nullable=False)
    )
    line_no: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    sku_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("skus.id"), nullable=False)
    )
    quantity: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    unit_price: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    line_total: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
    reserved: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )


class TrackingEvent(SQLModel, table=True):
    """A carrier scan reported for a shipped order."""

    __tablename__ = "tracking_events"
    __table_args__ = (
        sa.CheckConstraint(
            "event IN ('picked_up', 'in_transit', 'delivered', 'returned')",
            name="ck_tracking_events_event",
        ),
        sa.Index("ix_tracking_events_order_id", "order_id", "at"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    order_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("orders.id"), nullable=False)
    )
    event: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    at: datetime = Field(sa_column=_ts(False))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())


class DispatchBoardCount(SQLModel, table=True):
    """Board counters kept by triggers (migration 0004): awaiting orders per store and
    15-minute deadline bin, so the board's counts never scan every awaiting order."""

    __tablename__ = "dispatch_board_counts"
    __table_args__ = (
        sa.Index("ix_dispatch_board_counts_store_id_deadline_bin", "store_id", "deadline_bin"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    store_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    deadline_bin: datetime = Field(sa_column=_ts(False))
    at_risk_bin: datetime = Field(sa_column=_ts(False))
    short: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    n: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    unpenalized: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    penalty: Decimal = Field(sa_column=sa.Column(MONEY, nullable=False))
