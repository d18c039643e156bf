"""Reservations: stock held for order lines, in the caller's transaction (DOMAIN.md §3).

``reserve`` is a single conditional statement on the hot path; multi-SKU callers go
through :func:`reserve_lines`, which, when every SKU has plenty left, writes every line in
one statement and takes the stock at commit (in SKU-id order), else locks the balances in
SKU-id order (so concurrent orders cannot deadlock) and writes every line in one statement.
Both run on the session's asyncpg connection: they are the hottest statements of order
intake.
Waiting lines (backorders) get freed stock by earliest deadline, then earliest
``placed_at``; a stocktake shortfall takes stock back from the
latest deadline first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.db import driver
from app.domain.errors import Conflict, not_found
from app.domain.inventory import hooks, levels
from app.domain.inventory.hooks import AllocationChange
from app.domain.inventory.levels import STATE_COLUMNS, LevelState

# The reservation row is written first, before the balance is touched: a balance row is
# locked from the UPDATE that changes it until the end of the transaction. When plenty of
# stock is left (more than the threshold after this line and the session's earlier
# deferred takes $7, no notification pending) and the caller does not ask for the exact
# path ($8), the row is marked ``take_at_commit`` and a deferred trigger (migrations 0005,
# 0006) takes the stock inside COMMIT under the same condition, so a hot SKU's row is
# locked only while committing. The trigger refuses (SO001) any take that would cross a
# line, because nothing applies transitions inside COMMIT: concurrent takes that together
# reach the threshold are retried on the exact path, which emits the events.
_HOLD = """
    WITH s AS (
        SELECT k.id, k.store_id, k.sku_code, k.status, k.delisted_by, l.on_hand, l.reserved,
               l.threshold, l.low_notified, l.out_notified,
               NOT $8 AND l.on_hand - l.reserved - $7 - $2 > l.threshold
               AND NOT l.low_notified AND NOT l.out_notified AS later
          FROM skus k JOIN stock_levels l ON l.sku_id = k.id WHERE k.id = $1
    ), r AS (
        INSERT INTO reservations (sku_id, store_id, line_ref, order_id, requested, reserved,
               deadline, placed_at, take_at_commit)
        SELECT id, store_id, $3, $4, $2, $2, $5, $6, later FROM s
        RETURNING id
    )
    SELECT s.*, r.id AS reservation_id FROM s, r
"""
_TAKE = """
    UPDATE stock_levels SET reserved = reserved + $2
     WHERE sku_id = $1 AND on_hand - reserved - $3 >= $2
    RETURNING on_hand, reserved, threshold, low_notified, out_notified
"""
# The commit of a transaction whose deferred take found the stock gone fails with this.
STOCK_GONE_AT_COMMIT = "SO001"


def _deferred(session: AsyncSession) -> dict[int, int]:
    """Units this session's transaction will take at commit, per SKU."""
    pending: dict[int, int] = session.info.setdefault("stock_taken_at_commit", {})
    return pending


def defer_takes(session: AsyncSession, need: dict[int, int]) -> None:
    """Note units a statement of this transaction reserved to be taken at commit, per SKU
    (written outside this module: order intake's single statement)."""
    pending = _deferred(session)
    for sku_id, qty in need.items():
        pending[sku_id] = pending.get(sku_id, 0) + qty


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_deferred(session: Session) -> None:
    """Deferred takes belong to one transaction: forget them when it ends."""
    session.info.pop("stock_taken_at_commit", None)


# Runs the session's pending takes at commit now (each under its balance lock, refused
# with SO001 if it would cross a line), then defers the trigger again for later rows.
_SETTLE = (
    "SET CONSTRAINTS reservations_take_stock IMMEDIATE; "
    "SET CONSTRAINTS reservations_take_stock DEFERRED"
)


async def _settle(session: AsyncSession, sku_ids: Sequence[int]) -> None:
    """Before the exact path touches a SKU this transaction will take at commit: take now.

    The exact path locks the balance and applies transitions on what it sees; a take still
    pending at commit would come on top of that, unseen, and then refuse to cross a line.
    """
    pending = _deferred(session)
    if not any(pending.get(sku) for sku in sku_ids):
        return
    con = await driver(session)
    await con.execute(_SETTLE)
    pending.clear()


