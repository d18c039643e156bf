"""Reservations against real PostgreSQL: invariant, concurrency, backorders, shortfalls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.domain.errors import Conflict
from app.domain.inventory import hooks, ledger, reservations
from app.domain.inventory.hooks import AllocationChange
from app.domain.inventory.reservations import Line
from tests.helpers import Api

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)


def _line(sku_id: int, qty: int, deadline_h: float | None = 48, placed_h: float = 0) -> Line:
    return Line(
        sku_id=sku_id,
        quantity=qty,
        line_ref=uuid.uuid4().hex,
        placed_at=T0 + timedelta(hours=placed_h),
        deadline=None if deadline_h is None else T0 + timedelta(hours=deadline_h),
    )


async def _sku_with_stock(api: Api, app: Any, on_hand: int, **fields: Any) -> int:
    store = await api.store()
    sku_id = int((await api.sku(store["id"], **fields))["id"])
    if on_hand:
        async with app.state.sessionmaker() as session:
            await ledger.move(session, sku_id=sku_id, kind="receive", delta=on_hand, at=T0)
            await session.commit()
    return sku_id


async def _level(app: Any, sku_id: int) -> tuple[int, int]:
    async with app.state.sessionmaker() as session:
        row = (
            await session.execute(
                sa.text("SELECT on_hand, reserved FROM stock_levels WHERE sku_id = :id"),
                {"id": sku_id},
            )
        ).one()
        return row.on_hand, row.reserved


async def test_reserve_all_or_nothing(api: Api, app: Any) -> None:
    sku = await _sku_with_stock(api, app, 5)
    async with app.state.sessionmaker() as session:
        got = await reservations.reserve(session, _line(sku, 3), allow_partial=False)
        assert (got.requested, got.reserved) == (3, 3)
        with pytest.raises(Conflict) as err:
            await reservations.reserve(session, _line(sku, 3), allow_partial=False)
        assert err.value.code == "insufficient_stock"
        partial = await reservations.reserve(session, _line(sku, 3), allow_partial=True)
        assert (partial.requested, partial.reserved) == (3, 2)
        await session.commit()
    assert await _level(app, sku) == (5, 5)


async def test_check_constraint_backs_the_invariant(api: Api, app: Any) -> None:
    sku = await _sku_with_stock(api, app, 2)
    async with app.state.sessionmaker() as session:
        with pytest.raises(IntegrityError):
            await session.execute(
                sa.text("UPDATE stock_levels SET reserved = 3 WHERE sku_id = :id"), {"id": sku}
            )
        await session.rollback()


async def test_parallel_strict_reservations_never_oversell(api: Api, app: Any) -> None:
    sku = await _sku_with_stock(api, app, 30)

    async def attempt() -> bool:
        async with app.state.sessionmaker() as session:
            try:
                await reservations.reserve(session, _line(sku, 1), allow_partial=False)
                await session.commit()
            except Conflict:
                return False
            except DBAPIError as exc:
                # Taken at commit (plenty looked left) but gone by then: nothing is kept.
                gone = getattr(exc.orig, "sqlstate", None) == reservations.STOCK_GONE_AT_COMMIT
                if not gone:
                    raise
                return False
            return True

    results = await asyncio.gather(*(attempt() for _ in range(100)))
    assert sum(results) == 30
    assert await _level(app, sku) == (30, 30)


async def test_opposite_order_multi_sku_reservations_do_not_deadlock(api: Api, app: Any) -> None:
    a = await _sku_with_stock(api, app, 1000)
    b = await _sku_with_stock(api, app, 1000)

    async def order(first: int, second: int) -> None:
        async with app.state.sessionmaker() as session:
            await reservations.reserve_lines(
                session, [_line(first, 1), _line(second, 1)], allow_partial=False
            )
            await asyncio.sleep(0.001)
            await session.commit()

    await asyncio.wait_for(
        asyncio.gather(*(order(a, b) if n % 2 else order(b, a) for n in range(40))), timeout=60
    )
    assert await _level(app, a) == (1000, 40)
    assert await _level(app, b) == (1000, 40)


async def test_rollback_leaves_no_reservation(api: Api, app: Any) -> None:
    """A crash between reservation and commit leaves nothing behind."""
    sku = await _sku_with_stock(api, app, 4)
    line = _line(sku, 4)
    async with app.state.sessionmaker() as session:
        await reservations.reserve(session, line, allow_partial=False)
        await session.rollback()
    assert await _level(app, sku) == (4, 0)
    async with app.state.sessionmaker() as session:
        count = (
            await session.execute(
                sa.text("SELECT count(*) FROM reservations WHERE line_ref = :r"),
                {"r": line.line_ref},
            )
        ).scalar_one()
    assert count == 0


class _Recorder:
    def __init__(self) -> None:
        self.changes: list[AllocationChange] = []

    async def __call__(self, session: Any, changes: Sequence[AllocationChange]) -> None:
        self.changes.extend(changes)


async def test_arriving_stock_goes_to_earliest_deadline_then_placed_at(api: Api, app: Any) -> None:
    sku = await _sku_with_stock(api, app, 0)
    recorder = _Recorder()
    hooks.on_allocation_change(recorder)
    try:
        async with app.state.sessionmaker() as session:
            late = await reservations.reserve(session, _line(sku, 2, 72), allow_partial=True)
            early_b = await reservations.reserve(
                session, _line(sku, 2, 24, placed_h=1), allow_partial=True
            )
            early_a = await reservations.reserve(
                session, _line(sku, 2, 24, placed_h=0), allow_partial=True
            )
            no_group = await reservations.reserve(session, _line(sku, 1, None), allow_partial=True)
            await session.commit()
        async with app.state.sessionmaker() as session:
            await ledger.move(session, sku_id=sku, kind="receive", delta=5, at=T0)
            await session.commit()
    finally:
        hooks._listeners.remove(recorder)
    got = {c.line_ref: c.reserved for c in recorder.changes}
    assert got == {early_a.line_ref: 2, early_b.line_ref: 2, late.line_ref: 1}
    assert no_group.line_ref not in got
    assert [c.line_ref for c in recorder.changes] == [
        early_a.line_ref,
        early_b.line_ref,
        late.line_ref,
    ]
    assert await _level(app, sku) == (5, 5)
    async with app.state.sessionmaker() as session:
        assert await reservations.backordered(session, [sku]) == {sku: 2}


async def test_take_back_starts_with_latest_deadline(api: Api, app: Any) -> None:
    sku = await _sku_with_stock(api, app, 6)
    async with app.state.sessionmaker() as session:
        soon = await reservations.reserve(session, _line(sku, 2, 12), allow_partial=False)
        later = await reservations.reserve(session, _line(sku, 2, 40), allow_partial=False)
        latest = await reservations.reserve(session, _line(sku, 2, 47), allow_partial=False)
        await session.commit()
    async with app.state.sessionmaker() as session:
        from app.domain.inventory import levels

        state = (await levels.lock_states(session, [sku]))[sku]
        state, changes = await reservations.take_back(session, state, 3)
        await session.commit()
    assert [(c.line_ref, c.delta) for c in changes] == [(latest.line_ref, -2), (later.line_ref, -1)]
    assert soon.line_ref not in {c.line_ref for c in changes}
    assert state.reserved == 3
    assert await _level(app, sku) == (6, 3)


async def test_release_and_consume(api: Api, app: Any) -> None:
    sku = await _sku_with_stock(api, app, 3)
    async with app.state.sessionmaker() as session:
        a = await reservations.reserve(session, _line(sku, 2), allow_partial=False)
        b = await reservations.reserve(session, _line(sku, 2), allow_partial=True)
        await session.commit()
    assert (b.reserved, await _level(app, sku)) == (1, (3, 3))
    async with app.state.sessionmaker() as session:
        with pytest.raises(Conflict) as err:
            await reservations.consume(session, [b.line_ref], at=T0, reference="o", api_key_id=None)
        assert err.value.code == "not_allocated"
        await session.rollback()
    async with app.state.sessionmaker() as session:
        await reservations.release(session, [a.line_ref], T0)  # frees 2, b gets its second unit
        await session.commit()
    assert await _level(app, sku) == (3, 2)
    async with app.state.sessionmaker() as session:
        shipped = await reservations.consume(
            session, [b.line_ref], at=T0, reference="order:1", api_key_id=None
        )
        await session.commit()
    assert [(s.quantity, s.sku_id) for s in shipped] == [(2, sku)]
    assert await _level(app, sku) == (1, 0)
    async with app.state.sessionmaker() as session:
        kinds = (
            await session.execute(
                sa.text(
                    "SELECT kind, quantity FROM stock_movements WHERE sku_id = :id ORDER BY id"
                ),
                {"id": sku},
            )
        ).all()
    assert [tuple(k) for k in kinds] == [("receive", 3), ("ship", -2)]


async def test_stock_taken_at_commit_and_refused_when_gone(api: Api, app: Any) -> None:
    """Plenty left: the take happens inside COMMIT; if the stock went meanwhile, nothing stays."""
    sku = await _sku_with_stock(api, app, 10)
    line = _line(sku, 4)
    async with app.state.sessionmaker() as slow:
        got = await reservations.reserve(slow, line, allow_partial=False)
        assert got.reserved == 4
        assert await _level(app, sku) == (10, 0)  # not taken yet
        async with app.state.sessionmaker() as other:  # meanwhile the stock goes
            await ledger.move(other, sku_id=sku, kind="damage", delta=-8, at=T0)
            await other.commit()
        with pytest.raises(DBAPIError) as err:
            await slow.commit()
        assert getattr(err.value.orig, "sqlstate", None) == reservations.STOCK_GONE_AT_COMMIT
    assert await _level(app, sku) == (2, 0)
    async with app.state.sessionmaker() as session:
        count = (
            await session.execute(
                sa.text("SELECT count(*) FROM reservations WHERE line_ref = :r"),
                {"r": line.line_ref},
            )
        ).scalar_one()
    assert count == 0
    async with app.state.sessionmaker() as session:  # a later take with plenty left commits
        await reservations.reserve(session, _line(sku, 1), allow_partial=False)
        await session.commit()
    assert await _level(app, sku) == (2, 1)
