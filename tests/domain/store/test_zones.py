"""Store time at the edges: the zone's offset per instant, nested read models, payloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from app.domain.store import zones

NY = zones.zone("America/New_York")
SH = zones.zone("Asia/Shanghai")


@pytest.mark.parametrize(
    ("at", "tz", "text"),
    [
        (datetime(2026, 11, 11, 2, tzinfo=UTC), SH, "2026-11-11T10:00:00+08:00"),
        (datetime(2026, 11, 11, 2, tzinfo=UTC), NY, "2026-11-10T21:00:00-05:00"),
        (datetime(2026, 7, 1, 14, tzinfo=UTC), NY, "2026-07-01T10:00:00-04:00"),  # DST
        # The hour New York repeats when DST ends: same wall time, two offsets.
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), NY, "2026-11-01T01:30:00-04:00"),
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), NY, "2026-11-01T01:30:00-05:00"),
        (datetime(2026, 11, 11, 2, 0, 0, 5, tzinfo=UTC), UTC, "2026-11-11T02:00:00.000005+00:00"),
    ],
)
def test_render_takes_the_offset_of_the_instant(at: datetime, tz: Any, text: str) -> None:
    assert zones.render(at, tz) == text
    assert datetime.fromisoformat(text) == at


def test_zone_is_cached_per_name() -> None:
    assert zones.zone("Asia/Shanghai") is SH


class _Scan(BaseModel):
    at: datetime


class _Shipment(BaseModel):
    shipped_at: datetime
    delivered_at: datetime | None
    events: list[_Scan]


class _Line(BaseModel):
    quantity: int


class _Order(BaseModel):
    store_id: int | None
    placed_at: datetime
    paid_at: datetime | None
    lines: list[_Line]
    shipments: list[_Shipment]
    data: dict[str, Any]


T = datetime(2026, 11, 11, 2, tzinfo=UTC)


def _order(store_id: int | None = 1) -> _Order:
    return _Order(
        store_id=store_id,
        placed_at=T,
        paid_at=None,
        lines=[_Line(quantity=1)],
        shipments=[_Shipment(shipped_at=T, delivered_at=None, events=[_Scan(at=T)])],
        data={"at": T},
    )


def test_localize_reaches_nested_models_and_leaves_the_rest() -> None:
    o = zones.localize(_order(), SH)
    assert o.placed_at.utcoffset() == timedelta(hours=8)
    assert o.placed_at == T  # the same instant
    assert o.paid_at is None
    assert o.shipments[0].shipped_at.utcoffset() == timedelta(hours=8)
    assert o.shipments[0].events[0].at.utcoffset() == timedelta(hours=8)
    assert o.shipments[0].delivered_at is None
    # Free-form payloads are not read models: events are rendered when written.
    assert o.data["at"].tzinfo is UTC
    assert o.model_dump(mode="json")["shipments"][0]["events"][0]["at"] == (
        "2026-11-11T10:00:00+08:00"
    )


def test_localize_all_uses_each_models_store_and_utc_for_none() -> None:
    a, b, c = zones.localize_all([_order(1), _order(2), _order(None)], {1: SH, 2: NY})
    assert [m.placed_at.utcoffset() for m in (a, b, c)] == [
        timedelta(hours=8),
        timedelta(hours=-5),
        timedelta(0),
    ]


def test_render_data_renders_every_datetime_in_a_payload() -> None:
    data = {"n": 1, "at": T, "none": None, "inner": {"at": T}, "list": [T, "x"]}
    assert zones.render_data(data, SH) == {
        "n": 1,
        "at": "2026-11-11T10:00:00+08:00",
        "none": None,
        "inner": {"at": "2026-11-11T10:00:00+08:00"},
        "list": ["2026-11-11T10:00:00+08:00", "x"],
    }