_LOCK_STATES = f"""
    SELECT {STATE_COLUMNS} FROM stock_levels l JOIN skus s ON s.id = l.sku_id
     WHERE l.sku_id = ANY($1::bigint[]) ORDER BY l.sku_id FOR UPDATE OF l
"""
# Several lines at once, their balances already locked by _LOCK_STATES.
# Several lines taken at commit when every SKU has plenty left ($2: the units this order
# and the session's earlier deferred takes want of it), in one round trip: the balances
# read without locking, and the reservations written only if all qualify. They are
# inserted in SKU-id order, so the deferred trigger takes the balances in that order
# inside COMMIT, like every other path locks them.
_HOLD_MANY = f"""
    WITH s AS (
        SELECT {STATE_COLUMNS},
               l.on_hand - l.reserved - w.need > l.threshold
               AND NOT l.low_notified AND NOT l.out_notified AS later
          FROM unnest($1::bigint[], $2::int[]) AS w(sku_id, need)
          JOIN stock_levels l ON l.sku_id = w.sku_id JOIN skus s ON s.id = l.sku_id
    ), go AS (
        SELECT count(*) = cardinality($1::bigint[]) AND bool_and(later) AS later FROM s
    ), r AS (
        INSERT INTO reservations (sku_id, store_id, line_ref, order_id, requested, reserved,
               deadline, placed_at, take_at_commit)
        SELECT v.sku_id, s.store_id, v.line_ref, v.order_id, v.q, v.q, v.deadline,
               v.placed_at, true
          FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::int[], $7::timestamptz[],
                      $8::timestamptz[]) WITH ORDINALITY
               AS v(sku_id, line_ref, order_id, q, deadline, placed_at, n)
          JOIN s ON s.sku_id = v.sku_id
         WHERE (SELECT later FROM go)
         ORDER BY v.sku_id, v.n
        RETURNING id, line_ref
    )
    SELECT s.*, (SELECT later FROM go) AS go, ARRAY(SELECT id FROM r) AS ids,
           ARRAY(SELECT line_ref FROM r) AS refs
      FROM s
"""
_RESERVE_MANY = """
    WITH u AS (
        UPDATE stock_levels l SET reserved = l.reserved + v.q
          FROM unnest($1::bigint[], $2::int[]) AS v(sku_id, q)
         WHERE l.sku_id = v.sku_id AND v.q > 0
    )
    INSERT INTO reservations
           (sku_id, store_id, line_ref, order_id, requested, reserved, deadline, placed_at)
    SELECT * FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::int[],
                         $8::int[], $9::timestamptz[], $10::timestamptz[])
    RETURNING id, line_ref
"""


@dataclass(frozen=True, slots=True)
class Line:
    """One order line asking for stock."""

    sku_id: int
    quantity: int
    line_ref: str
    placed_at: datetime
    deadline: datetime | None = None
    order_id: int | None = None


@dataclass(frozen=True, slots=True)
class Reserved:
    """What a line got: ``reserved == requested`` is fully allocated, less is a backorder."""

    reservation_id: int
    line_ref: str
    sku_id: int
    requested: int
    reserved: int
    state: LevelState


async def reserve(
    session: AsyncSession, line: Line, *, allow_partial: bool, exact: bool = False
) -> Reserved:
    """Reserve a line; all or nothing unless ``allow_partial`` (the rest waits for stock).

    ``exact``: take the stock now, under the balance lock, even with plenty left (a retry
    after a take at commit failed). Raises ``409 insufficient_stock`` when not all is
    available and partial is not allowed.
    """
    if line.quantity <= 0:
        raise ValueError("quantity must be positive")
    con = await driver(session)
    pending = _deferred(session)
    owed = pending.get(line.sku_id, 0)
    held = await con.fetchrow(
        _HOLD,
        line.sku_id,
        line.quantity,
        line.line_ref,
        line.order_id,
        line.deadline,
        line.placed_at,
        owed,
        exact,
    )
    if held is None:
        raise not_found("sku", line.sku_id)
    if held["later"]:
        pending[line.sku_id] = owed + line.quantity
        state = LevelState(
            sku_id=line.sku_id,
            store_id=held["store_id"],
            sku_code=held["sku_code"],
            on_hand=held["on_hand"],
            reserved=held["reserved"] + owed + line.quantity,
            threshold=held["threshold"],
            low_notified=held["low_notified"],
            out_notified=held["out_notified"],
            status=held["status"],
            delisted_by=held["delisted_by"],
        )
        return Reserved(
            held["reservation_id"], line.line_ref, line.sku_id, line.quantity, line.quantity, state
        )
    if owed:
        await _settle(session, [line.sku_id])
        owed = 0
    taken = await con.fetchrow(_TAKE, line.sku_id, line.quantity, owed)
    if taken is not None:
        state = LevelState(
            sku_id=line.sku_id,
            store_id=held["store_id"],
            sku_code=held["sku_code"],
            on_hand=taken["on_hand"],
            reserved=taken["reserved"],
            threshold=taken["threshold"],
            low_notified=taken["low_notified"],
            out_notified=taken["out_notified"],
            status=held["status"],
            delisted_by=held["delisted_by"],
        )
        await levels.apply_transitions(session, [state])
        return Reserved(
            held["reservation_id"], line.line_ref, line.sku_id, line.quantity, line.quantity, state
        )
    await con.execute("DELETE FROM reservations WHERE id = $1", held["reservation_id"])
    if not allow_partial:
        raise Conflict(
            "insufficient_stock",
            f"SKU {line.sku_id} has fewer than {line.quantity} units available.",
            extra={"sku_id": str(line.sku_id), "requested": line.quantity},
        )
    return await _reserve_partial(session, line)


