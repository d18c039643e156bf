"""daily reports: per-(store, local day) rollups kept by triggers, compacted by the sweep

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 16:00:00.000000

``GET /v1/reports/range`` reads up to 366 days of a store with a million orders in it, so
its figures are kept per (store, local day) rather than counted per request
(docs/reports.md):

- ``report_day_deltas``: append-only rows of changes. Statement-level triggers on ``orders``
  add one row per (store, day) a statement changed (a 1,000-order bulk intake adds a
  handful), inside the statement that changed the orders: no extra round trip and no lock
  (an in-place counter would serialise every order of a store). Refunds and tickets add
  theirs through ``app/domain/report/rollup.py``.
- ``report_days``: one row per (store, day); the sweep folds deltas into it
  (``app/domain/report/compaction.py``). A report reads both.
- ``report_day_buyers``: the distinct buyers (hash of the phone) who paid on a day; a
  buyer's first paid order of the day adds 1 to that day's ``buyers``.

An order counts, by what its row says (so a change of any of these columns moves its
contribution): placed on the day of ``placed_at``; paid and GMV on the day of ``paid_at``;
shipped and on time on the day of ``shipped_at``; overdue and penalty on the day of its
``dispatch_deadline`` (overdue when it shipped late, or was cancelled after the deadline
unshipped; orders still awaiting past their deadline are counted at read time).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate may emit sqlmodel.sql.sqltypes.AutoString
from sqlalchemy.dialects import postgresql as pg

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns a trigger writes, in the order the facts below give them.
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

# Overdue: not shipped by the deadline (shipped late, or cancelled after it unshipped).
_LATE = (
    "coalesce(r.shipped_late OR (r.shipped_at IS NULL "
    "AND r.cancelled_at > r.dispatch_deadline), false)"
)


def facts(rows: str, sign: str) -> str:
    """What the orders of transition table ``rows`` contribute, per (store, local day)."""
    return f"""
        SELECT r.store_id, v.day, {sign} * v.placed AS placed, {sign} * v.paid AS paid,
               {sign} * v.gmv AS gmv, 0 AS buyers, {sign} * v.shipped AS shipped,
               {sign} * v.on_time AS shipped_on_time, {sign} * v.overdue AS overdue,
               {sign} * v.penalties AS penalties
          FROM {rows} r
          JOIN stores s ON s.id = r.store_id
         CROSS JOIN LATERAL (VALUES
               ((r.placed_at AT TIME ZONE s.timezone)::date, 1, 0, 0::numeric, 0, 0, 0,
                0::numeric),
               ((r.paid_at AT TIME ZONE s.timezone)::date, 0, 1, r.total, 0, 0, 0, 0),
               ((r.shipped_at AT TIME ZONE s.timezone)::date, 0, 0, 0, 1,
                (NOT r.shipped_late)::int, 0, 0),
               (CASE WHEN {_LATE} OR r.penalty <> 0
                     THEN (r.dispatch_deadline AT TIME ZONE s.timezone)::date END,
                0, 0, 0, 0, 0, {_LATE}::int, r.penalty)
         ) AS v(day, placed, paid, gmv, shipped, on_time, overdue, penalties)
         WHERE v.day IS NOT NULL
    """


_SUMS = ", ".join(f"sum({c})" for c in ORDER_FIGURES)
_NONZERO = " OR ".join(f"sum({c}) <> 0" for c in ORDER_FIGURES)
_COLUMNS = ", ".join(ORDER_FIGURES)


def _delta_insert(parts: str) -> str:
    return f"""
    INSERT INTO report_day_deltas (store_id, day, {_COLUMNS})
    SELECT store_id, day, {_SUMS}
      FROM ({parts}) AS f
     GROUP BY store_id, day
    HAVING {_NONZERO};
"""


_NEW_BUYERS = """
        SELECT store_id, day, 0, 0, 0, 1, 0, 0, 0, 0 FROM nb
"""

FUNCTIONS = [
    f"""
CREATE FUNCTION report_days_track() RETURNS trigger
LANGUAGE plpgsql
-- Its plans are cached per connection, costed for the first statement's row count: after a
-- 100,000-row insert every later single-order insert on that connection paid ~50 ms of JIT
-- compilation. The statements are small and simple; JIT never pays here.
SET jit = off
AS $$
DECLARE
    one record;
    placed_day date;
    paid_day date;
    new_buyer int;
