"""Store orchestration: create, change, read, targets and traffic."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain import audit
from app.domain.errors import Conflict, PreconditionFailed, RuleViolation, not_found
from app.domain.store import zones
from app.domain.store.rules import effective_policy, policy_problems
from app.domain.store.schemas import (
    DispatchPolicyOut,
    ServiceHoursIn,
    ServiceHoursOut,
    StoreCreate,
    StorePublic,
    StoreUpdate,
    TargetPublic,
    TrafficPublic,
)
from app.domain.ticket.rules import format_hhmm
from app.models import Store, StoreTarget, StoreTraffic

_stores = Store.__table__  # type: ignore[attr-defined]


def to_public(store: Store) -> StorePublic:
    """The read model of a store, its instants in its own time."""
    public = StorePublic(
        id=store.id,
        code=store.code,
        name=store.name,
        platform=store.platform,
        timezone=store.timezone,
        dispatch_policy=DispatchPolicyOut.of(
            effective_policy(store.platform, store.dispatch_policy)
        ),
        service_hours=ServiceHoursOut(
            start=format_hhmm(store.service_start_minute),
            end=format_hhmm(store.service_end_minute),
        ),
        carrier_codes=store.carrier_codes or {},
        version=store.version,
        created_at=store.created_at,
        updated_at=store.updated_at,
    )
    return zones.localize(public, zones.zone(store.timezone))


def _service_hours(hours: ServiceHoursIn | None) -> dict[str, int]:
    """The columns of the given service hours (none when not given)."""
    if hours is None:
        return {}
    return {
        "service_start_minute": hours.start_minute(),
        "service_end_minute": hours.end_minute(),
    }


def _check_policy(platform: str, overrides: dict[str, Any]) -> None:
    problems = policy_problems(effective_policy(platform, overrides))
    if problems:
        raise RuleViolation(
            "invalid_dispatch_policy",
            "; ".join(problems),
            errors=[
                {"loc": ["body", "dispatch_policy"], "msg": p, "type": "invalid"} for p in problems
            ],
        )


async def get_visible(session: AsyncSession, principal: Principal, store_id: int) -> Store:
    """A store inside the key's scope, else 404."""
    if not principal.sees_store(store_id):
        raise not_found("store", store_id)
    store = await session.get(Store, store_id)
    if store is None:
        raise not_found("store", store_id)
    return store


async def store_filter(
    session: AsyncSession, principal: Principal, store_id: int | None
) -> list[int] | None:
    """Store ids a list may read: one existing visible store, or the key's whole scope."""
    if store_id is None:
        return principal.scoped_store_ids(None)
    await get_visible(session, principal, store_id)
    return [store_id]


async def create(session: AsyncSession, principal: Principal, data: StoreCreate) -> Store:
    """Create a store; ``409 duplicate_store_code`` if the code is taken."""
    overrides = data.dispatch_policy.overrides() if data.dispatch_policy else {}
    _check_policy(data.platform, overrides)
    row = (
        await session.execute(
            pg_insert(_stores)
            .values(
                code=data.code,
                name=data.name,
                platform=data.platform.value,
                timezone=data.timezone,
                dispatch_policy=overrides,
                carrier_codes=data.carrier_codes or {},
                version=1,
                **_service_hours(data.service_hours),
            )
            .on_conflict_do_nothing(index_elements=["code"])
            .returning(_stores.c.id)
        )
    ).first()
    if row is None:
        raise Conflict("duplicate_store_code", f"A store with code '{data.code}' already exists.")
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="store.created",
        resource_type="store",
        resource_id=row.id,
        store_id=row.id,
        data=data.model_dump(mode="json"),
    )
    store = await session.get(Store, row.id)
    assert store is not None
    return store