async def _reserve_partial(session: AsyncSession, line: Line) -> Reserved:
    states = await levels.lock_states(session, [line.sku_id])
    if line.sku_id not in states:
        raise not_found("sku", line.sku_id)
    state = states[line.sku_id]
    owed = _deferred(session).get(line.sku_id, 0)
    got = max(0, min(line.quantity, state.available - owed))
    if got:
        await session.execute(
            sa.text("UPDATE stock_levels SET reserved = reserved + :got WHERE sku_id = :sku_id"),
            {"got": got, "sku_id": line.sku_id},
        )
        state = replace(state, reserved=state.reserved + got)
    reservation_id = (
        await session.execute(
            sa.text(
                "INSERT INTO reservations (sku_id, store_id, line_ref, order_id, requested, "
                "reserved, deadline, placed_at) VALUES (:sku_id, :store_id, :line_ref, "
                ":order_id, :qty, :got, :deadline, :placed_at) RETURNING id"
            ),
            {
                "sku_id": line.sku_id,
                "store_id": state.store_id,
                "line_ref": line.line_ref,
                "order_id": line.order_id,
                "qty": line.quantity,
                "got": got,
                "deadline": line.deadline,
                "placed_at": line.placed_at,
            },
        )
    ).scalar_one()
    await levels.apply_transitions(session, [state])
    return Reserved(reservation_id, line.line_ref, line.sku_id, line.quantity, got, state)


async def reserve_lines(
    session: AsyncSession, lines: Sequence[Line], *, allow_partial: bool, exact: bool = False
) -> list[Reserved]:
    """Reserve several lines: taken at commit with plenty left, else under locks.

    Balances are locked in SKU-id order on both paths (no deadlocks). All or nothing
    unless ``allow_partial``; results in input order. ``exact`` as in :func:`reserve`.
    """
    if len(lines) == 1:
        return [await reserve(session, lines[0], allow_partial=allow_partial, exact=exact)]
    if any(line.quantity <= 0 for line in lines):
        raise ValueError("quantity must be positive")
    if not exact:
        deferred = await _hold_many(session, lines)
        if deferred is not None:
            return deferred
    await _settle(session, [line.sku_id for line in lines])
    con = await driver(session)
    rows = await con.fetch(_LOCK_STATES, sorted({line.sku_id for line in lines}))
    states = {r["sku_id"]: levels.state_of_record(r) for r in rows}
    owed = _deferred(session)
    available = {sku: st.available - owed.get(sku, 0) for sku, st in states.items()}
    got: list[int] = []
    for line in lines:
        if line.sku_id not in states:
            raise not_found("sku", line.sku_id)
        take = max(0, min(line.quantity, available[line.sku_id]))
        if take < line.quantity and not allow_partial:
            raise Conflict(
                "insufficient_stock",
                f"SKU {line.sku_id} has fewer than {line.quantity} units available.",
                extra={"sku_id": str(line.sku_id), "requested": line.quantity},
            )
        available[line.sku_id] -= take
        got.append(take)
    added = {
        sku: states[sku].available - owed.get(sku, 0) - left for sku, left in available.items()
    }
    inserted = await con.fetch(
        _RESERVE_MANY,
        list(added),
        list(added.values()),
        [line.sku_id for line in lines],
        [states[line.sku_id].store_id for line in lines],
        [line.line_ref for line in lines],
        [line.order_id for line in lines],
        [line.quantity for line in lines],
        got,
        [line.deadline for line in lines],
        [line.placed_at for line in lines],
    )
    ids = {r["line_ref"]: r["id"] for r in inserted}
    after = {sku: replace(st, reserved=st.reserved + added[sku]) for sku, st in states.items()}
    await levels.apply_transitions(session, list(after.values()))
    return [
        Reserved(
            ids[line.line_ref], line.line_ref, line.sku_id, line.quantity, g, after[line.sku_id]
        )
        for line, g in zip(lines, got, strict=True)
    ]


