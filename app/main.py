"""The FastAPI application: lifespan (database, clock), error handlers, routers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app import bootstrap, collector
from app.config import Settings, get_settings
from app.cors import install_cors
from app.db import create_engine, create_sessionmaker
from app.domain.clock import Clock, SystemClock
from app.domain.inventory.hooks import on_allocation_change
from app.domain.order import allocation as order_allocation
from app.domain.webhook.thread import DeliveryProcess, DeliveryThread
from app.errors import install_error_handlers
from app.limits import BodyLimitMiddleware, document_payload_too_large
from app.logging import configure_logging
from app.ops import install_ops
from app.routers import (
    admin,
    api_keys,
    audit,
    dispatch_board,
    events,
    low_stock,
    marketplace,
    order_snapshots,
    orders,
    pick_list,
    promotions,
    replenishment,
    reports,
    skus,
    stock_levels,
    stock_movements,
    stocktakes,
    stores,
    tickets,
    webhooks,
)
from app.routers._common import (
    document_common_problems,
    document_parameters_without_null,
    unavailable_response,
)
from app.worker import Sweeper

DESCRIPTION = """
Back office for shops on Pinduoduo, Taobao/Tmall, JD and Douyin: stores, SKUs, stock,
orders, after-sales tickets and promotions.

* **Auth**: `Authorization: Bearer <api key>`. Roles `admin`, `operator`, `warehouse`,
  `integration`; keys are scoped to stores. Out-of-scope resources are `404`.
* **Errors**: RFC 9457 `application/problem+json` with a stable `code`. While the database
  is unreachable any operation answers `503` (`database_unavailable`) with `Retry-After`.
* **Statuses**: each operation
  lists every status it can answer with the codes it may carry, including those common to
  its kind: `401` on every operation, `400` (undecodable body) and `422` on every operation
  with a body, `409 idempotency_key_reused` and `422 invalid_idempotency_key` with an
  `Idempotency-Key`, `412 version_mismatch` and `422 invalid_if_match` with an `If-Match`.
* **Types**: integers and booleans in bodies are JSON integers and booleans (`"2"` or
  `true` for a quantity is `422`); dates and instants in paths and queries are ISO 8601
  (`2026-11-11`, `2026-11-11T10:00:00+08:00`), never Unix timestamps.
* **Money**: decimal strings with two places (`"129.90"`), yuan.
* **Time**: ISO 8601 with an offset; any offset is accepted. Instants of a store's resources
  and events are given in the store's `timezone` (`2026-11-11T10:00:00+08:00`); API keys and
  audit entries of no store in UTC.
* **Lists**: `limit` (≤ 500) and `cursor` → `{items, next_cursor}`.
* **Idempotency**: send `Idempotency-Key` on any write; a replay returns the first response
  with `Idempotent-Replayed: true`.

**Reference**: `docs/README.md` in the service's repository (conventions, every resource with
examples, the role × endpoint table generated from the code, every event type with its
payload, every error code).
"""

TAGS = [
    {"name": "stores", "description": "Stores, platform dispatch policies, targets, traffic."},
    {"name": "skus", "description": "The catalogue with stock summaries."},
    {"name": "orders", "description": "Intake, lifecycle, dispatch board, pick list."},
    {"name": "inventory", "description": "Stock ledger, stocktakes, ERP sync, reports."},
    {"name": "events", "description": "The durable event feed (transactional outbox)."},
    {"name": "webhooks", "description": "Events pushed to your URL, signed (admin)."},
    {"name": "api-keys", "description": "API keys (admin)."},
    {"name": "admin", "description": "Operations (admin)."},
]

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable code."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def _lifespan(settings: Settings, clock: Clock) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url, embedded = bootstrap.resolve_database(settings)
        try:
            if embedded is not None:
                # Zero-setup: an embedded server is ours to migrate.
                await asyncio.to_thread(bootstrap.migrate, url)
            engine = create_engine(url, settings)
            app.state.engine = engine
            app.state.sessionmaker = create_sessionmaker(engine)
            if settings.admin_key:
                async with app.state.sessionmaker() as session:
                    await bootstrap.ensure_admin_key(session, settings.admin_key)
            sweeper = Sweeper(
                engine,
                app.state.sessionmaker,
                clock,
                interval=settings.sweep_interval_seconds,
                ttl_hours=settings.idempotency_ttl_hours,
            )
            if settings.sweep_enabled:
                sweeper.start()
            # Webhooks are delivered by every API process (leases in PostgreSQL share the
            # work), from a child process of its own (or a thread) so that busy request
            # handling does not slow them.
            deliverer: DeliveryProcess | DeliveryThread = (
                DeliveryProcess(url, settings)
                if settings.webhook_worker_mode == "process"
                else DeliveryThread(url, settings)
            )
            if settings.webhook_worker_enabled:
                deliverer.start()
            # What start-up built lives as long as the process: out of later collections.
            collector.freeze_after_startup()
            try:
                yield
            finally:
                await deliverer.stop()
                await sweeper.stop()
                await engine.dispose()
        finally:
            if embedded is not None:
                embedded.stop()

    return lifespan


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the application."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    clock = clock or SystemClock()
    app = FastAPI(
        title="StoreOps API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(settings, clock),
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.migration_head = bootstrap.migration_head()
    # Orders follow their reservations (backorders filled, stocktake shortfalls).
    on_allocation_change(order_allocation.follow)
    install_error_handlers(app)
    # Inside the request-context middleware (added next, so outer): a 413 has a request id.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    install_ops(app, access_log=settings.access_log)
    # Added last, so outermost: preflights are answered before routing (PITFALLS.md), and
    # every answer from within (413s, request ids) carries the CORS headers.
    install_cors(app, settings.cors_origins)
    # Orders first: routes are matched in order, and intake is the hottest path.
    for module in (
        orders,
        dispatch_board,
        pick_list,
        stores,
        skus,
        stock_movements,
        stocktakes,
        stock_levels,
        low_stock,
        replenishment,
        tickets,
        promotions,
        reports,
        events,
        webhooks,
        api_keys,
        audit,
        admin,
        order_snapshots,
        marketplace,
    ):
        app.include_router(module.router)
    _add_problem_schema(app)
    return app


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def _add_problem_schema(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key"}
            }
            schema["security"] = [{"bearer": []}]
            # Any operation can meet a database outage: 503 is documented once, here.
            unavailable = unavailable_response()
            for path_item in schema.get("paths", {}).values():
                for method, operation in path_item.items():
                    if method in _HTTP_METHODS:
                        operation.setdefault("responses", {}).setdefault("503", unavailable)
            document_payload_too_large(schema)
            document_common_problems(schema)
            document_parameters_without_null(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