async def update(
    session: AsyncSession,
    principal: Principal,
    store_id: int,
    data: StoreUpdate,
    if_match: int | None,
) -> Store:
    """Apply a partial change under optimistic concurrency (``If-Match``)."""
    store = await get_visible(session, principal, store_id)
    await session.refresh(store, with_for_update=True)
    if if_match is not None and if_match != store.version:
        raise PreconditionFailed(
            "version_mismatch", f"Store is at version {store.version}, not {if_match}."
        )
    changes = data.model_dump(exclude_unset=True, mode="json")
    platform = data.platform.value if data.platform else store.platform
    overrides = {} if data.reset_dispatch_policy else dict(store.dispatch_policy)
    if data.dispatch_policy is not None:
        new = data.dispatch_policy.overrides()
        if "late_penalty" in new:
            new["late_penalty"] = {**overrides.get("late_penalty", {}), **new["late_penalty"]}
        overrides.update(new)
    _check_policy(platform, overrides)
    values: dict[str, Any] = {
        "platform": platform,
        "dispatch_policy": overrides,
        "version": store.version + 1,
        "updated_at": sa.func.now(),
    }
    if data.carrier_codes is not None:
        values["carrier_codes"] = {**(store.carrier_codes or {}), **data.carrier_codes}
    if data.name is not None:
        values["name"] = data.name
    if data.timezone is not None:
        values["timezone"] = data.timezone
    values.update(_service_hours(data.service_hours))
    await session.execute(sa.update(_stores).where(_stores.c.id == store_id).values(**values))
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="store.updated",
        resource_type="store",
        resource_id=store_id,
        store_id=store_id,
        data=changes,
    )
    await session.refresh(store)
    return store


async def list_page(
    session: AsyncSession,
    principal: Principal,
    *,
    after_id: int | None,
    limit: int,
    platform: str | None,
    q: str | None,
) -> list[Store]:
    """Stores in the key's scope by id, ``limit + 1`` rows after ``after_id``."""
    stmt = sa.select(Store).where(principal.scope_filter(_stores.c.id)).order_by(_stores.c.id)
    if after_id is not None:
        stmt = stmt.where(_stores.c.id > after_id)
    if platform is not None:
        stmt = stmt.where(_stores.c.platform == platform)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(sa.or_(_stores.c.code.ilike(pattern), _stores.c.name.ilike(pattern)))
    return list((await session.execute(stmt.limit(limit + 1))).scalars())


async def put_target(
    session: AsyncSession, principal: Principal, store_id: int, month: date, amount: Decimal
) -> TargetPublic:
    """Set (create or replace) a month's sales target."""
    await get_visible(session, principal, store_id)
    table = StoreTarget.__table__  # type: ignore[attr-defined]
    stmt = pg_insert(table).values(store_id=store_id, month=month, sales_target=amount)
    row = (
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["store_id", "month"],
                set_={"sales_target": stmt.excluded.sales_target, "updated_at": sa.func.now()},
            ).returning(table.c.updated_at)
        )
    ).one()
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="store.target_set",
        resource_type="store",
        resource_id=store_id,
        store_id=store_id,
        data={"month": month.strftime("%Y-%m"), "sales_target": str(amount)},
    )
    return TargetPublic(
        store_id=store_id,
        month=month.strftime("%Y-%m"),
        sales_target=amount,
        updated_at=row.updated_at,
    )


async def get_target(
    session: AsyncSession, principal: Principal, store_id: int, month: date
) -> TargetPublic:
    """A month's sales target, 404 ``target_not_found`` if none was set."""
    await get_visible(session, principal, store_id)
    target = await session.get(StoreTarget, (store_id, month))
    if target is None:
        raise not_found("target", month.strftime("%Y-%m"))
    return TargetPublic(
        store_id=store_id,
        month=month.strftime("%Y-%m"),
        sales_target=target.sales_target,
        updated_at=target.updated_at,
    )


async def put_traffic(
    session: AsyncSession,
    principal: Principal,
    store_id: int,
    day: date,
    visitors: int,
    ad_spend: Decimal,
) -> TrafficPublic:
    """Set (create or replace) a day's traffic figures."""
    await get_visible(session, principal, store_id)
    table = StoreTraffic.__table__  # type: ignore[attr-defined]
    stmt = pg_insert(table).values(store_id=store_id, day=day, visitors=visitors, ad_spend=ad_spend)
    row = (
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["store_id", "day"],
                set_={
                    "visitors": stmt.excluded.visitors,
                    "ad_spend": stmt.excluded.ad_spend,
                    "updated_at": sa.func.now(),
                },
            ).returning(table.c.updated_at)
        )
    ).one()
    return TrafficPublic(
        store_id=store_id, date=day, visitors=visitors, ad_spend=ad_spend, updated_at=row.updated_at
    )


async def get_traffic(
    session: AsyncSession, principal: Principal, store_id: int, day: date
) -> TrafficPublic:
    """A day's traffic, 404 ``traffic_not_found`` if none was pushed."""
    await get_visible(session, principal, store_id)
    traffic = await session.get(StoreTraffic, (store_id, day))
    if traffic is None:
        raise not_found("traffic", day.isoformat())
    return TrafficPublic(
        store_id=store_id,
        date=day,
        visitors=traffic.visitors,
        ad_spend=traffic.ad_spend,
        updated_at=traffic.updated_at,
    )
