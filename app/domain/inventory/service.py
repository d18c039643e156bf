"""Inventory orchestration: movements, stock figures, stocktakes and ERP level sync."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app import dberrors
from app.auth import Principal
from app.domain import audit
from app.domain.errors import DomainError, ItemError, NotFound, RuleViolation, not_found
from app.domain.inventory import ledger, levels, reservations, rules
from app.domain.inventory.schemas import (
    BulkResult,
    MovementCreate,
    StockLevelItem,
    StockPublic,
    StocktakeCreate,
    StocktakeLinePublic,
    StocktakePublic,
)
from app.domain.sku import service as skus
from app.domain.store import service as stores
from app.domain.store import zones
from app.models import Stocktake, StocktakeLine

_movements = sa.table(
    "stock_movements",
    sa.column("id"),
    sa.column("sku_id"),
    sa.column("store_id"),
    sa.column("kind"),
    sa.column("quantity"),
    sa.column("on_hand_after"),
    sa.column("reason"),
    sa.column("reference"),
    sa.column("api_key_id"),
    sa.column("created_at"),
)
_stocktakes = Stocktake.__table__  # type: ignore[attr-defined]
_stocktake_lines = StocktakeLine.__table__  # type: ignore[attr-defined]


async def post_movement(
    session: AsyncSession, principal: Principal, data: MovementCreate, now: datetime
) -> dict[str, Any]:
    """Write one movement (``409 insufficient_stock`` if it would break the invariant)."""
    await skus.get_visible(session, principal, data.sku_id)
    recorded = await ledger.move(
        session,
        sku_id=data.sku_id,
        kind=data.kind.value,
        delta=data.delta,
        at=now,
        reason=data.reason,
        reference=data.reference,
        api_key_id=principal.key_id,
    )
    return await get_movement(session, recorded.movement_id)


async def get_movement(session: AsyncSession, movement_id: int) -> dict[str, Any]:
    """One ledger row."""
    row = (await session.execute(sa.select(_movements).where(_movements.c.id == movement_id))).one()
    return dict(row._mapping)


async def list_movements(
    session: AsyncSession,
    principal: Principal,
    *,
    sku_id: int | None,
    store_id: int | None,
    kinds: Sequence[str] | None,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The ledger, newest first, ``limit + 1`` rows before ``after_id``."""
    stmt = sa.select(_movements).order_by(_movements.c.id.desc())
    if sku_id is not None:
        sku = await skus.get_visible(session, principal, sku_id)
        stmt = stmt.where(_movements.c.sku_id == sku.id)
        if store_id is not None and store_id != sku.store_id:
            return []
    else:
        store_ids = await stores.store_filter(session, principal, store_id)
        if store_ids is not None:
            stmt = stmt.where(_movements.c.store_id.in_(store_ids))
    if kinds:
        stmt = stmt.where(_movements.c.kind.in_(list(kinds)))
    if after_id is not None:
        stmt = stmt.where(_movements.c.id < after_id)
    rows = await session.execute(stmt.limit(limit + 1))
    return [dict(r._mapping) for r in rows]


async def stock_of(
    session: AsyncSession, principal: Principal, sku_id: int, now: datetime
) -> StockPublic:
    """Live stock figures of one SKU."""
    sku = await skus.get_visible(session, principal, sku_id)
    level = (
        await session.execute(
            sa.text("SELECT on_hand, reserved FROM stock_levels WHERE sku_id = :id"),
            {"id": sku_id},
        )
    ).one()
    shipped = await levels.units_shipped_since(
        session, [sku_id], now - timedelta(days=rules.VELOCITY_WINDOW_DAYS)
    )
    waiting = await reservations.backordered(session, [sku_id])
    fig = rules.stock_figures(
        on_hand=level.on_hand,
        reserved=level.reserved,
        units_shipped_28d=shipped.get(sku_id, 0),
        low_stock_threshold=sku.low_stock_threshold,
        lead_time_days=sku.lead_time_days,
        safety_days=sku.safety_days,
    )
    return StockPublic(
        sku_id=sku_id,
        on_hand=fig.on_hand,
        reserved=fig.reserved,
        available=fig.available,
        low_stock=fig.low_stock,
        threshold=fig.threshold,
        reorder_point=fig.reorder_point,
        velocity_class=fig.velocity_class,
        avg_daily_sales=rules.display_avg(fig.avg_daily_sales),
        backordered=waiting.get(sku_id, 0),
    )


