"""A crash after stock was reserved but before commit leaves nothing behind."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.inventory import reservations
from app.domain.order import intake
from tests.helpers import ADMIN, Api, assert_problem
from tests.routers.test_orders import order_body, stock, stocked_sku


@pytest.mark.parametrize(
    ("module", "step", "quantity"),
    [
        # All the stock asked for: reserved under the balance lock, line by line.
        (reservations, "reserve_lines", 5),
        # Plenty left: the whole order written by one statement, stock taken at commit.
        (intake, "_take_at_commit", 2),
    ],
)
async def test_crash_between_reservation_and_commit(
    api: Api, monkeypatch: pytest.MonkeyPatch, module: Any, step: str, quantity: int
) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    body = order_body(
        store["id"], [{"sku_id": sku["id"], "quantity": quantity, "unit_price": "1.00"}]
    )
    real_step = getattr(module, step)
    called = []

    async def reserve_then_crash(*args: Any, **kwargs: Any) -> Any:
        await real_step(*args, **kwargs)
        called.append(step)
        raise RuntimeError("process died after reserving")

    monkeypatch.setattr(module, step, reserve_then_crash)
    r = await api.client.post(
        "/v1/orders", json=body, headers={**ADMIN, "Idempotency-Key": f"crash-{step}"}
    )
    assert_problem(r, 500, "internal_error")
    assert called == [step]
    monkeypatch.setattr(module, step, real_step)
    s = await stock(api, sku["id"])
    assert (s["on_hand"], s["reserved"]) == (5, 0)
    listed = await api.client.get("/v1/orders", params={"q": body["external_id"]}, headers=ADMIN)
    assert listed.json()["items"] == []
    # The retry with the same key is not a replay of the failure: it does the work.
    r = await api.client.post(
        "/v1/orders", json=body, headers={**ADMIN, "Idempotency-Key": f"crash-{step}"}
    )
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert (await stock(api, sku["id"]))["reserved"] == quantity
