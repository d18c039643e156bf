"""Usage limits, per-buyer limits and budgets, exact under parallel orders (DOMAIN.md §5).

A promotion with a ``usage_limit`` or ``budget`` has its remainder split over up to
``SHARDS`` counter rows. A redemption takes one use (and its discount) from a random shard
that still has room, skipping shards other orders hold (``SKIP LOCKED``), so parallel
orders of one coupon rarely wait on each other; when every shard with room is busy it
waits for one of them; only when no single shard has room does it lock every shard in
order and take from their sum (the slow, exact path). Per-buyer uses
are one row per (promotion, buyer), claimed with a conditional upsert. A cancelled or fully
refunded order gives its uses and discount back (:func:`give_back`).
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import Conflict, RuleViolation

SHARDS = 16
"""Counter rows per promotion at most; the claims' rotation ``(shard + r) % 16`` assumes 16."""


def buyer_key(buyer: Any) -> str:
    """Who a buyer is for per-buyer limits (the one place): the marketplace's buyer id when
    the order carries one (platforms mask phones: ``138****5521`` is many buyers), else the
    phone, digits only."""
    fields: dict[str, Any] = buyer if isinstance(buyer, dict) else vars(buyer)
    platform_id = fields.get("platform_buyer_id")
    if platform_id:
        return "buyer:" + str(platform_id)
    return "phone:" + "".join(ch for ch in str(fields.get("phone")) if ch.isdigit())


def buyer_key_of_id(buyer_id: str) -> str:
    """The key of a quote's ``buyer_id`` (a phone number), through :func:`buyer_key`."""
    return buyer_key({"phone": buyer_id})


def _parts(total: int, n: int) -> list[int]:
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def shard_rows(promotion_id: int, uses: int | None, budget: Decimal | None) -> list[dict[str, Any]]:
    """Counter rows holding ``uses`` and ``budget`` (None: unlimited), split evenly."""
    if uses is None and budget is None:
        return []
    n = SHARDS if uses is None else max(1, min(SHARDS, uses))
    use_parts = _parts(uses, n) if uses is not None else [None] * n
    budget_parts = (
        [Decimal(c).scaleb(-2) for c in _parts(int(budget.scaleb(2)), n)]
        if budget is not None
        else [None] * n
    )
    return [
        {"promotion_id": promotion_id, "shard": i, "uses_left": u, "budget_left": b}
        for i, (u, b) in enumerate(zip(use_parts, budget_parts, strict=True))
    ]


async def seed(
    session: AsyncSession, promotion_id: int, uses: int | None, budget: Decimal | None
) -> None:
    """Create the counters of a new promotion."""
    rows = shard_rows(promotion_id, uses, budget)
    if rows:
        await session.execute(
            sa.text(
                "INSERT INTO promotion_counters (promotion_id, shard, uses_left, budget_left) "
                "VALUES (:promotion_id, :shard, :uses_left, :budget_left)"
            ),
            rows,
        )


async def reset(
    session: AsyncSession,
    promotion_id: int,
    old: tuple[int | None, Decimal | None],
    new: tuple[int | None, Decimal | None],
) -> None:
    """Re-split the counters after a change of ``usage_limit`` or ``budget``; a limit under
    what was already used is 422."""
    rows = (
        await session.execute(
            sa.text(
                "SELECT uses_left, budget_left FROM promotion_counters "
                "WHERE promotion_id = :p ORDER BY shard FOR UPDATE"
            ),
            {"p": promotion_id},
        )
    ).all()
    used_uses = (old[0] - sum(r.uses_left or 0 for r in rows)) if old[0] is not None else 0
    used_budget = (
        old[1] - sum((r.budget_left or Decimal(0) for r in rows), Decimal(0))
        if old[1] is not None
        else Decimal(0)
    )
    if old[0] is None or old[1] is None:
        # A limit added now counts what was redeemed so far.
        used = (
            await session.execute(
                sa.text(
                    "SELECT count(*) AS n, coalesce(sum(amount), 0) AS amount "
                    "FROM order_promotions WHERE promotion_id = :p AND redeemed "
                    "AND returned_at IS NULL"
                ),
                {"p": promotion_id},
            )
        ).one()
        if old[0] is None:
            used_uses = used.n
        if old[1] is None:
            used_budget = used.amount
    uses = None if new[0] is None else new[0] - used_uses
    budget = None if new[1] is None else new[1] - used_budget
    if (uses is not None and uses < 0) or (budget is not None and budget < 0):
        raise RuleViolation(
            "limit_below_used",
            f"The promotion was already used {used_uses} times for {used_budget:.2f}.",
            errors=[
                {"loc": ["body", "usage_limit"], "msg": "below what was used", "type": "invalid"}
            ],
        )
    await session.execute(
        sa.text("DELETE FROM promotion_counters WHERE promotion_id = :p"), {"p": promotion_id}
    )
    await seed(session, promotion_id, uses, budget)


