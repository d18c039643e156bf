"""stock taken at commit crosses no line: low/out/delist stay on the exact path

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 13:40:00.000000

The deferred take of migration 0005 took the stock whenever it was still there, so
concurrent reservations that each saw plenty left could together cross the low-stock
line or empty the SKU inside COMMIT, where nothing notices: no ``stock.low``, no
``stock.out``, no delist. Now the trigger takes the stock only if the balance stays above
its threshold with no notification pending, that is, only when the take changes no
state. Otherwise the commit fails with SQLSTATE SO001 and the request is retried on the
exact path, which locks the balance and applies the transitions (and their events) in
the same transaction. The database decides under the row lock, so no take can slip past.
"""

from collections.abc import Sequence

import sqlmodel  # noqa: F401 - autogenerate may emit sqlmodel.sql.sqltypes.AutoString

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
CREATE OR REPLACE FUNCTION reservations_take_stock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stock_levels SET reserved = reserved + NEW.reserved
     WHERE sku_id = NEW.sku_id AND on_hand - reserved - NEW.reserved > threshold
       AND NOT low_notified AND NOT out_notified;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'SO001',
              MESSAGE = 'insufficient_stock: SKU ' || NEW.sku_id
                        || ' is too low to take stock at commit';
    END IF;
    RETURN NULL;
END
$$
"""
    )


def downgrade() -> None:
    op.execute(
        """
CREATE OR REPLACE FUNCTION reservations_take_stock() RETURNS trigger
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
