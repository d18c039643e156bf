"""Scenario ``marketplace``: 1,000-order PDD batches through the platform adapter, beside
canonical bulk intake (``intake-bulk``'s row) in the same run, and a second pass of the
same PDD payloads unchanged (the no-op path).

- ``app: POST /v1/orders/bulk``: 2 workers POST batches of 1,000 paid 2-line orders (as
  ``intake-bulk``).
- ``app: POST /v1/marketplace/pdd/orders``: 2 workers POST batches of 1,000 new PDD order
  objects (``pdd.order.information.get`` shape: JSON-number yuan, Beijing times, masked
  receiver, ``outer_id`` seller codes) of the same orders; each maps to a snapshot and is
  taken through bulk intake. Target: >= 0.8 of the bulk row.
- ``app: same PDD orders again``: 2 workers resend batches already taken, unchanged: one
  hash lookup per batch, nothing written. Target: >= 20,000 orders/s.

Rows alternate in ``--rounds`` slices, each from empty order tables, with the service
started per slice (as ``intake-bulk``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from bench.common import Options, Report, asyncpg_dsn
from bench.intake import (
    BATCH,
    BULK_CLIENTS,
    Catalog,
    Draft,
    Row,
    _catalog,
    _database,
    _poster,
    _reset,
    _summary,
    running_service,
)

NAME = "marketplace"
APP_BULK = "app: POST /v1/orders/bulk (1,000)"
ADAPTER = "app: POST /v1/marketplace/pdd/orders (1,000 new)"
NOOP = "app: same 1,000 PDD orders again (unchanged)"
ADAPTER_TARGET = 0.8
NOOP_TARGET = 20_000
NOOP_BATCHES = 4  # taken once before the window, then resent in turn
BEIJING = timezone(timedelta(hours=8))


def _local(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def pdd_order(d: Draft) -> dict[str, Any]:
    """The PDD order object of a draft (field names from the research, §1.2-1.3)."""
    items = [
        {
            "goods_id": 300000000000 + sku.id,
            "sku_id": 1100000000000 + sku.id,
            "goods_name": "加厚珊瑚绒四件套",
            "goods_count": q,
            "goods_price": float(sku.price),  # a JSON number, as PDD sends it
            "outer_id": sku.code,
        }
        for sku, q in d.lines
    ]
    goods = sum((sku.price * q for sku, q in d.lines), Decimal(0))
    return {
        "order_sn": d.external_id,
        "order_status": 1,
        "refund_status": 1,
        "confirm_status": 1,
        "trade_type": 0,
        "created_time": _local(d.placed_at),
        "pay_time": _local(d.paid_at),
        "confirm_time": _local(d.paid_at),
        "last_ship_time": _local(d.paid_at + timedelta(hours=48)),
        "shipping_time": "",
        "receive_time": "",
        "urge_shipping_time": "",
        "goods_amount": float(goods),
        "discount_amount": 0,
        "postage": 0,
        "pay_amount": float(goods),
        "province": "浙江省",
        "city": "杭州市",
        "town": "西湖区",
        "receiver_name_mask": "王*",
        "receiver_phone_mask": "138****5521",
        "receiver_address_mask": "文三路***号",
        "buyer_memo": "",
        "item_list": items,
    }


_TOKEN = "@@batch@@"
TEMPLATES = 8


class Batches:
    """New batch bodies, cheap to make inside the window: ``TEMPLATES`` bodies are built
    before it, each with a token in its order ids, and each batch is a template with the
    token replaced by a fresh batch number (one bytes replace). The load generator shares
    the 2 cores with the service: building a PDD batch from scratch cost the bench twice
    what a bulk batch did (19 vs 9 ms), taken from the service in the adapter row only."""

    def __init__(self, prefix: str, build: Callable[[str], bytes]) -> None:
        self._prefix = prefix
        self._templates = [build(f"{_TOKEN}t{k}-") for k in range(TEMPLATES)]
        self._n = itertools.count()

    def __call__(self) -> bytes:
        n = next(self._n)
        token = f"{self._prefix}{n}".encode()
        return self._templates[n % TEMPLATES].replace(_TOKEN.encode(), token)


def _op(post: Any, make: Callable[[], bytes], expected: int) -> Any:
    async def op(worker: int) -> None:
        status, body = await post(worker, make())
        if status != 200:
            raise RuntimeError(f"answered {status}: {body[:500]!r}")
        results = orjson.loads(body)["results"]
        if len(results) != BATCH or any(r["status"] != expected for r in results):
            raise RuntimeError(f"items not {expected}: {body[:500]!r}")

    return op


async def _slice(
    url: str,
    row: Row,
    path: str,
    make: Callable[[], bytes],
    expected: int,
    options: Options,
    prime: list[bytes] | None = None,
) -> int:
    async with (
        running_service(url) as (base, pid),
        _poster(base, path, row.clients, reconnect=True) as post,
    ):
        for batch in prime or []:
            status, body = await post(0, batch)
            if status != 200:
                raise RuntimeError(f"priming answered {status}: {body[:300]!r}")
        return await row.measure(_op(post, make, expected), options, pid)


async def run(url: str, options: Options) -> Report:
    """Bulk intake, the PDD adapter (new orders) and its no-op second pass, side by side."""
    cat: Catalog = await _catalog(url)
    db = _database(url)
    bulk = Row(APP_BULK, BULK_CLIENTS, BATCH, db)
    adapter = Row(ADAPTER, BULK_CLIENTS, BATCH, db)
    noop = Row(NOOP, BULK_CLIENTS, BATCH, db)
    pdd_path = f"/v1/marketplace/pdd/orders?store_id={cat.store_id}"

    def bulk_batch(prefix: str) -> bytes:
        return orjson.dumps(
            {"orders": [cat.draft(prefix).body(cat.store_id) for _ in range(BATCH)]}
        )

    def pdd_batch(prefix: str) -> bytes:
        return orjson.dumps({"orders": [pdd_order(cat.draft(prefix)) for _ in range(BATCH)]})

    new_bulk, new_pdd = Batches("B", bulk_batch), Batches("P", pdd_batch)

    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for _ in range(options.rounds):
            await _reset(admin)
            await _slice(url, bulk, "/v1/orders/bulk", new_bulk, 201, options)
            await _reset(admin)
            await _slice(url, adapter, pdd_path, new_pdd, 201, options)
            await _reset(admin)
            batches = [pdd_batch("N") for _ in range(NOOP_BATCHES)]
            await _slice(
                url, noop, pdd_path, itertools.cycle(batches).__next__, 200, options, batches
            )
    finally:
        await admin.close()
    b, a, n = (r.result().ops_per_s * BATCH for r in (bulk, adapter, noop))
    ratio = a / b if b else float("nan")
    last = (
        f"orders/s: bulk intake {b:,.0f}, PDD adapter {a:,.0f}, unchanged second pass {n:,.0f}"
        f" (ops/s above are 1,000-order batches)\n"
        f"{NAME}: adapter/bulk = {ratio:.2f} (target >= {ADAPTER_TARGET:.2f}); "
        f"no-op {n:,.0f} orders/s (target >= {NOOP_TARGET:,})"
    )
    return Report(
        NAME,
        [bulk.result(), adapter.result(), noop.result()],
        baseline=APP_BULK,
        summary=_summary((bulk, adapter, noop), last),
        extra={
            "ratio": round(ratio, 4),
            "orders_per_s": {"bulk": round(b, 1), "adapter": round(a, 1), "noop": round(n, 1)},
            "targets": {"ratio": ADAPTER_TARGET, "noop_orders_per_s": NOOP_TARGET},
            "batch": BATCH,
            "measured_at": datetime.now(UTC).isoformat(),
        },
    )
