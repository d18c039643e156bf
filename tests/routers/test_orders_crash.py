"""A crash after stock was reserved but before commit leaves nothing behind."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.inventory import reservations
from tests.helpers import ADMIN, Api, assert_problem
from tests.routers.test_orders import order_body, stock, stocked_sku


async def test_crash_between_reservation_and_commit(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    body = order_body(store["id"], [{"sku_id": sku["id"], "quantity": 2, "unit_price": "1.00"}])
    real_reserve = reservations.reserve_lines

    async def reserve_then_crash(*args: Any, **kwargs: Any) -> Any:
        await real_reserve(*args, **kwargs)
        raise RuntimeError("process died after reserving")

    monkeypatch.setattr(reservations, "reserve_lines", reserve_then_crash)
    r = await api.client.post(
        "/v1/orders", json=body, headers={**ADMIN, "Idempotency-Key": "crash-1"}
    )
    assert_problem(r, 500, "internal_error")
    monkeypatch.setattr(reservations, "reserve_lines", real_reserve)
    s = await stock(api, sku["id"])
    assert (s["on_hand"], s["reserved"]) == (5, 0)
    listed = await api.client.get("/v1/orders", params={"q": body["external_id"]}, headers=ADMIN)
    assert listed.json()["items"] == []
    # The retry with the same key is not a replay of the failure: it does the work.
    r = await api.client.post(
        "/v1/orders", json=body, headers={**ADMIN, "Idempotency-Key": "crash-1"}
    )
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert (await stock(api, sku["id"]))["reserved"] == 2
