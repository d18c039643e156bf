"""Promotions: quotes (pure engine and over HTTP) and single intake with a coupon.

Rows, on one store of 200 SKUs with 50 live promotions of every pricing kind:

- the pricing engine in-process: a 10-line cart against the 50 promotions (quotes/s,
  one client: it is CPU only);
- ``POST /v1/promotions/quote`` with the same cart at ``clients`` workers;
- ``POST /v1/orders`` plain (the baseline) and ``POST /v1/orders`` redeeming one coupon
  with a large ``usage_limit`` (sharded counters), interleaved slice by slice in the same
  run (the intake scenario's machinery). Target: coupon intake >= 0.8 of plain intake.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from app.domain.promotion import limits
from app.domain.promotion.rules import CartLine, Kind, Promo, cents, engine_rules, quote
from app.domain.promotion.schedule import Timing, Weekly
from bench import intake
from bench.common import Measurement, Options, Report, asyncpg_dsn, measure

NAME = "promotions"
PROMOTIONS = 50
CART_LINES = 10
COUPON = "BENCH10"
TARGET = 0.80
# Quotes hold a pooled connection while the engine runs: at 64 clients on two busy cores
# they waited past the pool timeout (503), so the HTTP quote row runs at most 16 clients.
QUOTE_CLIENTS = 16
ENGINE = "engine: quote 10 lines x 50 promotions (in-process)"
HTTP_QUOTE = "app: POST /v1/promotions/quote (10 lines, 50 live)"
PLAIN = "app: POST /v1/orders"
WITH_COUPON = "app: POST /v1/orders + coupon"
SH = ZoneInfo("Asia/Shanghai")


def _specs(skus: list[intake.Sku], rnd: random.Random) -> list[dict[str, Any]]:
    """50 promotions of every pricing kind, some scheduled, some stackable."""
    out = []
    kinds = ["percent_off", "special_price", "multi_buy", "threshold_off", "amount_off",
             "group_buy", "gift", "free_shipping"]  # fmt: skip
    for n in range(PROMOTIONS):
        kind = kinds[n % len(kinds)]
        chosen = rnd.sample(skus, 20)
        rules: dict[str, Any]
        if kind == "percent_off":
            rules = {"percent": str(rnd.randint(1, 30))}
        elif kind in ("special_price", "group_buy"):
            rules = {
                "prices": {
                    str(s.id): str((s.price * Decimal("0.9")).quantize(Decimal("0.01")))
                    for s in chosen
                }
            }
            if kind == "group_buy":
                rules["group_size"] = 2
        elif kind == "multi_buy":
            rules = {"tiers": [{"min_qty": 2, "percent": "5"}, {"min_qty": 5, "percent": "10"}]}
        elif kind == "threshold_off":
            rules = {
                "tiers": [
                    {"min_spend": "100.00", "off": "5.00"},
                    {"min_spend": "300.00", "off": "20.00"},
                ]
            }
        elif kind == "amount_off":
            rules = {"amount": "3.00"}
        elif kind == "gift":
            rules = {"min_spend": "50.00", "gift_sku_id": str(skus[0].id)}
        else:
            rules = {"min_spend": "99.00"}
        schedule = (
            {"weekdays": [1, 2, 3, 4, 5, 6, 7], "start_time": "00:00", "end_time": "00:00"}
            if n % 3 == 0
            else None
        )
        out.append(
            {
                "kind": kind,
                "rules": rules,
                "sku_ids": None if n % 2 else [s.id for s in chosen],
                "schedule": schedule,
                "stackable": n % 4 == 1,
            }
        )
    return out


def _engine(specs: list[dict[str, Any]], start: datetime, end: datetime) -> list[Promo]:
    promos = []
    for n, spec in enumerate(specs):
        kind = Kind(spec["kind"])
        sched = spec["schedule"]
        weekly = None
        if sched:
            weekly = Weekly(frozenset(sched["weekdays"]), datetime.min.time(), datetime.min.time())
        promos.append(
            Promo(
                n + 1,
                kind,
                engine_rules(kind, spec["rules"]),
                None if spec["sku_ids"] is None else frozenset(spec["sku_ids"]),
                Timing(start, end, weekly, SH),
                spec["stackable"],
            )
        )
    return promos


async def _seed(url: str, cat: intake.Catalog, specs: list[dict[str, Any]]) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    end = start + timedelta(days=30)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for spec in specs:
            await conn.execute(
                "INSERT INTO promotions (store_id, name, kind, rules, sku_ids, starts_at, ends_at,"
                " schedule, stackable, calendar_at, version) "
                "VALUES ($1, 'bench', $2, $3::jsonb, $4, $5, $6, $7::jsonb, $8, $5, 1)",
                cat.store_id, spec["kind"], orjson.dumps(spec["rules"]).decode(), spec["sku_ids"],
                start, end, orjson.dumps(spec["schedule"]).decode() if spec["schedule"] else None,
                spec["stackable"],
            )  # fmt: skip
        coupon_id = await conn.fetchval(
            "INSERT INTO promotions (store_id, name, kind, rules, starts_at, ends_at, code,"
            " usage_limit, calendar_at, version) VALUES ($1, 'bench coupon', 'coupon', "
            "'{\"amount\": \"1.00\", \"min_spend\": \"0.00\"}', $2, $3, $4, $5, $2, 1) "
            "RETURNING id",
            cat.store_id, start, end, COUPON, 100_000_000,
        )  # fmt: skip
        for row in limits.shard_rows(coupon_id, 100_000_000, None):
            await conn.execute(
                "INSERT INTO promotion_counters (promotion_id, shard, uses_left) "
                "VALUES ($1, $2, $3)",
                row["promotion_id"], row["shard"], row["uses_left"],
            )  # fmt: skip
    finally:
        await conn.close()


async def run(url: str, options: Options) -> Report:
    """Quotes in-process and over HTTP; single intake with a coupon beside plain intake."""
    cat, db = await intake._catalog(url), intake._database(url)
    rnd = random.Random(1111)
    specs = _specs(cat.skus, rnd)
    await _seed(url, cat, specs)
    now = datetime.now(UTC)
    promos = _engine(specs, now - timedelta(days=1), now + timedelta(days=30))
    cart_skus = rnd.sample(cat.skus, CART_LINES)
    cart = [CartLine(s.id, rnd.randint(1, 3), cents(s.price), None) for s in cart_skus]

    async def engine_op(_: int) -> None:
        quote(cart, promos, now, shipping_fee=800)

    engine_row = await measure(ENGINE, 1, engine_op, options)
    quote_body = orjson.dumps(
        {
            "store_id": str(cat.store_id),
            "items": [{"sku_id": str(c.sku_id), "quantity": c.quantity} for c in cart],
            "shipping_fee": "8.00",
        }
    )
    quote_rows: list[Measurement] = []
    quote_clients = min(options.clients, QUOTE_CLIENTS)
    async with (
        intake.running_service(url) as (base, _pid),
        intake._poster(base, "/v1/promotions/quote", quote_clients) as post,
    ):

        async def quote_op(worker: int) -> None:
            status, body = await post(worker, quote_body)
            if status != 200:
                raise RuntimeError(f"quote answered {status}: {body[:300]!r}")

        quote_rows.append(await measure(HTTP_QUOTE, quote_clients, quote_op, options))
    plain = intake.Row(PLAIN, options.clients, 1, db)
    coupon = intake.Row(WITH_COUPON, options.clients, 1, db)

    def order() -> bytes:
        return orjson.dumps(cat.draft("P").body(cat.store_id))

    def order_with_coupon() -> bytes:
        body = cat.draft("C").body(cat.store_id)
        body["coupon_code"] = COUPON
        return orjson.dumps(body)

    await intake._interleave(
        url,
        options,
        [
            (plain, lambda: intake._app_slice(url, plain, "/v1/orders", order, options)),
            (
                coupon,
                lambda: intake._app_slice(url, coupon, "/v1/orders", order_with_coupon, options),
            ),
        ],
    )
    ratio = coupon.result().ops_per_s / plain.result().ops_per_s
    summary = (
        f"engine: {engine_row.ops_per_s:,.0f} quotes/s in-process; HTTP quote "
        f"{quote_rows[0].ops_per_s:,.0f}/s at {quote_clients} clients\n"
        f"{NAME}: coupon intake / plain intake = {ratio:.2f} (target >= {TARGET:.2f})"
    )
    return Report(
        NAME,
        [engine_row, *quote_rows, plain.result(), coupon.result()],
        baseline=PLAIN,
        summary=summary,
        extra={"ratio": round(ratio, 4), "target": TARGET},
    )
