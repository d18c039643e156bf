"""The group-buy (拼团) lifecycle: a paid order waits for its group; group-formed starts the
dispatch clock at max(paid_at, formed_at), group-failed cancels and releases the stock
(API.md "Orders", DOMAIN.md §2). Shipment and scan times from a device's clock are bounded:
not before payment, at most 5 minutes ahead."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from tests.helpers import ADMIN, Api, SettableClock, assert_problem, instant
from tests.routers.test_orders import T0, order_body, stock, stocked_sku

PAID = T0 + timedelta(minutes=1)  # order_body's paid_at


async def _events(app: Any, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            sa.text("SELECT type, data FROM events WHERE data->>'order_id' = :id ORDER BY id"),
            {"id": order_id},
        )
        return [(r.type, r.data) for r in rows]


async def _group_order(api: Api, store_id: str, sku_id: str, **extra: Any) -> dict[str, Any]:
    body = order_body(
        store_id,
        [{"sku_id": sku_id, "quantity": 2, "unit_price": "9.90"}],
        group_buy={"group_id": "G-" + uuid.uuid4().hex[:8]},
        **extra,
    )
    r = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_group_formed_starts_the_clock_once(api: Api, app: Any, clock: SettableClock) -> None:
    clock.set(T0 + timedelta(hours=3))
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 10)
    o = await _group_order(api, store["id"], sku["id"])
    assert (o["status"], o["dispatch_deadline"], o["risk"]) == ("awaiting_shipment", None, None)
    ship = {"carrier": "ZTO", "tracking_number": "73100000000077"}
    url = f"/v1/orders/{o['id']}"
    assert_problem(await api.client.post(f"{url}/ship", json=ship, headers=ADMIN), 409)

    # A device 10 minutes ahead cannot form the group in the future.
    ahead = {"formed_at": (clock.now() + timedelta(minutes=10)).isoformat()}
    assert_problem(await api.client.post(f"{url}/group-formed", json=ahead, headers=ADMIN), 422)
    warehouse = await api.key("warehouse", [store["id"]])
    formed = {"formed_at": "2026-11-11T12:00:00+08:00"}  # T0 + 2 h
    assert_problem(
        await api.client.post(f"{url}/group-formed", json=formed, headers=warehouse), 403
    )
    headers = {**ADMIN, "Idempotency-Key": uuid.uuid4().hex}
    r = await api.client.post(f"{url}/group-formed", json=formed, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert instant(body["group_buy"]["formed_at"]) == instant("2026-11-11T04:00:00Z")
    assert instant(body["clock_started_at"]) == instant("2026-11-11T04:00:00Z")
    assert instant(body["dispatch_deadline"]) == instant("2026-11-13T04:00:00Z")  # pdd: 48 h
    assert body["risk"] == "on_track"
    replay = await api.client.post(f"{url}/group-formed", json=formed, headers=headers)
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (200, "true")
    # The same fact again without a key changes nothing; another instant is a conflict.
    again = await api.client.post(f"{url}/group-formed", json=formed, headers=ADMIN)
    assert (again.status_code, again.json()["version"]) == (200, body["version"])
    other = {"formed_at": "2026-11-11T12:30:00+08:00"}
    assert_problem(
        await api.client.post(f"{url}/group-formed", json=other, headers=ADMIN),
        409,
        "invalid_transition",
    )
    evs = await _events(app, o["id"])
    assert [t for t, _ in evs] == ["order.created", "order.group_formed"]
    assert instant(evs[1][1]["formed_at"]) == instant("2026-11-11T04:00:00Z")
    assert instant(evs[1][1]["dispatch_deadline"]) == instant("2026-11-13T04:00:00Z")
    assert evs[1][1]["group_id"] == body["group_buy"]["group_id"]

    # A buyer who joins a group formed before paying: the clock starts at payment.
    early = await _group_order(api, store["id"], sku["id"])
    r = await api.client.post(
        f"/v1/orders/{early['id']}/group-formed",
        json={"formed_at": "2026-11-11T09:00:00+08:00"},
        headers=ADMIN,
    )
    assert r.json()["clock_started_at"] == r.json()["paid_at"]
    assert instant(r.json()["dispatch_deadline"]) == instant("2026-11-13T02:01:00Z")
    r = await api.client.post(f"{url}/ship", json=ship, headers=ADMIN)
    assert r.status_code == 200, r.text
    # Not a group buy, or already shipped: no group to form.
    assert_problem(
        await api.client.post(f"{url}/group-formed", json=formed, headers=ADMIN),
        409,
        "invalid_transition",
    )


async def test_group_failed_cancels_and_releases_stock(
    api: Api, app: Any, clock: SettableClock
) -> None:
    clock.set(T0 + timedelta(hours=3))
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 10)
    o = await _group_order(api, store["id"], sku["id"])
    plain = (
        await api.client.post(
            "/v1/orders",
            json=order_body(store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": 1}]),
            headers=ADMIN,
        )
    ).json()
    assert (await stock(api, sku["id"]))["reserved"] == 3
    assert_problem(
        await api.client.post(f"/v1/orders/{plain['id']}/group-failed", headers=ADMIN),
        409,
        "invalid_transition",
    )
    r = await api.client.post(
        f"/v1/orders/{o['id']}/group-failed", json={"reason": "拼团失败"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cancel_reason"]) == ("cancelled", "拼团失败")
    assert (await stock(api, sku["id"]))["reserved"] == 1
    evs = await _events(app, o["id"])
    assert [t for t, _ in evs] == ["order.created", "order.cancelled"]
    assert evs[1][1]["reason"] == "拼团失败"
    assert evs[1][1]["group_failed"] is True
    assert_problem(
        await api.client.post(f"/v1/orders/{o['id']}/group-failed", headers=ADMIN),
        409,
        "invalid_transition",
    )

    # Without a body the reason says what happened; a formed group cannot fail.
    bare = await _group_order(api, store["id"], sku["id"])
    r = await api.client.post(f"/v1/orders/{bare['id']}/group-failed", headers=ADMIN)
    assert (r.status_code, r.json()["cancel_reason"]) == (200, "group_failed")
    formed = await _group_order(api, store["id"], sku["id"])
    await api.client.post(
        f"/v1/orders/{formed['id']}/group-formed",
        json={"formed_at": "2026-11-11T12:00:00+08:00"},
        headers=ADMIN,
    )
    assert_problem(
        await api.client.post(f"/v1/orders/{formed['id']}/group-failed", headers=ADMIN),
        409,
        "invalid_transition",
    )


async def test_device_times_are_bounded_by_payment_and_now(api: Api, clock: SettableClock) -> None:
    now = T0 + timedelta(hours=3)
    clock.set(now)
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 10)
    item = [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1.00"}]
    o = (
        await api.client.post("/v1/orders", json=order_body(store["id"], item), headers=ADMIN)
    ).json()
    url = f"/v1/orders/{o['id']}"
    ship = {"carrier": "ZTO", "tracking_number": "73100000000099"}
    for shipped_at in (PAID - timedelta(seconds=1), now + timedelta(minutes=5, seconds=1)):
        body = assert_problem(
            await api.client.post(
                f"{url}/ship", json={**ship, "shipped_at": shipped_at.isoformat()}, headers=ADMIN
            ),
            422,
            "invalid_shipped_at",
        )
        assert body["errors"][0]["loc"] == ["body", "shipped_at"]
    r = await api.client.post(
        f"{url}/ship",
        json={**ship, "shipped_at": (now + timedelta(minutes=5)).isoformat()},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    for at in (PAID - timedelta(seconds=1), now + timedelta(minutes=5, seconds=1)):
        assert_problem(
            await api.client.post(
                f"{url}/tracking-events",
                json={"event": "picked_up", "at": at.isoformat()},
                headers=ADMIN,
            ),
            422,
            "invalid_tracking_time",
        )
    # The carrier's pickup scan before the (device-recorded) shipment still counts.
    r = await api.client.post(
        f"{url}/tracking-events",
        json={"event": "picked_up", "at": (now - timedelta(minutes=30)).isoformat()},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert r.json()["shipments"][0]["picked_up_at"] is not None


async def test_a_waiting_group_order_is_served_by_its_new_deadline(
    api: Api, app: Any, clock: SettableClock
) -> None:
    clock.set(T0 + timedelta(hours=3))
    store = await api.store("pdd")
    sku = await stocked_sku(api, store["id"], 0)
    o = await _group_order(api, store["id"], sku["id"])
    assert o["allocation"] == "short"

    async def deadlines() -> list[Any]:
        async with app.state.sessionmaker() as session:
            rows = await session.execute(
                sa.text("SELECT deadline FROM reservations WHERE order_id = :id"),
                {"id": int(o["id"])},
            )
            return [r.deadline for r in rows]

    assert await deadlines() == [None]
    r = await api.client.post(
        f"/v1/orders/{o['id']}/group-formed",
        json={"formed_at": "2026-11-11T12:00:00+08:00"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert [d.isoformat() for d in await deadlines()] == ["2026-11-13T04:00:00+00:00"]
