"""Every error leaves the service as RFC 9457 problem+json; a 500 is opaque and logged."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app import dberrors
from app.domain.errors import DomainError, ItemError

logger = logging.getLogger("storeops.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://storeops.dev/problems/"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


# One title per status everywhere (RFC 9110 reason phrases): whoever raised the error, the
# problem's ``title`` comes from its status only, so clients can rely on it.
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def status_title(status: int) -> str:
    """The problem ``title`` of ``status``."""
    return TITLES.get(status) or HTTPStatus(status).phrase


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem document as a dict; its ``title`` follows from ``status`` alone."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": status_title(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """Render a problem document (UTF-8, Chinese text unescaped)."""
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def domain_error_body(exc: DomainError) -> dict[str, Any]:
    """Problem document for a typed business error."""
    return problem_body(exc.status, exc.code, exc.detail, errors=exc.errors, extra=exc.extra)


# How long a client should wait before retrying a 503 (the database comes back by itself).
RETRY_AFTER_SECONDS = "1"


def render_domain_error(exc: DomainError) -> Response:
    """Response for a typed business error."""
    headers: dict[str, str] | None = None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif exc.status == 503:
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
    return problem_response(exc.status, domain_error_body(exc), headers)


def _clean_loc(loc: Any) -> list[str | int]:
    return [part for part in loc if isinstance(part, str | int)]


OFFSET_EXAMPLE = "2026-11-11T10:00:00+08:00"
# Errors of a time that lacks its offset, or is not a time: the message shows what to send.
_TIME_ERRORS = frozenset(
    {"timezone_aware", "datetime_parsing", "datetime_from_date_parsing", "datetime_type"}
)


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors reduced to ``{loc, msg, type}`` without echoing whole inputs back."""
    out: list[dict[str, Any]] = []
    for err in errors:
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err.get("type") in _TIME_ERRORS:
            msg = f"{msg}; send a time with its offset, like {OFFSET_EXAMPLE}"
        out.append({"loc": _clean_loc(err.get("loc", ())), "msg": msg, "type": err.get("type")})
    return out


def invalid_item_body(exc: ValidationError) -> dict[str, Any]:
    """Problem document of one invalid item of a bulk request (422)."""
    return problem_body(
        422,
        "validation_error",
        "The item has invalid fields; see errors.",
        errors=validation_errors(exc.errors()),
    )


def item_problem(error: ItemError) -> dict[str, Any]:
    """Problem document of one failed item of a bulk request."""
    if isinstance(error, DomainError):
        return domain_error_body(error)
    return invalid_item_body(error)


async def _on_domain_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return render_domain_error(exc)


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in raw):
        body = problem_body(
            422,
            "malformed_json",
            "The request body is not valid JSON.",
            errors=validation_errors(raw),
        )
    else:
        body = problem_body(
            422,
            "validation_error",
            "The request has invalid fields; see errors.",
            errors=validation_errors(raw),
        )
    return problem_response(422, body)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the application answers at the request's path. Where a
    literal path and a template both match (``/v1/orders/bulk`` and
    ``/v1/orders/{order_id}``), the literal one is the resource: the fewest parameters win."""
    matches: list[tuple[int, set[str]]] = []
    path = request.scope["path"]
    for route in iter_route_contexts(request.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            matches.append((str(getattr(route, "path", "")).count("{"), route.methods or set()))
    fewest = min((params for params, _ in matches), default=0)
    return sorted({m for params, methods in matches if params == fewest for m in methods})


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    if status == 404 and detail == "Not Found":
        detail = "No such resource or route."
    headers = dict(exc.headers) if exc.headers else None
    if status == 405:
        # Starlette's Allow names only the first route matching the path (GET /v1/stores),
        # not the others on it (POST /v1/stores): list every route's methods.
        allow = allowed_methods(request)
        headers = {**(headers or {}), "Allow": ", ".join(allow)}
        detail = f"{request.method} is not allowed here; allowed: {', '.join(allow)}."
    return problem_response(status, problem_body(status, code, detail), headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    request_id = getattr(request.state, "request_id", None)
    logger.error(
        "request.failed method=%s path=%s request_id=%s",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    body = problem_body(
        500,
        "internal_error",
        "An unexpected error occurred; it has been logged.",
        extra={"request_id": request_id} if request_id else None,
    )
    # Raised past the request middleware, so the id header is set here.
    return problem_response(500, body, {"X-Request-ID": request_id} if request_id else None)


async def _on_database_error(request: Request, exc: Exception) -> Response:
    # Either driver path, through the one translation: values PostgreSQL cannot hold are
    # 422, constraint clashes the services' own codes, a lost database 503. Anything else
    # is a 500.
    typed = dberrors.translate(exc)
    if typed is None:
        return await _on_unexpected(request, exc)
    if typed.status >= 500:
        logger.warning(
            "request.database_error code=%s sqlstate=%s path=%s error=%s",
            typed.code,
            getattr(dberrors.classify(exc), "sqlstate", None),
            request.url.path,
            type(exc).__name__,
        )
    return render_domain_error(typed)


# Everything either driver path raises: SQLAlchemy's wrapper and pool timeout, and asyncpg's
# own errors. An OSError (a server that refuses or drops connections) is translated by the
# request transaction (app.routing), not here: a handler for OSError would also catch a client
# that goes away in the middle of a streamed response.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure to a problem+json response."""
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for error_class in DATABASE_ERRORS:
        app.add_exception_handler(error_class, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