BEGIN
    -- One delta row per (store, local day) the statement changed; a statement that moves
    -- no figure (most updates) adds none. A buyer's first paid order of a day counts them.
    IF TG_OP = 'INSERT' THEN
        -- The hot path, one new order not yet shipped, overdue or cancelled (a single
        -- intake): plain statements on its values, no join of sets and no aggregation.
        SELECT r.store_id, r.placed_at, r.paid_at, r.total, r.buyer_phone, s.timezone,
               count(*) OVER () AS n,
               r.shipped_at IS NULL AND r.cancelled_at IS NULL AND r.penalty = 0
               AND NOT r.shipped_late AS fresh
          INTO one
          FROM new_rows r JOIN stores s ON s.id = r.store_id
         LIMIT 1;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        IF one.n = 1 AND one.fresh THEN
            placed_day := (one.placed_at AT TIME ZONE one.timezone)::date;
            IF one.paid_at IS NULL THEN
                INSERT INTO report_day_deltas (store_id, day, placed)
                VALUES (one.store_id, placed_day, 1);
                RETURN NULL;
            END IF;
            paid_day := (one.paid_at AT TIME ZONE one.timezone)::date;
            INSERT INTO report_day_buyers (store_id, day, buyer)
            VALUES (one.store_id, paid_day, md5(one.buyer_phone)::uuid)
            ON CONFLICT DO NOTHING;
            GET DIAGNOSTICS new_buyer = ROW_COUNT;
            IF placed_day = paid_day THEN
                INSERT INTO report_day_deltas (store_id, day, placed, paid, gmv, buyers)
                VALUES (one.store_id, placed_day, 1, 1, one.total, new_buyer);
            ELSE
                INSERT INTO report_day_deltas (store_id, day, placed, paid, gmv, buyers)
                VALUES (one.store_id, placed_day, 1, 0, 0, 0),
                       (one.store_id, paid_day, 0, 1, one.total, new_buyer);
            END IF;
            RETURN NULL;
        END IF;
        WITH nb AS (
            INSERT INTO report_day_buyers (store_id, day, buyer)
            SELECT DISTINCT n.store_id, (n.paid_at AT TIME ZONE s.timezone)::date,
                   md5(n.buyer_phone)::uuid
              FROM new_rows n JOIN stores s ON s.id = n.store_id
             WHERE n.paid_at IS NOT NULL
            ON CONFLICT DO NOTHING
            RETURNING store_id, day
        ){_delta_insert(facts("new_rows", "1") + " UNION ALL " + _NEW_BUYERS)}
    ELSIF TG_OP = 'UPDATE' THEN
        -- Most updates (holds, flags, allocation, versions) move no figure: skip them cheaply.
        IF NOT EXISTS (
            SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
             WHERE (n.store_id, n.placed_at, n.paid_at, n.total, n.buyer_phone, n.shipped_at,
                    n.shipped_late, n.dispatch_deadline, n.cancelled_at, n.penalty)
                   IS DISTINCT FROM
                   (o.store_id, o.placed_at, o.paid_at, o.total, o.buyer_phone, o.shipped_at,
                    o.shipped_late, o.dispatch_deadline, o.cancelled_at, o.penalty)
        ) THEN
            RETURN NULL;
        END IF;
        WITH nb AS (
            INSERT INTO report_day_buyers (store_id, day, buyer)
            SELECT DISTINCT n.store_id, (n.paid_at AT TIME ZONE s.timezone)::date,
                   md5(n.buyer_phone)::uuid
              FROM new_rows n JOIN stores s ON s.id = n.store_id
              JOIN old_rows o ON o.id = n.id
             WHERE n.paid_at IS NOT NULL AND o.paid_at IS DISTINCT FROM n.paid_at
            ON CONFLICT DO NOTHING
            RETURNING store_id, day
        ){
        _delta_insert(
            facts("new_rows", "1")
            + " UNION ALL "
            + facts("old_rows", "-1")
            + " UNION ALL "
            + _NEW_BUYERS
        )
    }
    ELSE
        -- Deleted orders (a bulk intake drops the items it rejects in its own transaction):
        -- their buyers leave the day unless another paid order of theirs is still there.
        WITH nb AS (
            DELETE FROM report_day_buyers b
             USING (SELECT DISTINCT o.store_id, (o.paid_at AT TIME ZONE s.timezone)::date AS day,
                           o.buyer_phone, s.timezone
                      FROM old_rows o JOIN stores s ON s.id = o.store_id
                     WHERE o.paid_at IS NOT NULL) AS d
             WHERE b.store_id = d.store_id AND b.day = d.day
               AND b.buyer = md5(d.buyer_phone)::uuid
               AND NOT EXISTS (
                   SELECT 1 FROM orders x
                    WHERE x.buyer_phone = d.buyer_phone AND x.store_id = d.store_id
                      AND x.paid_at IS NOT NULL
                      AND (x.paid_at AT TIME ZONE d.timezone)::date = d.day)
            RETURNING b.store_id, b.day
        ){
        _delta_insert(
            facts("old_rows", "-1")
            + " UNION ALL SELECT store_id, day, 0, 0, 0, -1, 0, 0, 0, 0 FROM nb"
        )
    }
    END IF;
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION report_days_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE report_day_deltas, report_days, report_day_buyers;
    RETURN NULL;