async def take_stock(
    session: AsyncSession, principal: Principal, data: StocktakeCreate, now: datetime
) -> StocktakePublic:
    """Apply a stocktake in one transaction; any invalid line rejects the whole stocktake."""
    await stores.get_visible(session, principal, data.store_id)
    ids = [line.sku_id for line in data.lines]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuleViolation(
            "duplicate_line",
            f"SKUs counted twice: {', '.join(map(str, dupes))}.",
            errors=[
                {"loc": ["body", "lines", n, "sku_id"], "msg": "counted twice", "type": "duplicate"}
                for n, i in enumerate(ids)
                if i in dupes
            ],
        )
    states = await levels.lock_states(session, ids)
    bad = [n for n, i in enumerate(ids) if i not in states or states[i].store_id != data.store_id]
    if bad:
        raise RuleViolation(
            "unknown_sku",
            f"{len(bad)} line(s) name SKUs that are not in store {data.store_id}.",
            errors=[
                {"loc": ["body", "lines", n, "sku_id"], "msg": "unknown SKU", "type": "unknown"}
                for n in bad
            ],
        )
    stocktake_id = (
        await session.execute(
            sa.insert(_stocktakes)
            .values(
                store_id=data.store_id,
                note=data.note,
                api_key_id=principal.key_id,
                created_at=now,
            )
            .returning(_stocktakes.c.id)
        )
    ).scalar_one()
    lines: list[StocktakeLinePublic] = []
    for line in sorted(data.lines, key=lambda x: x.sku_id):
        state = states[line.sku_id]
        expected = state.on_hand
        released = 0
        if line.counted < state.reserved:
            # DOMAIN.md §3: the latest-deadline orders lose their reservation first.
            before = state.reserved
            state, _ = await reservations.take_back(session, state, state.reserved - line.counted)
            released = before - state.reserved
        variance = line.counted - expected
        if variance:
            recorded = await ledger.record(
                session,
                sku_id=line.sku_id,
                kind="stocktake",
                delta=variance,
                at=now,
                reason=data.note,
                reference=f"stocktake:{stocktake_id}",
                api_key_id=principal.key_id,
            )
            state = recorded.state
        await ledger.settle(session, state)
        lines.append(
            StocktakeLinePublic(
                sku_id=line.sku_id,
                expected=expected,
                counted=line.counted,
                variance=variance,
                released=released,
            )
        )
    await session.execute(
        sa.insert(_stocktake_lines),
        [{"stocktake_id": stocktake_id, **line.model_dump()} for line in lines],
    )
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="stocktake.applied",
        resource_type="stocktake",
        resource_id=stocktake_id,
        store_id=data.store_id,
        data={"lines": len(lines), "note": data.note},
    )
    return await get_stocktake(session, principal, stocktake_id)


async def get_stocktake(
    session: AsyncSession, principal: Principal, stocktake_id: int
) -> StocktakePublic:
    """An applied stocktake with its lines."""
    head = (
        await session.execute(sa.select(_stocktakes).where(_stocktakes.c.id == stocktake_id))
    ).one_or_none()
    if head is None or not principal.sees_store(head.store_id):
        raise not_found("stocktake", stocktake_id)
    lines = await session.execute(
        sa.select(_stocktake_lines)
        .where(_stocktake_lines.c.stocktake_id == stocktake_id)
        .order_by(_stocktake_lines.c.sku_id)
    )
    stocktake = StocktakePublic(
        id=head.id,
        store_id=head.store_id,
        note=head.note,
        api_key_id=head.api_key_id,
        created_at=head.created_at,
        lines=[StocktakeLinePublic.model_validate(dict(r._mapping)) for r in lines],
    )
    return zones.localize(stocktake, await zones.zone_of(session, head.store_id))


