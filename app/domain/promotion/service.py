"""Promotion orchestration: create, change, end, read, list; every change re-runs every
check (SKUs of the store, the coupon code, the floor check of DOMAIN.md §5)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain import audit
from app.domain.errors import Conflict, PreconditionFailed, RuleViolation, not_found
from app.domain.promotion import floor, limits, repository, schedule
from app.domain.promotion.calendar import announce_end, announce_now, calendar_values
from app.domain.promotion.rules import cents, money
from app.domain.promotion.schemas import (
    RULES,
    PromotionCreateUnion,
    PromotionPublic,
    PromotionStatus,
    PromotionUpdate,
    ScheduleIn,
    SkuList,
)
from app.domain.store import service as stores
from app.domain.store import zones
from app.models import Promotion

_promotions = Promotion.__table__  # type: ignore[attr-defined]


def status_of(row: Any, now: datetime) -> PromotionStatus:
    """``upcoming``, ``active`` (inside its window) or ``ended``."""
    if row.ended_at is not None or now >= row.ends_at:
        return PromotionStatus.ENDED
    if now < row.starts_at:
        return PromotionStatus.UPCOMING
    return PromotionStatus.ACTIVE


def to_public(row: Any, now: datetime) -> PromotionPublic:
    """The read model of a promotion."""
    return PromotionPublic(
        id=row.id,
        store_id=row.store_id,
        name=row.name,
        kind=row.kind,
        rules=row.rules,
        applies_to="all" if row.sku_ids is None else SkuList(sku_ids=list(row.sku_ids)),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        schedule=None if row.schedule is None else ScheduleIn(**row.schedule),
        stackable=row.stackable,
        code=row.code,
        usage_limit=row.usage_limit,
        per_buyer_limit=row.per_buyer_limit,
        budget=row.budget,
        status=status_of(row, now),
        ended_at=row.ended_at,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _referenced_skus(values: dict[str, Any]) -> list[tuple[list[Any], int]]:
    """Every SKU id the promotion names, with where it is named."""
    out: list[tuple[list[Any], int]] = []
    if values["sku_ids"] is not None:
        out += [(["body", "applies_to", "sku_ids", n], s) for n, s in enumerate(values["sku_ids"])]
    rules = values["rules"]
    for key in rules.get("prices", {}):
        out.append((["body", "rules", "prices", key], int(key)))
    if "gift_sku_id" in rules:
        out.append((["body", "rules", "gift_sku_id"], int(rules["gift_sku_id"])))
    return out


async def _check(
    session: AsyncSession, values: dict[str, Any], now: datetime, exclude: int | None
) -> None:
    """SKUs of the store, then the floor check (under the store's floor lock)."""
    store_id = values["store_id"]
    named = _referenced_skus(values)
    if named:
        known = set(
            (
                await session.execute(
                    sa.text("SELECT id FROM skus WHERE store_id = :s AND id = ANY(:ids)"),
                    {"s": store_id, "ids": sorted({s for _, s in named})},
                )
            ).scalars()
        )
        bad = [(loc, s) for loc, s in named if s not in known]
        if bad:
            raise RuleViolation(
                "unknown_sku",
                f"{len(bad)} SKU(s) named by the promotion are not SKUs of store {store_id}.",
                errors=[
                    {"loc": loc, "msg": "unknown SKU", "type": "unknown_sku"} for loc, _ in bad
                ],
            )
    await repository.lock_floors(session, store_id)
    tz = await zones.zone_of(session, store_id)
    new = repository.to_engine(_Values(values, exclude), tz, cache=False)
    others = [
        repository.to_engine(r, tz)
        for r in await repository.live(session, store_id, now, exclude=exclude)
    ]
    prices = await repository.sku_prices(session, store_id, values["sku_ids"])
    breaches = floor.check(new, others, list(prices.values()))
    if breaches:
        raise RuleViolation(
            "below_floor_price",
            "The promotion could sell SKU(s) under their floor price: "
            + ", ".join(
                f"{b.sku_id} (floor {money(b.floor)}, worst {money(b.worst_cents)})"
                for b in breaches
            )
            + ".",
            errors=[
                {
                    "loc": ["body", "rules"],
                    "msg": f"SKU {b.sku_id} could sell at {money(b.worst_cents)}, "
                    f"under its floor {money(b.floor)}",
                    "type": "below_floor_price",
                }
                for b in breaches
            ],
            extra={
                "skus": [
                    {
                        "sku_id": str(b.sku_id),
                        "floor_price": str(money(b.floor)),
                        "worst_price": str(money(b.worst_cents)),
                    }
                    for b in breaches
                ]
            },
        )


class _Values:
    """A promotion not yet stored, read like a row."""

    def __init__(self, values: dict[str, Any], ident: int | None) -> None:
        self.__dict__.update(values)
        self.id = ident or 0
        self.ended_at = None


async def _free_code(session: AsyncSession, store_id: int, code: str, now: datetime) -> None:
    """Coupons past their end give up their code (the sweep does it too)."""
    await session.execute(
        sa.text(
            "UPDATE promotions SET ended_at = ends_at WHERE store_id = :s AND code = :c "
            "AND ended_at IS NULL AND ends_at <= :now"
        ),
        {"s": store_id, "c": code, "now": now},
    )


def _duplicate_code(code: str) -> Conflict:
    return Conflict(
        "duplicate_coupon_code", f"Coupon code '{code}' is already used by a live coupon."
    )


def _constraint(exc: IntegrityError) -> str | None:
    orig = getattr(exc.orig, "__cause__", None) or exc.orig
    name = getattr(orig, "constraint_name", None)
    return name if isinstance(name, str) else None


def _values_of(data: Any) -> dict[str, Any]:
    dumped = data.model_dump(mode="json")
    applies = data.applies_to
    return {
        "store_id": data.store_id,
        "name": data.name,
        "kind": data.kind,
        "rules": dumped["rules"],
        "sku_ids": None if applies == "all" else sorted(set(applies.sku_ids)),
        "starts_at": data.starts_at,
        "ends_at": data.ends_at,
        "schedule": dumped["schedule"],
        "stackable": data.stackable,
        "code": data.code,
        "usage_limit": data.usage_limit,
        "per_buyer_limit": data.per_buyer_limit,
        "budget": data.budget,
    }


async def create(
    session: AsyncSession, principal: Principal, data: PromotionCreateUnion, now: datetime
) -> Any:
    """Create a promotion: ``422`` for SKUs of another store or a floor breach, ``409`` for
    a coupon code a live coupon uses."""
    await stores.get_visible(session, principal, data.store_id)
    values = _values_of(data)
    await _check(session, values, now, None)
    if data.code is not None:
        await _free_code(session, data.store_id, data.code, now)
    tz = await zones.zone_of(session, data.store_id)
    values.update(calendar_values(repository.timing(_Values(values, None), tz), now))
    try:
        async with session.begin_nested():
            promotion_id = (
                await session.execute(
                    sa.insert(_promotions).values(**values, version=1).returning(_promotions.c.id)
                )
            ).scalar_one()
    except IntegrityError as exc:
        if _constraint(exc) != "uq_promotions_store_id_code":
            raise
        raise _duplicate_code(data.code or "") from exc
    await limits.seed(session, promotion_id, data.usage_limit, data.budget)
    row = await _get(session, promotion_id)
    await announce_now(session, row, tz, now)
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="promotion.created",
        resource_type="promotion",
        resource_id=promotion_id,
        store_id=data.store_id,
        data=data.model_dump(mode="json"),
    )
    return row


