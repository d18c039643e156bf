"""Stock balances after a change: thresholds, low/out notifications, auto-delist and relist."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.events import service as events
from app.domain.inventory import rules


@dataclass(frozen=True, slots=True)
class LevelState:
    """A SKU's balance with what the notification rules need."""

    sku_id: int
    store_id: int
    sku_code: str
    on_hand: int
    reserved: int
    threshold: int
    low_notified: bool
    out_notified: bool
    status: str
    delisted_by: str | None

    @property
    def available(self) -> int:
        """``on_hand − reserved``."""
        return self.on_hand - self.reserved


# Columns of stock_levels (l) joined with skus (s) that build a LevelState.
STATE_COLUMNS = (
    "l.sku_id, l.store_id, s.sku_code, l.on_hand, l.reserved, l.threshold, "
    "l.low_notified, l.out_notified, s.status, s.delisted_by"
)


def state_of(row: Any) -> LevelState:
    """A LevelState from a row with :data:`STATE_COLUMNS`."""
    return LevelState(
        sku_id=row.sku_id,
        store_id=row.store_id,
        sku_code=row.sku_code,
        on_hand=row.on_hand,
        reserved=row.reserved,
        threshold=row.threshold,
        low_notified=row.low_notified,
        out_notified=row.out_notified,
        status=row.status,
        delisted_by=row.delisted_by,
    )


def state_of_record(record: Any) -> LevelState:
    """A LevelState from an asyncpg record with :data:`STATE_COLUMNS`."""
    return LevelState(**{f: record[f] for f in LevelState.__slots__})


async def lock_states(session: AsyncSession, sku_ids: Iterable[int]) -> dict[int, LevelState]:
    """Lock the balances of ``sku_ids`` in id order (no deadlocks) and return them."""
    ids = sorted(set(sku_ids))
    if not ids:
        return {}
    rows = await session.execute(
        sa.text(
            f"SELECT {STATE_COLUMNS} FROM stock_levels l JOIN skus s ON s.id = l.sku_id "
            "WHERE l.sku_id = ANY(:ids) ORDER BY l.sku_id FOR UPDATE OF l"
        ),
        {"ids": ids},
    )
    return {r.sku_id: state_of(r) for r in rows}


async def apply_transitions(session: AsyncSession, states: Sequence[LevelState]) -> None:
    """Write flags, delist/relist and events for every state that crossed a line."""
    for state in states:
        t = rules.stock_transitions(
            available=state.available,
            threshold=state.threshold,
            low_notified=state.low_notified,
            out_notified=state.out_notified,
            status=state.status,
            delisted_by=state.delisted_by,
        )
        if not t.any:
            continue
        data = {
            "sku_id": str(state.sku_id),
            "sku_code": state.sku_code,
            "on_hand": state.on_hand,
            "reserved": state.reserved,
            "available": state.available,
            "threshold": state.threshold,
        }
        flags: dict[str, bool] = {}
        if t.low is not None:
            flags["low_notified"] = t.low
            if t.low:
                await events.append(session, "stock.low", state.store_id, data)
        if t.out is not None:
            flags["out_notified"] = t.out
            if t.out:
                await events.append(session, "stock.out", state.store_id, data)
        if flags:
            sets = ", ".join(f"{k} = :{k}" for k in flags)
            await session.execute(
                sa.text(f"UPDATE stock_levels SET {sets} WHERE sku_id = :sku_id"),
                {**flags, "sku_id": state.sku_id},
            )
        if t.delist or t.relist:
            await session.execute(
                sa.text(
                    "UPDATE skus SET status = :status, delisted_by = :by, "
                    "version = version + 1, updated_at = now() WHERE id = :sku_id"
                ),
                {
                    "status": "delisted" if t.delist else "active",
                    "by": "auto" if t.delist else None,
                    "sku_id": state.sku_id,
                },
            )
            kind = "sku.delisted" if t.delist else "sku.relisted"
            await events.append(
                session, kind, state.store_id, {**data, "reason": "stock", "manual": False}
            )


async def units_shipped_since(
    session: AsyncSession, sku_ids: Sequence[int], since: datetime
) -> dict[int, int]:
    """Units shipped per SKU since ``since``, from ``ship`` movements of the ledger."""
    if not sku_ids:
        return {}
    rows = await session.execute(
        sa.text(
            "SELECT sku_id, -SUM(quantity) AS units FROM stock_movements "
            "WHERE kind = 'ship' AND sku_id = ANY(:ids) AND created_at >= :since GROUP BY sku_id"
        ),
        {"ids": list(sku_ids), "since": since},
    )
    return {r.sku_id: int(r.units) for r in rows}


async def refresh_thresholds(
    session: AsyncSession, sku_ids: Sequence[int], now: datetime
) -> list[LevelState]:
    """Recompute the cached low-stock thresholds of ``sku_ids`` and apply any crossings.

    Returns the states whose threshold changed.
    """
    states = await lock_states(session, sku_ids)
    if not states:
        return []
    params = await session.execute(
        sa.text(
            "SELECT id, low_stock_threshold, lead_time_days, safety_days FROM skus "
            "WHERE id = ANY(:ids)"
        ),
        {"ids": list(states)},
    )
    shipped = await units_shipped_since(
        session, list(states), now - timedelta(days=rules.VELOCITY_WINDOW_DAYS)
    )
    changed: dict[int, LevelState] = {}
    for row in params:
        fig = rules.stock_figures(
            on_hand=states[row.id].on_hand,
            reserved=states[row.id].reserved,
            units_shipped_28d=shipped.get(row.id, 0),
            low_stock_threshold=row.low_stock_threshold,
            lead_time_days=row.lead_time_days,
            safety_days=row.safety_days,
        )
        if fig.threshold != states[row.id].threshold:
            changed[row.id] = replace(states[row.id], threshold=fig.threshold)
    if changed:
        await session.execute(
            sa.text(
                "UPDATE stock_levels l SET threshold = v.threshold "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:thresholds AS int[])) "
                "AS v(sku_id, threshold) WHERE l.sku_id = v.sku_id"
            ),
            {"ids": list(changed), "thresholds": [s.threshold for s in changed.values()]},
        )
    updated = [changed.get(sku_id, state) for sku_id, state in states.items()]
    await apply_transitions(session, updated)
    return list(changed.values())
