"""Fuzz StoreOps with schemathesis: a served app on its own database, seeded, then ``st run``
once per role (admin, and operator, warehouse and integration keys scoped to one store).

Used by ``tests/fuzz/test_fuzz.py`` (a bounded run in ``make test``) and by
``python -m tests.fuzz`` (``make fuzz``: longer, every phase until a time budget is spent).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.databases import free_port, migrated_database

ROOT = Path(__file__).resolve().parents[2]
ADMIN_SECRET = "sk_fuzz_bootstrap_admin_0123456789"
ROLES = ("admin", "operator", "warehouse", "integration")
HOOKS_MODULE = "tests.fuzz.hooks"
# Every check except positive_data_acceptance: it expects any schema-valid request to be
# accepted, but business rules (unknown SKU or store in a body, an expired cursor, a month
# outside the calendar) are 422 by contract and cannot be expressed in JSON Schema.
EXCLUDED_CHECKS = ("positive_data_acceptance",)


@dataclass
class Options:
    """How long and how hard one ``st run`` tries."""

    max_examples: int
    phases: str = "examples,coverage,fuzzing,stateful"
    seed: int | None = None
    max_time: int | None = None
    extra: list[str] = field(default_factory=list)


@contextmanager
def fuzz_database(server_url: str) -> Iterator[str]:
    """A fresh database of its own (the run writes junk), migrated to head; dropped after."""
    with migrated_database(server_url, "storeops_fuzz") as url:
        yield url


@dataclass
class Server:
    """A uvicorn process serving the app."""

    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]


@contextmanager
def serve(database_url: str, workdir: Path) -> Iterator[Server]:
    """Serve the app with uvicorn on a free local port; its JSON log goes to a file."""
    port = free_port()
    log_path = workdir / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STOREOPS_ADMIN_KEY": ADMIN_SECRET,
        "STOREOPS_SWEEP_ENABLED": "false",
        "STOREOPS_ACCESS_LOG": "false",
        "STOREOPS_LOG_LEVEL": "WARNING",
        # A revoked key is refused at once, as the run expects.
        "STOREOPS_AUTH_CACHE_SECONDS": "0",
        # Webhooks the run creates may only name this machine: the served app never POSTs
        # to a host the fuzzer made up.
        "STOREOPS_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "app.main:app"),
                *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process, log_path)
        yield Server(base_url, log_path, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready in 60 s")


@dataclass
class Seed:
    """What the run is pointed at: seeded ids per parameter name and a key per role."""

    ids: dict[str, list[str]]
    keys: dict[str, str]
    protected_key_ids: list[str]
    sacrificial_key_ids: list[str]


def _ok(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def _order(store_id: str, external_id: str, sku_code: str, **extra: Any) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "external_id": external_id,
        "placed_at": "2026-11-11T10:00:00+08:00",
        "paid_at": "2026-11-11T10:01:00+08:00",
        "buyer": {
            "name": "张三",
            "phone": "13800138000",
            "province": "浙江省",
            "city": "杭州市",
            "address": "西湖区文三路 1 号",
        },
        "items": [{"sku_code": sku_code, "quantity": 1, "unit_price": "129.90"}],
        **extra,
    }


def seed(base_url: str) -> Seed:
    """Stores, SKUs with stock, orders in several states, a stocktake, tickets (open and
    resolved), promotions (one a coupon), and a key per role."""
    headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as c:
        # The schema's examples name store "1" and SKU code TEA-500G: make them real.
        home = _ok(
            c.post("/v1/stores", json={"code": "FUZZ-1", "name": "西湖茶庄", "platform": "pdd"})
        )
        other = _ok(c.post("/v1/stores", json={"code": "FUZZ-2", "name": "外店", "platform": "jd"}))
        skus = []
        for code in ("TEA-500G", "TEA-250G", "CUP-01"):
            sku = _ok(
                c.post(
                    "/v1/skus",
                    json={
                        "store_id": home["id"],
                        "sku_code": code,
                        "title": code,
                        "price": "129.90",
                    },
                )
            )
            _ok(
                c.post(
                    "/v1/stock-movements",
                    json={"sku_id": sku["id"], "kind": "receive", "quantity": 500},
                )
            )
            skus.append(sku)
        other_sku = _ok(
            c.post(
                "/v1/skus",
                json={"store_id": other["id"], "sku_code": "X-1", "title": "x", "price": "1.00"},
            )
        )
        orders = [
            _ok(c.post("/v1/orders", json=_order(home["id"], f"FZ-{n}", "TEA-500G")))
            for n in range(6)
        ]
        unpaid = _order(home["id"], "FZ-unpaid", "TEA-250G")
        del unpaid["paid_at"]
        orders.append(_ok(c.post("/v1/orders", json=unpaid)))
        _ok(
            c.post(
                f"/v1/orders/{orders[0]['id']}/ship",
                json={"carrier": "SF", "tracking_number": "SF1234567890123"},
            ),
            200,
        )
        _ok(c.post(f"/v1/orders/{orders[1]['id']}/hold", json={"reason": "fuzz"}), 200)
        _ok(c.post(f"/v1/orders/{orders[2]['id']}/cancel", json={"reason": "fuzz"}), 200)
        stocktake = _ok(
            c.post(
                "/v1/stocktakes",
                json={"store_id": home["id"], "lines": [{"sku_id": skus[2]["id"], "counted": 490}]},
            )
        )
        tickets = [
            _ok(
                c.post(
                    "/v1/tickets",
                    json={
                        "store_id": home["id"],
                        "order_id": orders[n]["id"],
                        "type": kind,
                        "subject": "售后",
                        "body": "fuzz",
                        "external_id": f"AS-FZ-{n}",
                    },
                )
            )
            for n, kind in ((0, "return_refund"), (3, "refund"), (4, "shipping_chase"))
        ]
        _ok(c.post(f"/v1/tickets/{tickets[2]['id']}/resolve", json={"outcome": "answered"}), 200)
        window = {"starts_at": "2026-01-01T00:00:00+08:00", "ends_at": "2030-01-01T00:00:00+08:00"}
        promotions = [
            _ok(
                c.post(
                    "/v1/promotions",
                    json={
                        "store_id": home["id"],
                        "name": "fuzz 满减",
                        "kind": "threshold_off",
                        "rules": {"tiers": [{"min_spend": "200.00", "off": "20.00"}]},
                        **window,
                    },
                )
            ),
            _ok(
                c.post(
                    "/v1/promotions",
                    json={
                        "store_id": home["id"],
                        "name": "fuzz coupon",
                        "kind": "coupon",
                        "code": "SAVE10",
                        "rules": {"amount": "10.00", "min_spend": "100.00"},
                        "usage_limit": 1000,
                        **window,
                    },
                )
            ),
        ]
        # Reports (GET /v1/reports/*): the examples' day and month have traffic and a target.
        home_id = home["id"]
        traffic = {"visitors": 1200, "ad_spend": "300.00"}
        _ok(c.put(f"/v1/stores/{home_id}/traffic/2026-11-11", json=traffic), 200)
        target = {"sales_target": "90000.00"}
        _ok(c.put(f"/v1/stores/{home_id}/targets/2026-11", json=target), 200)
        # Marketplace sync: a platform order kept for review (unknown seller code).
        pdd_order = {
            "order_sn": "FZ-PDD-1",
            "order_status": 1,
            "created_time": "2026-11-11 10:00:00",
            "pay_time": "2026-11-11 10:01:00",
            "pay_amount": 1,
            "item_list": [{"outer_id": "NO-SUCH-SKU", "goods_count": 1, "goods_price": 1}],
        }
        queued = _ok(
            c.post(
                f"/v1/marketplace/pdd/orders?store_id={home['id']}", json={"orders": [pdd_order]}
            ),
            200,
        )["results"][0]
        keys: dict[str, str] = {"admin": ADMIN_SECRET}
        key_ids: list[str] = []
        for role in ROLES[1:]:
            created = _ok(
                c.post(
                    "/v1/api-keys",
                    json={"name": f"fuzz {role}", "role": role, "store_ids": [home["id"]]},
                )
            )
            keys[role] = created["secret"]
            key_ids.append(created["id"])
        admin_key_ids = [k["id"] for k in _ok(c.get("/v1/api-keys"), 200)["items"]]
        sacrificial = [
            _ok(c.post("/v1/api-keys", json={"name": "fuzz spare", "role": "warehouse"}))["id"]
            for _ in range(2)
        ]
        # Webhooks to a closed local port: deliveries fail fast and stay on this machine.
        hook_url = f"http://127.0.0.1:{free_port()}/fuzz-hooks"
        webhooks = [
            _ok(
                c.post(
                    "/v1/webhooks",
                    json={
                        "url": hook_url,
                        "events": ["order.created", "order.shipped"],
                        "secret": "whsec_fuzz_0123456789",
                        "store_ids": store_ids,
                    },
                )
            )["id"]
            for store_ids in ([home["id"]], None, [home["id"]])
        ]
    return Seed(
        ids={
            "store_id": [home["id"], other["id"]],
            "sku_id": [s["id"] for s in skus] + [other_sku["id"]],
            "order_id": [o["id"] for o in orders],
            "stocktake_id": [stocktake["id"]],
            "ticket_id": [t["id"] for t in tickets],
            "promotion_id": [p["id"] for p in promotions],
            "key_id": sacrificial,
            "webhook_id": webhooks[:2],
            # Not a parameter: the hooks delete this one when a run deletes a seeded webhook.
            "_spare_webhook_id": webhooks[2:],
            "month": ["2026-11"],
            "sku_code": ["TEA-500G", "TEA-250G", "CUP-01"],
            "entry_id": [queued["id"]],
            "external_id": [o["external_id"] for o in orders],
        },
        keys=keys,
        protected_key_ids=sorted(set(admin_key_ids + key_ids)),
        sacrificial_key_ids=sacrificial,
    )


@dataclass
class Result:
    """One ``st run``: its exit code, its output, and the known failures it recorded."""

    role: str
    returncode: int
    output: str
    known: list[dict[str, Any]]
    seconds: float


def run_schemathesis(server: Server, seeded: Seed, role: str, options: Options) -> Result:
    """``st run`` against the served OpenAPI with ``role``'s key."""
    workdir = server.log_path.parent
    known_log = workdir / f"known-{role}.jsonl"
    known_log.unlink(missing_ok=True)
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{server.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {seeded.keys[role]}",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--phases",
        options.phases,
        "--max-examples",
        str(options.max_examples),
        # One worker: CPython 3.11's ast.parse (called by hypothesis) is not thread-safe.
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--output-truncate",
        "true",
        "--no-color",
        *options.extra,
    ]
    if options.seed is not None:
        command += ["--seed", str(options.seed)]
    if options.max_time is not None:
        command += ["--max-time", str(options.max_time)]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": HOOKS_MODULE,
        "PYTHONPATH": str(ROOT),
        "STOREOPS_FUZZ_IDS": json.dumps(seeded.ids),
        "STOREOPS_FUZZ_PROTECTED_KEYS": json.dumps(seeded.protected_key_ids),
        "STOREOPS_FUZZ_SACRIFICIAL_KEYS": json.dumps(seeded.sacrificial_key_ids),
        "STOREOPS_FUZZ_SERVER_LOG": str(server.log_path),
        "STOREOPS_FUZZ_KNOWN_LOG": str(known_log),
        "COLUMNS": "120",
    }
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    known = []
    if known_log.exists():
        known = [json.loads(line) for line in known_log.read_text().splitlines() if line]
    return Result(
        role=role,
        returncode=done.returncode,
        output=done.stdout + done.stderr,
        known=known,
        seconds=time.monotonic() - started,
    )
