"""The stock ledger: every change of ``on_hand`` is one immutable movement.

A movement and its balance update are one statement, conditional on the invariant
``on_hand + delta ≥ reserved`` (so ``0 ≤ reserved ≤ on_hand`` holds under any
concurrency; the CHECK constraint backs it up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import Conflict
from app.domain.inventory import levels, reservations
from app.domain.inventory.levels import STATE_COLUMNS, LevelState

_RECORD = sa.text(
    f"""
    WITH l AS (
        UPDATE stock_levels AS l SET on_hand = l.on_hand + :delta, updated_at = :at
          FROM skus AS s
         WHERE l.sku_id = :sku_id AND s.id = l.sku_id AND l.on_hand + :delta >= l.reserved
        RETURNING {STATE_COLUMNS}
    ), mv AS (
        INSERT INTO stock_movements
               (sku_id, store_id, kind, quantity, on_hand_after, reason, reference, api_key_id,
                created_at)
        SELECT sku_id, store_id, :kind, :delta, on_hand, :reason, :reference, :api_key_id, :at
          FROM l
        RETURNING id
    )
    SELECT l.*, mv.id AS movement_id FROM l, mv
    """
)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A movement written, with the balance right after it."""

    movement_id: int
    state: LevelState


async def record(
    session: AsyncSession,
    *,
    sku_id: int,
    kind: str,
    delta: int,
    at: datetime,
    reason: str | None = None,
    reference: str | None = None,
    api_key_id: int | None = None,
) -> Recorded:
    """Write one movement; ``409 insufficient_stock`` if it would break the invariant."""
    row = (
        await session.execute(
            _RECORD,
            {
                "sku_id": sku_id,
                "kind": kind,
                "delta": delta,
                "at": at,
                "reason": reason,
                "reference": reference,
                "api_key_id": api_key_id,
            },
        )
    ).first()
    if row is None:
        raise Conflict(
            "insufficient_stock",
            f"SKU {sku_id}: a change of {delta:+d} would leave on_hand below what is "
            "reserved (or below zero).",
        )
    return Recorded(movement_id=row.movement_id, state=levels.state_of(row))


async def settle(session: AsyncSession, state: LevelState) -> LevelState:
    """After a change: allocate freed stock to backorders, then notify crossings."""
    if state.available > 0:
        state = await reservations.allocate_waiting(session, state)
    await levels.apply_transitions(session, [state])
    return state


async def move(
    session: AsyncSession,
    *,
    sku_id: int,
    kind: str,
    delta: int,
    at: datetime,
    reason: str | None = None,
    reference: str | None = None,
    api_key_id: int | None = None,
) -> Recorded:
    """Record a movement and settle its consequences, in the caller's transaction."""
    recorded = await record(
        session,
        sku_id=sku_id,
        kind=kind,
        delta=delta,
        at=at,
        reason=reason,
        reference=reference,
        api_key_id=api_key_id,
    )
    state = await settle(session, recorded.state)
    return Recorded(recorded.movement_id, state)