async def _get(session: AsyncSession, promotion_id: int, *, lock: bool = False) -> Any:
    stmt = sa.select(_promotions).where(_promotions.c.id == promotion_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def get_visible(
    session: AsyncSession, principal: Principal, promotion_id: int, *, lock: bool = False
) -> Any:
    """A promotion inside the key's scope, else 404."""
    row = await _get(session, promotion_id, lock=lock)
    if row is None or not principal.sees_store(row.store_id):
        raise not_found("promotion", promotion_id)
    return row


def _rules_of(kind: str, rules: dict[str, Any]) -> dict[str, Any]:
    try:
        parsed = RULES[kind].model_validate(rules)
    except ValidationError as exc:
        raise RuleViolation(
            "validation_error",
            f"rules do not fit a {kind} promotion.",
            errors=[
                {"loc": ["body", "rules", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ],
        ) from None
    dumped: dict[str, Any] = parsed.model_dump(mode="json")
    return dumped


async def update(
    session: AsyncSession,
    principal: Principal,
    promotion_id: int,
    data: PromotionUpdate,
    if_match: int | None,
    now: datetime,
) -> Any:
    """Change a promotion under ``If-Match``; the result passes every check again."""
    row = await get_visible(session, principal, promotion_id, lock=True)
    if if_match is not None and if_match != row.version:
        raise PreconditionFailed(
            "version_mismatch", f"Promotion is at version {row.version}, not {if_match}."
        )
    if status_of(row, now) is PromotionStatus.ENDED:
        raise Conflict("promotion_ended", f"Promotion {promotion_id} has ended.")
    changes = data.model_dump(exclude_unset=True)
    for name in ("name", "rules", "applies_to", "starts_at", "ends_at", "stackable"):
        if name in changes and changes[name] is None:
            raise RuleViolation(
                "validation_error",
                f"{name} cannot be null.",
                errors=[{"loc": ["body", name], "msg": "cannot be null", "type": "invalid"}],
            )
    values = {c.name: getattr(row, c.name) for c in _promotions.columns}
    for name in (
        "name",
        "starts_at",
        "ends_at",
        "stackable",
        "usage_limit",
        "per_buyer_limit",
        "budget",
    ):
        if name in changes:
            values[name] = getattr(data, name)
    if "rules" in changes:
        values["rules"] = _rules_of(row.kind, changes["rules"])
    if "applies_to" in changes:
        applies = data.applies_to
        values["sku_ids"] = None if applies == "all" else sorted(set(applies.sku_ids))  # type: ignore[union-attr]
    if "schedule" in changes:
        values["schedule"] = (
            None if data.schedule is None else data.schedule.model_dump(mode="json")
        )
    if "code" in changes:
        if row.kind != "coupon" or data.code is None:
            raise RuleViolation(
                "validation_error",
                "Only a coupon has a code, and a coupon keeps one.",
                errors=[{"loc": ["body", "code"], "msg": "invalid", "type": "invalid"}],
            )
        values["code"] = data.code
    if values["ends_at"] <= values["starts_at"]:
        raise RuleViolation(
            "validation_error",
            "ends_at must be after starts_at.",
            errors=[{"loc": ["body", "ends_at"], "msg": "before starts_at", "type": "invalid"}],
        )
    await _check(session, values, now, promotion_id)
    if values["code"] is not None and values["code"] != row.code:
        await _free_code(session, row.store_id, values["code"], now)
    tz = await zones.zone_of(session, row.store_id)
    timing = repository.timing(_Values(values, promotion_id), tz)
    writes = {
        k: values[k]
        for k in (
            "name",
            "rules",
            "sku_ids",
            "starts_at",
            "ends_at",
            "schedule",
            "stackable",
            "code",
            "usage_limit",
            "per_buyer_limit",
            "budget",
        )
    }
    writes["next_boundary_at"] = schedule.next_boundary(timing, row.calendar_at)
    try:
        async with session.begin_nested():
            await session.execute(
                sa.update(_promotions)
                .where(_promotions.c.id == promotion_id)
                .values(**writes, version=row.version + 1, updated_at=sa.func.now())
            )
    except IntegrityError as exc:
        if _constraint(exc) != "uq_promotions_store_id_code":
            raise
        raise _duplicate_code(values["code"]) from exc
    old = (row.usage_limit, row.budget)
    new = (values["usage_limit"], values["budget"])
    if old != new:
        await limits.reset(session, promotion_id, old, new)
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="promotion.updated",
        resource_type="promotion",
        resource_id=promotion_id,
        store_id=row.store_id,
        data=data.model_dump(exclude_unset=True, mode="json"),
    )
    return await _get(session, promotion_id)


async def end(session: AsyncSession, principal: Principal, promotion_id: int, now: datetime) -> Any:
    """End a promotion now (``promotion.ended`` if a window was open); ``409`` if ended."""
    row = await get_visible(session, principal, promotion_id, lock=True)
    if status_of(row, now) is PromotionStatus.ENDED:
        raise Conflict("promotion_ended", f"Promotion {promotion_id} has ended already.")
    await session.execute(
        sa.update(_promotions)
        .where(_promotions.c.id == promotion_id)
        .values(ended_at=now, version=row.version + 1, updated_at=sa.func.now())
    )
    tz = await zones.zone_of(session, row.store_id)
    await announce_end(session, row, tz, now)
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="promotion.ended",
        resource_type="promotion",
        resource_id=promotion_id,
        store_id=row.store_id,
        data={},
    )
    return await _get(session, promotion_id)


async def list_page(
    session: AsyncSession,
    principal: Principal,
    *,
    store_id: int | None,
    kind: str | None,
    status: PromotionStatus | None,
    active_at: datetime | None,
    after_id: int | None,
    limit: int,
    now: datetime,
) -> list[Any]:
    """Promotions by id in the key's scope, ``limit + 1`` rows after ``after_id``;
    ``active_at`` also checks weekly schedules in store time."""
    cond: list[Any] = []
    store_ids = await stores.store_filter(session, principal, store_id)
    if store_ids is not None:
        cond.append(_promotions.c.store_id.in_(store_ids))
    if kind is not None:
        cond.append(_promotions.c.kind == kind)
    p = _promotions.c
    if status is PromotionStatus.ACTIVE:
        cond += [p.ended_at.is_(None), p.starts_at <= now, p.ends_at > now]
    elif status is PromotionStatus.UPCOMING:
        cond += [p.ended_at.is_(None), p.starts_at > now]
    elif status is PromotionStatus.ENDED:
        cond.append(sa.or_(p.ended_at.is_not(None), p.ends_at <= now))
    if active_at is not None:
        cond += [
            p.starts_at <= active_at,
            p.ends_at > active_at,
            sa.or_(p.ended_at.is_(None), p.ended_at > active_at),
        ]
    out: list[Any] = []
    while True:
        stmt = sa.select(_promotions).where(*cond).order_by(p.id).limit(limit + 1)
        if after_id is not None:
            stmt = stmt.where(p.id > after_id)
        rows = list((await session.execute(stmt)).all())
        if active_at is None:
            return rows
        tzs = await zones.zones_of(session, {r.store_id for r in rows})
        out += [r for r in rows if schedule.is_on(repository.timing(r, tzs[r.store_id]), active_at)]
        if len(out) > limit or len(rows) <= limit:
            return out[: limit + 1]
        after_id = rows[-1].id


async def read_models(
    session: AsyncSession, rows: list[Any], now: datetime
) -> list[PromotionPublic]:
    """Read models in store time."""
    return await zones.in_store_time(session, [to_public(r, now) for r in rows])


async def recheck_sku(
    session: AsyncSession,
    store_id: int,
    sku_id: int,
    price: Decimal,
    floor_price: Decimal | None,
    now: datetime,
) -> None:
    """A SKU's new price or floor against the live promotions covering it: ``409
    below_floor_price`` if one of them, with those on at the same time, could break it."""
    await repository.lock_floors(session, store_id)
    tz = await zones.zone_of(session, store_id)
    live = [repository.to_engine(r, tz) for r in await repository.live(session, store_id, now)]
    breach = floor.check_sku(
        floor.SkuPrice(sku_id, cents(price), None if floor_price is None else cents(floor_price)),
        live,
    )
    if breach is not None:
        raise Conflict(
            "below_floor_price",
            f"Live promotions could sell SKU {sku_id} at {money(breach.worst_cents)}, under the "
            f"floor {money(breach.floor)}.",
            extra={
                "skus": [
                    {
                        "sku_id": str(sku_id),
                        "floor_price": str(money(breach.floor)),
                        "worst_price": str(money(breach.worst_cents)),
                    }
                ]
            },
        )
