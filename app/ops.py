"""Probes, Prometheus metrics, request ids and access logs, and offline API docs."""

from __future__ import annotations

import logging
import re
import time
import uuid
from importlib import resources
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_body, problem_response

logger = logging.getLogger("storeops.access")

REQUESTS = Counter(
    "storeops_http_requests_total", "HTTP requests by route", ["method", "route", "status"]
)
LATENCY = Histogram(
    "storeops_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

router = APIRouter(include_in_schema=False)

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""A client's ``X-Request-ID`` is kept only if it matches this (else a new one is made)."""


# Labelled children by label values: ``labels()`` validates and locks on every call.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _metrics(method: str, template: str, status: int, elapsed: float) -> None:
    key = (method, template, status)
    children = _children.get(key)
    if children is None:
        children = (
            REQUESTS.labels(method, template, str(status)),
            LATENCY.labels(method, template),
        )
        _children[key] = children
    children[0].inc()
    children[1].observe(elapsed)


class RequestContextMiddleware:
    """Request id (``X-Request-ID``), per-route metrics and one access-log line per request."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
        # Echoed in headers, bodies and logs: anything but a plain token gets a fresh id.
        request_id = incoming if REQUEST_ID_RE.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append(
                    (b"x-request-id", request_id.encode("latin-1"))
                )
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            _metrics(method, template, status, elapsed)
            if self.access_log:
                logger.info(
                    "http.request method=%s route=%s status=%s ms=%.1f request_id=%s",
                    method,
                    template,
                    status,
                    elapsed * 1000,
                    request_id,
                )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Readiness: the database answers and its schema is at the migrations' head."""
    head: str = request.app.state.migration_head
    try:
        async with request.app.state.engine.connect() as conn:
            current = (
                await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except Exception as exc:  # any failure to reach the database means not ready
        logger.warning("readyz.database_unreachable error=%s", type(exc).__name__)
        return problem_response(
            503, problem_body(503, "database_unavailable", "The database cannot be reached.")
        )
    if current != head:
        return problem_response(
            503,
            problem_body(
                503,
                "migrations_pending",
                f"Database schema is at {current}, the code expects {head}.",
            ),
        )
    return Response(
        content=b'{"status":"ready","migration":"' + head.encode() + b'"}',
        media_type="application/json",
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format (disable with ``STOREOPS_METRICS_ENABLED=false``)."""
    if not request.app.state.settings.metrics_enabled:
        return problem_response(404, problem_body(404, "not_found", "Metrics are disabled."))
    return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _asset(name: str) -> bytes:
    return resources.files("fastapi_swagger.resources").joinpath(name).read_bytes()


_ASSETS: dict[str, tuple[str, str]] = {
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "application/javascript"),
    "swagger-ui.css": ("swagger-ui.css", "text/css"),
    "favicon-32x32.png": ("favicon-32x32.png", "image/png"),
}


@router.get("/docs-assets/{name}")
async def docs_asset(name: str) -> Response:
    """Swagger UI files from the installed package: the docs need no internet access."""
    if name not in _ASSETS:
        return problem_response(404, problem_body(404, "not_found", "No such asset."))
    filename, media_type = _ASSETS[name]
    return Response(
        content=_asset(filename),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/docs")
async def docs(request: Request) -> Response:
    """Interactive API docs (Swagger UI served locally)."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title="StoreOps API",
        swagger_js_url="/docs-assets/swagger-ui-bundle.js",
        swagger_css_url="/docs-assets/swagger-ui.css",
        swagger_favicon_url="/docs-assets/favicon-32x32.png",
        swagger_ui_parameters={"persistAuthorization": True, "filter": True},
    )


def install_ops(app: FastAPI, *, access_log: bool) -> None:
    """Probes, metrics, docs and the request-context middleware."""
    app.include_router(router)
    app.add_middleware(RequestContextMiddleware, access_log=access_log)
