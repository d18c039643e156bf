"""The event feed: exactly once and in order, even when transactions commit out of id order."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import sqlalchemy as sa

from app.domain.events import service as events
from tests.helpers import ADMIN, Api, assert_problem


async def _drain(
    api: Api, store_id: str, after: str | None, limit: int = 7
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for _ in range(1000):  # a cursor that never ends fails here instead of spinning
        params: dict[str, Any] = {"store_id": store_id, "limit": limit}
        if after:
            params["after"] = after
        r = await api.client.get("/v1/events", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        page = r.json()
        seen.extend(page["items"])
        if page["items"]:
            after = page["items"][-1]["id"]
        if page["next_cursor"] is None:
            return seen
    pytest.fail("the feed kept returning a next_cursor")


async def test_late_commit_is_not_skipped(api: Api, app: Any) -> None:
    """A transaction holding a lower event id commits after a higher one was read."""
    store_id = int((await api.store())["id"])
    maker = app.state.sessionmaker
    async with maker() as slow:
        await events.append(slow, "stock.low", store_id, {"n": "slow"})
        async with maker() as fast:
            await events.append(fast, "stock.low", store_id, {"n": "fast"})
            await fast.commit()
        # The slow transaction is still open: its event must not be shown yet, and
        # neither may the fast one, whose transaction began after it.
        seen = await _drain(api, str(store_id), None)
        assert [e["data"]["n"] for e in seen] == []
        await slow.commit()
    seen = await _drain(api, str(store_id), None)
    assert [e["data"]["n"] for e in seen] == ["slow", "fast"]


async def test_concurrent_writers_seen_exactly_once(api: Api, app: Any) -> None:
    """Many writers commit in random order while a consumer pages; nothing lost or repeated."""
    store_id = int((await api.store())["id"])
    maker = app.state.sessionmaker
    total = 60

    async def writer(n: int) -> None:
        async with maker() as session:
            await events.append(session, "order.created", store_id, {"n": n})
            await asyncio.sleep(random.random() * 0.05)
            await session.commit()

    seen: list[dict[str, Any]] = []
    after: str | None = None
    tasks = [asyncio.create_task(writer(n)) for n in range(total)]

    async def consume() -> None:
        nonlocal after
        while not all(t.done() for t in tasks) or len(seen) < total:
            got = await _drain(api, str(store_id), after, limit=5)
            if got:
                seen.extend(got)
                after = got[-1]["id"]
            await asyncio.sleep(0.005)

    # A lost event would keep the consumer waiting for ever: give up after a generous bound.
    try:
        await asyncio.wait_for(consume(), timeout=30)
    except TimeoutError:
        missing = set(range(total)) - {e["data"]["n"] for e in seen}
        pytest.fail(f"the feed never delivered events {sorted(missing)} (saw {len(seen)})")
    await asyncio.gather(*tasks)
    numbers = [e["data"]["n"] for e in seen]
    assert sorted(numbers) == list(range(total))
    assert len({e["id"] for e in seen}) == total


async def test_feed_filters_and_validation(api: Api, app: Any) -> None:
    store_id = int((await api.store())["id"])
    async with app.state.sessionmaker() as session:
        await events.append(session, "stock.low", store_id, {"k": 1})
        await events.append(session, "sku.delisted", store_id, {"k": 2})
        await session.commit()
    r = await api.client.get(
        "/v1/events", params={"store_id": str(store_id), "type": "sku.delisted"}, headers=ADMIN
    )
    assert [e["type"] for e in r.json()["items"]] == ["sku.delisted"]
    event = r.json()["items"][0]
    assert set(event) == {"id", "type", "store_id", "occurred_at", "data"}
    assert event["store_id"] == str(store_id)
    assert_problem(
        await api.client.get("/v1/events", params={"type": "nope"}, headers=ADMIN),
        422,
        "unknown_event_type",
    )
    for bad in ("abc", "999999999999"):
        assert_problem(
            await api.client.get("/v1/events", params={"after": bad}, headers=ADMIN),
            422,
            "invalid_cursor",
        )


async def test_scoped_key_sees_only_its_stores(api: Api, app: Any) -> None:
    mine = await api.store()
    other = await api.store()
    async with app.state.sessionmaker() as session:
        for s in (mine, other):
            await events.append(session, "stock.out", int(s["id"]), {"store": s["id"]})
        await session.commit()
    key = await api.key("integration", [mine["id"]])
    r = await api.client.get("/v1/events", params={"type": "stock.out", "limit": 500}, headers=key)
    assert {e["store_id"] for e in r.json()["items"]} == {mine["id"]}
    r = await api.client.get("/v1/events", params={"store_id": other["id"]}, headers=key)
    assert_problem(r, 404, "store_not_found")


async def test_dedupe_key_writes_once(app: Any) -> None:
    async with app.state.sessionmaker() as session:
        assert await events.append(session, "order.overdue", None, {}, dedupe_key="t:once")
        assert not await events.append(session, "order.overdue", None, {}, dedupe_key="t:once")
        count = (
            await session.execute(
                sa.text("SELECT count(*) FROM events WHERE dedupe_key = 't:once'")
            )
        ).scalar_one()
        assert count == 1
        await session.rollback()


def test_unknown_event_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        asyncio.run(events.append(None, "nope", None, {}))  # type: ignore[arg-type]