# One round trip: a use from a random free shard with room, the buyer's use, and every
# discount row of the order (the coupon's with the shard it claimed).
_CLAIM = """
WITH c AS (
    UPDATE promotion_counters SET uses_left = uses_left - 1, budget_left = budget_left - $3
     WHERE (promotion_id, shard) = (
           SELECT promotion_id, shard FROM promotion_counters
            WHERE promotion_id = $1 AND coalesce(uses_left, 1) >= 1
              AND coalesce(budget_left, $3) >= $3
            ORDER BY (shard + $6) % 16
            LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING shard
), b AS (
    INSERT INTO promotion_buyers AS pb (promotion_id, buyer_key, uses)
    SELECT $1, $4, 1 WHERE $5::int IS NOT NULL
    ON CONFLICT (promotion_id, buyer_key) DO UPDATE SET uses = pb.uses + 1
     WHERE pb.uses < $5
    RETURNING uses
), r AS (
    INSERT INTO order_promotions (order_id, promotion_id, amount, shard, buyer_key, redeemed)
    SELECT $2, $1, $3, (SELECT shard FROM c), $4, true
)
SELECT (SELECT shard FROM c) AS shard, (SELECT uses FROM b) AS uses
"""
# Every shard with room was busy: wait for one (after the wait PostgreSQL checks the row
# again and moves on to the next one with room).
_CLAIM_WAIT = """
UPDATE promotion_counters SET uses_left = uses_left - 1, budget_left = budget_left - $2
 WHERE (promotion_id, shard) = (
       SELECT promotion_id, shard FROM promotion_counters
        WHERE promotion_id = $1 AND coalesce(uses_left, 1) >= 1
          AND coalesce(budget_left, $2) >= $2
        ORDER BY (shard + $3) % 16
        LIMIT 1 FOR UPDATE)
RETURNING shard
"""
# The exact path: every shard locked in order, the use taken from their sum.
_CLAIM_LOCKED = """
WITH s AS MATERIALIZED (
    SELECT shard, uses_left, budget_left FROM promotion_counters
     WHERE promotion_id = $1 ORDER BY shard FOR UPDATE
)
SELECT shard, uses_left, budget_left FROM s ORDER BY shard
"""
_RECORD = """
INSERT INTO order_promotions (order_id, promotion_id, amount)
SELECT $1, * FROM unnest($2::bigint[], $3::numeric[])
"""


async def claim(
    con: Any,
    order_id: int,
    promotion_id: int,
    code: str,
    amount: Decimal,
    key: str,
    per_buyer_limit: int | None,
    counted: bool,
) -> None:
    """Redeem a coupon for ``order_id`` inside the caller's transaction (asyncpg ``con``);
    ``409 coupon_unavailable`` when a limit or the budget is reached (the caller's
    transaction then rolls back, and nothing is created)."""
    row = await con.fetchrow(
        _CLAIM, promotion_id, order_id, amount, key, per_buyer_limit, random.randrange(SHARDS)
    )
    if per_buyer_limit is not None and row["uses"] is None:
        raise _unavailable(code, "per_buyer_limit")
    if counted and row["shard"] is None:
        shard = await con.fetchval(_CLAIM_WAIT, promotion_id, amount, random.randrange(SHARDS))
        if shard is None:
            # No single shard has room: the budget may still, summed over the shards.
            shard = await _claim_locked(con, promotion_id, amount)
        if shard is None:
            raise _unavailable(code, "exhausted")
        await con.execute(
            "UPDATE order_promotions SET shard = $3 WHERE order_id = $1 AND promotion_id = $2",
            order_id,
            promotion_id,
            shard,
        )


async def _claim_locked(con: Any, promotion_id: int, amount: Decimal) -> int | None:
    rows = await con.fetch(_CLAIM_LOCKED, promotion_id)
    limited_uses = any(r["uses_left"] is not None for r in rows)
    limited_budget = any(r["budget_left"] is not None for r in rows)
    if limited_uses and sum(r["uses_left"] or 0 for r in rows) < 1:
        return None
    if limited_budget and sum(r["budget_left"] or 0 for r in rows) < amount:
        return None
    need_use, need = limited_uses, amount if limited_budget else Decimal(0)
    first: int | None = None
    for r in rows:
        take_use = 1 if need_use and (r["uses_left"] or 0) >= 1 else 0
        take = min(need, r["budget_left"] or Decimal(0))
        if take_use or take:
            await con.execute(
                "UPDATE promotion_counters SET uses_left = uses_left - $3, "
                "budget_left = budget_left - $4 WHERE promotion_id = $1 AND shard = $2",
                promotion_id,
                r["shard"],
                take_use,
                take,
            )
            first = r["shard"] if first is None else first
            need_use = need_use and not take_use
            need -= take
    return first if first is not None else 0


def _unavailable(code: str, why: str) -> Conflict:
    return Conflict(
        "coupon_unavailable", f"Coupon '{code}' is not available ({why.replace('_', ' ')})."
    )


async def record(con: Any, order_id: int, amounts: dict[int, Decimal]) -> None:
    """Discount rows of promotions an order is attributed to (nothing claimed)."""
    if amounts:
        await con.execute(_RECORD, order_id, list(amounts), list(amounts.values()))


_GIVE_BACK = """
WITH r AS (
    UPDATE order_promotions SET returned_at = now()
     WHERE order_id = :o AND redeemed AND returned_at IS NULL
    RETURNING promotion_id, amount, shard, buyer_key
), c AS (
    UPDATE promotion_counters pc SET uses_left = pc.uses_left + 1,
           budget_left = pc.budget_left + r.amount
      FROM r WHERE pc.promotion_id = r.promotion_id AND pc.shard = coalesce(r.shard, 0)
), b AS (
    UPDATE promotion_buyers pb SET uses = pb.uses - 1
      FROM r WHERE pb.promotion_id = r.promotion_id AND pb.buyer_key = r.buyer_key
       AND pb.uses > 0
)
SELECT count(*) FROM r
"""


async def give_back(session: AsyncSession, order_id: int) -> int:
    """Return an order's coupon uses, per-buyer uses and budget (a cancelled or fully
    refunded order); idempotent. The number of redemptions given back."""
    return int((await session.execute(sa.text(_GIVE_BACK), {"o": order_id})).scalar_one())
