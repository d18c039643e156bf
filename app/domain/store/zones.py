"""Store time at the edges (API.md "Time"): instants leave in the store's own offset.

Everything inside computes with aware UTC datetimes; read models and event payloads are
rendered in the store's zone once, here, when they are built. The offset is taken per
instant, so a store in a zone with daylight saving time gets the offset of each moment.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from functools import cache, lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

_CACHE_KEY = "store_zones"


@lru_cache(maxsize=1024)
def zone(name: str) -> tzinfo:
    """The zone of an IANA name (validated when the store was written), cached per name."""
    return ZoneInfo(name)


def remember(session: AsyncSession, store_id: int, name: str) -> tzinfo:
    """Note a store's zone for the rest of the transaction; the zone."""
    tz = zone(name)
    session.info.setdefault(_CACHE_KEY, {})[store_id] = tz
    return tz


async def zones_of(session: AsyncSession, store_ids: Iterable[int]) -> dict[int, tzinfo]:
    """The zones of the given stores (read once per transaction)."""
    known: dict[int, tzinfo] = session.info.setdefault(_CACHE_KEY, {})
    ids = set(store_ids)
    missing = sorted(ids - known.keys())
    if missing:
        rows = await session.execute(
            sa.text("SELECT id, timezone FROM stores WHERE id = ANY(:ids)"), {"ids": missing}
        )
        for r in rows:
            known[r.id] = zone(r.timezone)
    return {i: known.get(i, UTC) for i in ids}


async def zone_of(session: AsyncSession, store_id: int | None) -> tzinfo:
    """The zone of one store; UTC for what belongs to no store."""
    if store_id is None:
        return UTC
    return (await zones_of(session, [store_id]))[store_id]


def render(at: datetime, tz: tzinfo) -> str:
    """``at`` as ISO 8601 with the zone's offset at that instant."""
    return at.astimezone(tz).isoformat()


def render_data(data: Mapping[str, Any], tz: tzinfo) -> dict[str, Any]:
    """A JSON payload with every datetime in it (nested too) rendered in ``tz``."""
    return {k: _render_value(v, tz) for k, v in data.items()}


def _render_value(value: Any, tz: tzinfo) -> Any:
    if isinstance(value, datetime):
        return render(value, tz)
    if isinstance(value, Mapping):
        return render_data(value, tz)
    if isinstance(value, list | tuple):
        return [_render_value(v, tz) for v in value]
    return value


def _holds_instants(annotation: Any) -> bool:
    """Whether a field of this type can hold a datetime, directly or in a nested model."""
    if annotation is datetime:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return bool(_fields_with_instants(annotation))
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, typing.Union, types.UnionType, typing.Annotated):
        return any(_holds_instants(a) for a in typing.get_args(annotation))
    return False


@cache
def _fields_with_instants(cls: type[BaseModel]) -> tuple[str, ...]:
    # Worked out once per model class: the walk below then visits only these fields.
    return tuple(name for name, f in cls.model_fields.items() if _holds_instants(f.annotation))


def _localize(value: Any, tz: tzinfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz)
    if isinstance(value, BaseModel):
        fields = value.__dict__
        for name in _fields_with_instants(type(value)):
            inner = fields[name]
            if inner is not None:
                fields[name] = _localize(inner, tz)
        return value
    if isinstance(value, list):
        return [_localize(v, tz) for v in value]
    return value


def localize(model: T, tz: tzinfo) -> T:
    """``model`` (a read model) with every datetime field, nested ones too, in ``tz``.

    Changes the model in place (it was just built for one response) and returns it;
    free-form ``dict`` fields are left as they are (event payloads are rendered when written).
    """
    return typing.cast(T, _localize(model, tz))


def localize_all(models: list[T], zones: Mapping[int, tzinfo]) -> list[T]:
    """Each read model in the zone of its ``store_id`` (UTC for one without a store)."""
    for m in models:
        store_id = getattr(m, "store_id", None)
        _localize(m, zones.get(store_id, UTC) if store_id is not None else UTC)
    return models


async def in_store_time(session: AsyncSession, models: list[T]) -> list[T]:
    """Read models, each in the zone of its ``store_id`` (one read of the stores' zones)."""
    ids = {s for m in models if (s := getattr(m, "store_id", None)) is not None}
    return localize_all(models, await zones_of(session, ids))


async def one_in_store_time(session: AsyncSession, model: T) -> T:
    """One read model in the zone of its ``store_id``."""
    return (await in_store_time(session, [model]))[0]
