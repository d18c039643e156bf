"""SKU orchestration: create, change, read with stock figures."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain import audit
from app.domain.errors import Conflict, PreconditionFailed, RuleViolation, not_found
from app.domain.events import service as events
from app.domain.inventory import levels, rules
from app.domain.marketplace import sku_refs
from app.domain.promotion import service as promotion_floors
from app.domain.sku.schemas import (
    PlatformRef,
    SkuCreate,
    SkuPublic,
    SkuStatus,
    SkuUpdate,
    StockSummary,
)
from app.domain.store import service as stores
from app.domain.store import zones
from app.models import Sku, StockLevel

_skus = Sku.__table__  # type: ignore[attr-defined]
_levels = StockLevel.__table__  # type: ignore[attr-defined]


def to_public(sku: Sku, on_hand: int, reserved: int, shipped_28d: int) -> SkuPublic:
    """The read model of a SKU."""
    fig = rules.stock_figures(
        on_hand=on_hand,
        reserved=reserved,
        units_shipped_28d=shipped_28d,
        low_stock_threshold=sku.low_stock_threshold,
        lead_time_days=sku.lead_time_days,
        safety_days=sku.safety_days,
    )
    return SkuPublic(
        id=sku.id,
        store_id=sku.store_id,
        sku_code=sku.sku_code,
        title=sku.title,
        price=sku.price,
        floor_price=sku.floor_price,
        effective_floor_price=sku.floor_price if sku.floor_price is not None else sku.cost_price,
        cost_price=sku.cost_price,
        barcode=sku.barcode,
        low_stock_threshold=sku.low_stock_threshold,
        lead_time_days=sku.lead_time_days,
        safety_days=sku.safety_days,
        status=SkuStatus(sku.status),
        delisted_by=sku.delisted_by,
        velocity_class=fig.velocity_class,
        avg_daily_sales=rules.display_avg(fig.avg_daily_sales),
        stock=StockSummary(
            on_hand=fig.on_hand,
            reserved=fig.reserved,
            available=fig.available,
            low_stock=fig.low_stock,
            threshold=fig.threshold,
        ),
        version=sku.version,
        created_at=sku.created_at,
        updated_at=sku.updated_at,
    )


async def read_models(session: AsyncSession, skus: list[Sku], now: datetime) -> list[SkuPublic]:
    """Read models of several SKUs (in store time) with set-based queries (levels, sales)."""
    if not skus:
        return []
    ids = [s.id for s in skus if s.id is not None]
    balances = {
        r.sku_id: (r.on_hand, r.reserved)
        for r in await session.execute(
            sa.select(_levels.c.sku_id, _levels.c.on_hand, _levels.c.reserved).where(
                _levels.c.sku_id.in_(ids)
            )
        )
    }
    shipped = await levels.units_shipped_since(
        session, ids, now - timedelta(days=rules.VELOCITY_WINDOW_DAYS)
    )
    public = [
        to_public(s, *balances.get(s.id, (0, 0)), shipped.get(s.id, 0))  # type: ignore[arg-type]
        for s in skus
    ]
    refs = await sku_refs.refs_of(session, ids)
    for p in public:
        p.platform_refs = [PlatformRef(**r) for r in refs.get(p.id, [])]
    return await zones.in_store_time(session, public)


async def get_visible(
    session: AsyncSession, principal: Principal, sku_id: int, *, for_update: bool = False
) -> Sku:
    """A SKU inside the key's scope, else 404."""
    sku = await session.get(Sku, sku_id, with_for_update=for_update)
    if sku is None or not principal.sees_store(sku.store_id):
        raise not_found("sku", sku_id)
    return sku


async def create(session: AsyncSession, principal: Principal, data: SkuCreate) -> Sku:
    """Create a SKU with an empty stock balance; ``409 duplicate_sku`` if the code is taken."""
    await stores.get_visible(session, principal, data.store_id)
    values = data.model_dump(exclude_none=True, exclude={"platform_refs"})
    row = (
        await session.execute(
            pg_insert(_skus)
            .values(**values, status="active", version=1)
            .on_conflict_do_nothing(index_elements=["store_id", "sku_code"])
            .returning(_skus.c.id)
        )
    ).first()
    if row is None:
        raise Conflict(
            "duplicate_sku", f"SKU code '{data.sku_code}' already exists in store {data.store_id}."
        )
    if data.platform_refs:
        await sku_refs.set_refs(
            session, data.store_id, row.id, [r.model_dump() for r in data.platform_refs]
        )
    # A new SKU is born empty: nothing to notify about until it has had stock.
    await session.execute(
        sa.insert(_levels).values(
            sku_id=row.id,
            store_id=data.store_id,
            threshold=data.low_stock_threshold or 0,
            low_notified=True,
            out_notified=True,
        )
    )
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="sku.created",
        resource_type="sku",
        resource_id=row.id,
        store_id=data.store_id,
        data=data.model_dump(mode="json"),
    )
    sku = await session.get(Sku, row.id)
    assert sku is not None
    return sku