async def _hold_many(session: AsyncSession, lines: Sequence[Line]) -> list[Reserved] | None:
    """Every line reserved in full, taken at commit; None (nothing written) unless every
    SKU has plenty left."""
    pending = _deferred(session)
    need: dict[int, int] = {}
    for line in lines:
        need[line.sku_id] = need.get(line.sku_id, pending.get(line.sku_id, 0)) + line.quantity
    con = await driver(session)
    rows = await con.fetch(
        _HOLD_MANY,
        list(need),
        list(need.values()),
        [line.sku_id for line in lines],
        [line.line_ref for line in lines],
        [line.order_id for line in lines],
        [line.quantity for line in lines],
        [line.deadline for line in lines],
        [line.placed_at for line in lines],
    )
    if not rows or not rows[0]["go"]:
        return None
    ids = dict(zip(rows[0]["refs"], rows[0]["ids"], strict=True))
    after = {}
    for r in rows:
        state = levels.state_of_record(r)
        # As the balance will be once this transaction's takes are in (none crosses a line).
        after[state.sku_id] = replace(state, reserved=state.reserved + need[state.sku_id])
    for sku_id, qty in need.items():
        pending[sku_id] = qty
    return [
        Reserved(
            ids[line.line_ref],
            line.line_ref,
            line.sku_id,
            line.quantity,
            line.quantity,
            after[line.sku_id],
        )
        for line in lines
    ]


async def _lock_open(session: AsyncSession, line_refs: Sequence[str]) -> list[Any]:
    rows = await session.execute(
        sa.text(
            "SELECT id, sku_id, requested, reserved, line_ref, order_id FROM reservations "
            "WHERE line_ref = ANY(:refs) AND status = 'open' ORDER BY sku_id, id FOR UPDATE"
        ),
        {"refs": list(line_refs)},
    )
    return list(rows)


async def release(
    session: AsyncSession, line_refs: Sequence[str], at: datetime
) -> list[LevelState]:
    """Release the open reservations of ``line_refs`` (cancellation); freed stock is reallocated."""
    held = await _lock_open(session, line_refs)
    if not held:
        return []
    states = await levels.lock_states(session, {r.sku_id for r in held})
    await session.execute(
        sa.text(
            "UPDATE reservations SET status = 'released', updated_at = :at WHERE id = ANY(:ids)"
        ),
        {"ids": [r.id for r in held], "at": at},
    )
    freed: dict[int, int] = {}
    for r in held:
        freed[r.sku_id] = freed.get(r.sku_id, 0) + r.reserved
    settled = []
    for sku_id, qty in sorted(freed.items()):
        state = states[sku_id]
        if qty:
            await session.execute(
                sa.text("UPDATE stock_levels SET reserved = reserved - :q WHERE sku_id = :sku_id"),
                {"q": qty, "sku_id": sku_id},
            )
            state = replace(state, reserved=state.reserved - qty)
        if state.available > 0:
            state = await allocate_waiting(session, state)
        settled.append(state)
    await levels.apply_transitions(session, settled)
    return settled


@dataclass(frozen=True, slots=True)
class Consumed:
    """A reservation turned into a ``ship`` movement."""

    line_ref: str
    sku_id: int
    quantity: int
    movement_id: int


async def consume(
    session: AsyncSession,
    line_refs: Sequence[str],
    *,
    at: datetime,
    reference: str | None,
    api_key_id: int | None,
) -> list[Consumed]:
    """Ship fully reserved lines: each becomes a ``ship`` movement and leaves the balance.

    Raises ``409 not_allocated`` if any line is not fully reserved.
    """
    held = await _lock_open(session, line_refs)
    short = [r.line_ref for r in held if r.reserved < r.requested]
    missing = set(line_refs) - {r.line_ref for r in held}
    if short or missing:
        raise Conflict(
            "not_allocated",
            "Some lines are not fully allocated: " + ", ".join(sorted([*short, *missing])),
        )
    await levels.lock_states(session, {r.sku_id for r in held})
    out: list[Consumed] = []
    for r in held:
        row = (
            await session.execute(
                sa.text(
                    f"""
                    WITH l AS (
                        UPDATE stock_levels AS l
                           SET on_hand = l.on_hand - :q, reserved = l.reserved - :q,
                               updated_at = :at
                          FROM skus AS s WHERE l.sku_id = :sku_id AND s.id = l.sku_id
                        RETURNING {STATE_COLUMNS}
                    )
                    INSERT INTO stock_movements (sku_id, store_id, kind, quantity,
                           on_hand_after, reason, reference, api_key_id, created_at)
                    SELECT sku_id, store_id, 'ship', -:q, on_hand, 'shipped', :reference,
                           :api_key_id, :at FROM l
                    RETURNING id
                    """
                ),
                {
                    "q": r.reserved,
                    "sku_id": r.sku_id,
                    "at": at,
                    "reference": reference,
                    "api_key_id": api_key_id,
                },
            )
        ).scalar_one()
        out.append(Consumed(r.line_ref, r.sku_id, r.reserved, row))
    await session.execute(
        sa.text(
            "UPDATE reservations SET status = 'consumed', updated_at = :at WHERE id = ANY(:ids)"
        ),
        {"ids": [r.id for r in held], "at": at},
    )
    # Shipments change velocity, hence thresholds; refresh them and notify crossings.
    await levels.refresh_thresholds(session, sorted({r.sku_id for r in held}), at)
    return out