END
$$
""",
]

TRIGGERS = [
    """
CREATE TRIGGER orders_report_days_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_days_track()
""",
    """
CREATE TRIGGER orders_report_days_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_days_track()
""",
    """
CREATE TRIGGER orders_report_days_delete AFTER DELETE ON orders
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_days_track()
""",
    """
CREATE TRIGGER orders_report_days_truncate AFTER TRUNCATE ON orders
    FOR EACH STATEMENT EXECUTE FUNCTION report_days_truncate()
""",
]


def backfill(where: str = "true") -> list[str]:
    """Statements that build the rollups of the orders matching ``where`` (alias ``r``) from
    scratch: the buyer sets, then one ``report_days`` row per (store, day). Used by the
    migration for existing orders and by the benchmark for its set-based load."""
    return [
        f"""
        INSERT INTO report_day_buyers (store_id, day, buyer)
        SELECT DISTINCT r.store_id, (r.paid_at AT TIME ZONE s.timezone)::date,
               md5(r.buyer_phone)::uuid
          FROM orders r JOIN stores s ON s.id = r.store_id
         WHERE r.paid_at IS NOT NULL AND {where}
        ON CONFLICT DO NOTHING
        """,
        f"""
        INSERT INTO report_days (store_id, day, {_COLUMNS})
        SELECT store_id, day, {_SUMS}
          FROM ({facts(f"(SELECT * FROM orders r WHERE {where})", "1")}
                UNION ALL
                SELECT b.store_id, b.day, 0, 0, 0, 1, 0, 0, 0, 0 FROM report_day_buyers b
                 WHERE b.store_id IN (SELECT DISTINCT r.store_id FROM orders r WHERE {where})
               ) AS f
         GROUP BY store_id, day
        ON CONFLICT (store_id, day) DO UPDATE SET
            {", ".join(f"{c} = report_days.{c} + excluded.{c}" for c in ORDER_FIGURES)}
        """,
    ]


def _figure_columns() -> list[sa.Column[object]]:
    return [
        sa.Column(
            name,
            sa.Numeric(20, 2) if name in MONEY_FIGURES else sa.BigInteger(),
            nullable=False,
            server_default="0",
        )
        for name in FIGURES
    ]


def upgrade() -> None:
    # No primary key: rows are only appended, summed and deleted (by ctid) in bulk.
    op.create_table(
        "report_day_deltas",
        sa.Column("store_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_figure_columns(),
    )
    op.create_index("ix_report_day_deltas_store_id_day", "report_day_deltas", ["store_id", "day"])
    op.create_table(
        "report_days",
        sa.Column("store_id", sa.BigInteger(), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_figure_columns(),
        sa.PrimaryKeyConstraint("store_id", "day"),
    )
    op.create_table(
        "report_day_buyers",
        sa.Column("store_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("buyer", pg.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "day", "buyer"),
    )
    for statement in FUNCTIONS:
        op.execute(statement)
    # Block writes to orders until commit, so the backfill and the triggers see the same rows.
    op.execute("LOCK TABLE orders IN SHARE MODE")
    for statement in TRIGGERS:
        op.execute(statement)
    for statement in backfill():
        op.execute(statement)


def downgrade() -> None:
    for trigger in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER orders_report_days_{trigger} ON orders")
    op.execute("DROP FUNCTION report_days_truncate()")
    op.execute("DROP FUNCTION report_days_track()")
    op.drop_table("report_day_buyers")
    op.drop_table("report_days")
    op.drop_index("ix_report_day_deltas_store_id_day", table_name="report_day_deltas")
    op.drop_table("report_day_deltas")