@dataclass(frozen=True, slots=True)
class LevelFailure:
    """An item of a level sync that failed alone, with its typed error."""

    index: int
    error: ItemError


async def sync_levels(
    session: AsyncSession, principal: Principal, items: Sequence[dict[str, Any]], now: datetime
) -> list[BulkResult | LevelFailure]:
    """Set absolute levels (ERP sync): one ``adjust`` per real change; items fail alone."""
    results: dict[int, BulkResult | LevelFailure] = {}
    valid: dict[int, StockLevelItem] = {}
    for n, raw in enumerate(items):
        try:
            valid[n] = StockLevelItem.model_validate(raw)
        except ValidationError as exc:
            results[n] = LevelFailure(n, exc)
    keys = sorted({(v.store_id, v.sku_code) for v in valid.values()})
    found: dict[tuple[int, str], int] = {}
    if keys:
        rows = await session.execute(
            sa.text(
                "SELECT s.id, s.store_id, s.sku_code FROM skus s JOIN unnest("
                "CAST(:stores AS bigint[]), CAST(:codes AS text[])) AS k(store_id, code) "
                "ON s.store_id = k.store_id AND s.sku_code = k.code"
            ),
            {"stores": [k[0] for k in keys], "codes": [k[1] for k in keys]},
        )
        found = {(r.store_id, r.sku_code): r.id for r in rows}
    targets: dict[int, int] = {}
    for n, item in valid.items():
        sku_id = found.get((item.store_id, item.sku_code))
        if sku_id is None or not principal.sees_store(item.store_id):
            results[n] = LevelFailure(
                n, NotFound("sku_not_found", f"No SKU '{item.sku_code}' in store {item.store_id}.")
            )
        else:
            targets[n] = sku_id
    levels_set = {n: valid[n].on_hand for n in targets}
    try:
        async with session.begin_nested():
            results.update(await _set_levels(session, principal, targets, levels_set, now))
    except Exception as exc:
        # A change PostgreSQL refused: redo the items each under its own savepoint, so
        # that item fails alone (the rare slow path).
        if dberrors.item_error(exc) is None:
            raise
        results.update(
            await _set_levels(session, principal, targets, levels_set, now, isolate=True)
        )
    return [results[n] for n in range(len(items))]


async def _set_levels(
    session: AsyncSession,
    principal: Principal,
    targets: dict[int, int],
    on_hand: dict[int, int],
    now: datetime,
    *,
    isolate: bool = False,
) -> dict[int, BulkResult | LevelFailure]:
    """Each item's ``adjust`` in SKU-id order; ``isolate``: each under a savepoint."""
    results: dict[int, BulkResult | LevelFailure] = {}
    states = await levels.lock_states(session, targets.values())
    for n in sorted(targets, key=lambda i: (targets[i], i)):
        sku_id, target = targets[n], on_hand[n]
        state = states[sku_id]
        if target == state.on_hand:
            results[n] = BulkResult(
                index=n, status=200, sku_id=str(sku_id), on_hand=target, changed=False
            )
            continue
        try:
            async with session.begin_nested() if isolate else contextlib.nullcontext():
                try:
                    recorded = await ledger.record(
                        session,
                        sku_id=sku_id,
                        kind="adjust",
                        delta=target - state.on_hand,
                        at=now,
                        reason="ERP stock sync",
                        api_key_id=principal.key_id,
                    )
                except DomainError as exc:  # below what is reserved: nothing was written
                    results[n] = LevelFailure(n, exc)
                    continue
                states[sku_id] = await ledger.settle(session, recorded.state)
        except Exception as exc:
            typed = dberrors.item_error(exc) if isolate else None
            if typed is None:
                raise
            results[n] = LevelFailure(n, typed)
            continue
        results[n] = BulkResult(
            index=n,
            status=200,
            sku_id=str(sku_id),
            on_hand=target,
            changed=True,
            movement_id=str(recorded.movement_id),
        )
    return results