async def allocate_waiting(session: AsyncSession, state: LevelState) -> LevelState:
    """Give available stock to waiting lines: earliest deadline, then earliest placed_at.

    The caller holds the lock on the SKU's balance.
    """
    remaining = state.available
    if remaining <= 0:
        return state
    waiting = await session.execute(
        sa.text(
            "SELECT id, line_ref, order_id, requested, reserved FROM reservations "
            "WHERE sku_id = :sku_id AND status = 'open' AND reserved < requested "
            "ORDER BY deadline NULLS LAST, placed_at, id FOR UPDATE"
        ),
        {"sku_id": state.sku_id},
    )
    changes: list[AllocationChange] = []
    for w in waiting:
        if remaining <= 0:
            break
        add = min(remaining, w.requested - w.reserved)
        remaining -= add
        changes.append(
            AllocationChange(
                w.id, w.line_ref, w.order_id, state.sku_id, add, w.reserved + add, w.requested
            )
        )
    if not changes:
        return state
    await _apply_changes(session, changes)
    total = sum(c.delta for c in changes)
    await session.execute(
        sa.text("UPDATE stock_levels SET reserved = reserved + :q WHERE sku_id = :sku_id"),
        {"q": total, "sku_id": state.sku_id},
    )
    await hooks.notify(session, changes)
    return replace(state, reserved=state.reserved + total)


async def take_back(
    session: AsyncSession, state: LevelState, shortfall: int
) -> tuple[LevelState, list[AllocationChange]]:
    """Un-reserve ``shortfall`` units from the latest-deadline lines (stocktake below reserved).

    The caller holds the lock on the SKU's balance. The lines become backorders.
    """
    if shortfall <= 0:
        return state, []
    held = await session.execute(
        sa.text(
            "SELECT id, line_ref, order_id, requested, reserved FROM reservations "
            "WHERE sku_id = :sku_id AND status = 'open' AND reserved > 0 "
            "ORDER BY deadline DESC NULLS FIRST, placed_at DESC, id DESC FOR UPDATE"
        ),
        {"sku_id": state.sku_id},
    )
    changes: list[AllocationChange] = []
    remaining = shortfall
    for h in held:
        if remaining <= 0:
            break
        take = min(remaining, h.reserved)
        remaining -= take
        changes.append(
            AllocationChange(
                h.id, h.line_ref, h.order_id, state.sku_id, -take, h.reserved - take, h.requested
            )
        )
    taken = shortfall - remaining
    if changes:
        await _apply_changes(session, changes)
        await session.execute(
            sa.text("UPDATE stock_levels SET reserved = reserved - :q WHERE sku_id = :sku_id"),
            {"q": taken, "sku_id": state.sku_id},
        )
        await hooks.notify(session, changes)
    return replace(state, reserved=state.reserved - taken), changes


async def _apply_changes(session: AsyncSession, changes: Sequence[AllocationChange]) -> None:
    await session.execute(
        sa.text(
            "UPDATE reservations r SET reserved = v.reserved, updated_at = now() "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:reserved AS int[])) AS v(id, reserved) "
            "WHERE r.id = v.id"
        ),
        {"ids": [c.reservation_id for c in changes], "reserved": [c.reserved for c in changes]},
    )


async def backordered(session: AsyncSession, sku_ids: Sequence[int]) -> dict[int, int]:
    """Units waiting for stock per SKU (open lines not fully reserved)."""
    if not sku_ids:
        return {}
    rows = await session.execute(
        sa.text(
            "SELECT sku_id, SUM(requested - reserved) AS waiting FROM reservations "
            "WHERE sku_id = ANY(:ids) AND status = 'open' AND reserved < requested GROUP BY sku_id"
        ),
        {"ids": list(sku_ids)},
    )
    return {r.sku_id: int(r.waiting) for r in rows}
