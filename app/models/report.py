"""Daily report rollups (migration 0010; docs/reports.md): per (store, local day) figures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

# The figures a rollup row holds; money ones are numeric(20, 2) (a day's sum may pass the
# numeric(14, 2) of one order), counts bigint.
ORDER_FIGURES = (
    "placed",
    "paid",
    "gmv",
    "buyers",
    "shipped",
    "shipped_on_time",
    "overdue",
    "penalties",
)
OTHER_FIGURES = (
    "refunds",
    "refund_amount",
    "tickets_opened",
    "tickets_resolved",
    "tickets_resolved_in_sla",
)
FIGURES = ORDER_FIGURES + OTHER_FIGURES
MONEY_FIGURES = frozenset({"gmv", "penalties", "refund_amount"})
ROLLUP_MONEY = sa.Numeric(20, 2)


def _figure_columns() -> list[sa.Column[object]]:
    return [
        sa.Column(
            name,
            ROLLUP_MONEY if name in MONEY_FIGURES else sa.BigInteger(),
            nullable=False,
            server_default="0",
        )
        for name in FIGURES
    ]


# Append-only changes, written by the triggers on orders and app/domain/report/rollup.py and
# folded into report_days by the sweep. No primary key: rows are only appended, summed and
# deleted in bulk (by ctid), and a key would cost every order intake one more index entry;
# hence a plain Table, not a table class.
report_day_deltas = sa.Table(
    "report_day_deltas",
    SQLModel.metadata,
    sa.Column("store_id", sa.BigInteger(), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),
    *_figure_columns(),
    sa.Index("ix_report_day_deltas_store_id_day", "store_id", "day"),
)


class ReportDay(SQLModel, table=True):
    """Compacted figures of one store's local day (the sweep adds deltas into it)."""

    __tablename__ = "report_days"

    store_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("stores.id"), primary_key=True)
    )
    day: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    placed: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    paid: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    gmv: Decimal = Field(sa_column=sa.Column(ROLLUP_MONEY, nullable=False, server_default="0"))
    buyers: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    shipped: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    shipped_on_time: int = Field(
        sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )
    overdue: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    penalties: Decimal = Field(
        sa_column=sa.Column(ROLLUP_MONEY, nullable=False, server_default="0")
    )
    refunds: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    refund_amount: Decimal = Field(
        sa_column=sa.Column(ROLLUP_MONEY, nullable=False, server_default="0")
    )
    tickets_opened: int = Field(
        sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )
    tickets_resolved: int = Field(
        sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )
    tickets_resolved_in_sla: int = Field(
        sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )


class ReportDayBuyer(SQLModel, table=True):
    """A buyer (MD5 of the phone, as a uuid) who paid for an order on a store's local day."""

    __tablename__ = "report_day_buyers"

    store_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    day: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    buyer: UUID = Field(sa_column=sa.Column(pg.UUID(), primary_key=True))
