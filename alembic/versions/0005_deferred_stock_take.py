"""deferred stock take: a reservation may take its stock at commit

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 23:40:00.000000

A hot SKU's balance row is locked from the UPDATE that reserves stock until the end of
the transaction. When plenty of stock is left, a reservation is instead written with
``take_at_commit`` and this deferred constraint trigger takes the stock inside COMMIT,
with the same conditional UPDATE: the lock is then held only while committing. If the
stock is gone by then, the commit fails with SQLSTATE SO001 and nothing is kept (the
request is retried on the exact path).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may emit sqlmodel.sql.sqltypes.AutoString

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "reservations",
        sa.Column("take_at_commit", sa.Boolean(), server_default="false", nullable=False),
    )
    op.execute(
        """
CREATE FUNCTION reservations_take_stock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stock_levels SET reserved = reserved + NEW.reserved
     WHERE sku_id = NEW.sku_id AND on_hand - reserved >= NEW.reserved;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'SO001',
              MESSAGE = 'insufficient_stock: SKU ' || NEW.sku_id || ' ran out before commit';
    END IF;
    RETURN NULL;
END
$$
"""
    )
    op.execute(
        """
CREATE CONSTRAINT TRIGGER reservations_take_stock AFTER INSERT ON reservations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.take_at_commit) EXECUTE FUNCTION reservations_take_stock()
"""
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER reservations_take_stock ON reservations")
    op.execute("DROP FUNCTION reservations_take_stock()")
    op.drop_column("reservations", "take_at_commit")