async def update(
    session: AsyncSession,
    principal: Principal,
    sku_id: int,
    data: SkuUpdate,
    if_match: int | None,
    now: datetime,
) -> Sku:
    """Apply a partial change under optimistic concurrency (``If-Match``)."""
    sku = await get_visible(session, principal, sku_id, for_update=True)
    await session.refresh(sku)
    if if_match is not None and if_match != sku.version:
        raise PreconditionFailed(
            "version_mismatch", f"SKU is at version {sku.version}, not {if_match}."
        )
    changes: dict[str, Any] = data.model_dump(exclude_unset=True, exclude={"platform_refs"})
    if data.platform_refs is not None:
        await sku_refs.set_refs(
            session, sku.store_id, sku_id, [r.model_dump() for r in data.platform_refs]
        )
    for field in ("sku_code", "title", "price", "status"):
        if field in changes and changes[field] is None:
            raise RuleViolation(
                "validation_error",
                f"{field} cannot be null.",
                errors=[{"loc": ["body", field], "msg": "cannot be null", "type": "invalid"}],
            )
    price = changes.get("price", sku.price)
    floor = changes.get("floor_price", sku.floor_price)
    if floor is None:
        floor = changes.get("cost_price", sku.cost_price)
    if floor is not None and price < floor:
        raise RuleViolation(
            "price_below_floor",
            f"Price {price:.2f} is under the floor price {floor:.2f}.",
            errors=[{"loc": ["body", "price"], "msg": "under the floor price", "type": "invalid"}],
        )
    if changes.keys() & {"price", "floor_price", "cost_price"}:
        # Live promotions covering the SKU must still keep it at its floor (DOMAIN.md §5).
        await promotion_floors.recheck_sku(session, sku.store_id, sku_id, price, floor, now)
    values = dict(changes)
    if "status" in values:
        status = values["status"]
        values["status"] = status.value
        values["delisted_by"] = "manual" if status == SkuStatus.DELISTED else None
    values.update(version=sku.version + 1, updated_at=sa.func.now())
    if "sku_code" in values and values["sku_code"] != sku.sku_code:
        clash = await session.execute(
            sa.select(_skus.c.id).where(
                _skus.c.store_id == sku.store_id, _skus.c.sku_code == values["sku_code"]
            )
        )
        if clash.first() is not None:
            raise Conflict("duplicate_sku", f"SKU code '{values['sku_code']}' already exists.")
    try:
        # A savepoint: a parallel rename to the same code may commit between the check above
        # and this UPDATE; the unique constraint then decides, and the loser is a 409.
        async with session.begin_nested():
            await session.execute(sa.update(_skus).where(_skus.c.id == sku_id).values(**values))
    except IntegrityError as exc:
        if _constraint(exc) != "uq_skus_store_id_sku_code":
            raise
        raise Conflict("duplicate_sku", f"SKU code '{values['sku_code']}' already exists.") from exc
    if "status" in values and values["status"] != sku.status:
        code = values.get("sku_code", sku.sku_code)
        await _manual_listing_event(session, sku, code, values["status"])
    if changes.keys() & {"low_stock_threshold", "lead_time_days", "safety_days"}:
        await levels.refresh_thresholds(session, [sku_id], now)
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="sku.updated",
        resource_type="sku",
        resource_id=sku_id,
        store_id=sku.store_id,
        data=data.model_dump(exclude_unset=True, mode="json"),
    )
    await session.refresh(sku)
    return sku


def _constraint(exc: IntegrityError) -> str | None:
    """The constraint an integrity error names (asyncpg's ``constraint_name``)."""
    orig = getattr(exc.orig, "__cause__", None) or exc.orig
    name = getattr(orig, "constraint_name", None)
    return name if isinstance(name, str) else None


async def _manual_listing_event(
    session: AsyncSession, sku: Sku, sku_code: str, status: str
) -> None:
    """``sku.delisted`` / ``sku.relisted`` for an operator's change of status."""
    level = (
        await session.execute(
            sa.select(_levels.c.on_hand, _levels.c.reserved, _levels.c.threshold).where(
                _levels.c.sku_id == sku.id
            )
        )
    ).one()
    await events.append(
        session,
        "sku.delisted" if status == SkuStatus.DELISTED.value else "sku.relisted",
        sku.store_id,
        {
            "sku_id": str(sku.id),
            "sku_code": sku_code,
            "on_hand": level.on_hand,
            "reserved": level.reserved,
            "available": level.on_hand - level.reserved,
            "threshold": level.threshold,
            "reason": "manual",
            "manual": True,
        },
    )


async def list_page(
    session: AsyncSession,
    principal: Principal,
    *,
    store_id: int | None,
    status: SkuStatus | None,
    q: str | None,
    barcode: str | None,
    after_id: int | None,
    limit: int,
) -> list[Sku]:
    """SKUs by id within the key's scope, ``limit + 1`` rows after ``after_id``."""
    stmt = sa.select(Sku).order_by(_skus.c.id)
    store_ids = await stores.store_filter(session, principal, store_id)
    if store_ids is not None:
        stmt = stmt.where(_skus.c.store_id.in_(store_ids))
    if status is not None:
        stmt = stmt.where(_skus.c.status == status.value)
    if barcode is not None:
        stmt = stmt.where(_skus.c.barcode == barcode)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(sa.or_(_skus.c.sku_code.ilike(pattern), _skus.c.title.ilike(pattern)))
    if after_id is not None:
        stmt = stmt.where(_skus.c.id > after_id)
    return list((await session.execute(stmt.limit(limit + 1))).scalars())
