"""Shared router pieces: session and If-Match dependencies, documented problem responses.

Problems that whole kinds of operations can answer (bad credentials, a malformed body, a
reused ``Idempotency-Key``, a malformed ``If-Match``) are not repeated in every route's
``responses=``: :func:`document_common_problems` adds them to the OpenAPI document of each
operation they apply to. To document a status for every operation, add it to
``ALL_OPERATIONS`` (for example ``503: ("database_unavailable",)``); for every operation
that takes a request body, to ``WITH_BODY`` (for example ``413: ("payload_too_large",)``).
"""

from __future__ import annotations

import re
from datetime import date
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from pydantic import BeforeValidator
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.domain.clock import Clock
from app.domain.errors import RuleViolation, not_found
from app.domain.types import Instant, parse_id
from app.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, status_title

Session = Annotated[AsyncSession, Depends(get_session)]


async def get_clock(request: Request) -> Clock:
    """The application's clock (``app.state.clock``; tests put a fixed one there)."""
    clock: Clock = request.app.state.clock
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]

_VERSION_RE = re.compile(r'^\s*(?:W/)?"?([0-9]{1,9})"?\s*$')


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            description="Current `version` of the resource; a stale one is 412. The `ETag` of "
            'its GET (`"3"`) or the bare number (`3`); a weak `W/"3"` counts too (a proxy that '
            "compresses responses weakens ETags).",
            examples=['"3"'],
            # Documented only: a malformed value is answered below as `invalid_if_match`.
            json_schema_extra={"pattern": r'^\s*(W/)?"?[0-9]{1,9}"?\s*$'},
        ),
    ] = None,
) -> int | None:
    if if_match is None:
        return None
    match = _VERSION_RE.match(if_match)
    if not match:
        raise RuleViolation(
            "invalid_if_match",
            "If-Match must be the resource's integer version.",
            errors=[{"loc": ["header", "If-Match"], "msg": "not a version", "type": "invalid"}],
        )
    return int(match.group(1))


def path_id(raw: str, kind: str) -> int:
    """A path id; one that cannot exist is simply not found."""
    try:
        return parse_id(raw)
    except ValueError:
        raise not_found(kind, raw) from None


IfMatch = Annotated[int | None, Depends(_if_match)]

_ISO_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ISO_DATETIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _iso_date_text(value: Any) -> Any:
    # pydantic reads a bare number as a Unix timestamp ("0" is 1970-01-01): not a date here.
    if isinstance(value, str) and not _ISO_DATE_RE.match(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


def _iso_datetime_text(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATETIME_RE.match(value):
        raise ValueError("must be an ISO 8601 date-time with an offset")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
"""A path or query date, ``YYYY-MM-DD`` only."""
IsoInstant = Annotated[Instant, BeforeValidator(_iso_datetime_text)]
"""A path or query instant, ISO 8601 with an offset only (never a Unix timestamp)."""

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe key: a replay returns the first response (≥ 24 h).",
        max_length=255,
        # Documented only: routing refuses other keys first, as `invalid_idempotency_key`.
        json_schema_extra={"pattern": "^[ -~]{1,255}$"},
    ),
]

_TITLES = {
    400: ("bad_request", "Bad Request"),
    401: ("invalid_credentials", "Unauthorized"),
    403: ("forbidden_role", "Forbidden"),
    404: ("not_found", "Not found"),
    409: ("conflict", "Conflict"),
    412: ("version_mismatch", "Precondition failed"),
    422: ("validation_error", "Unprocessable content"),
    503: ("database_unavailable", "Service unavailable"),
}

UNAVAILABLE_DESCRIPTION = (
    "Service unavailable: the database cannot be reached (`database_unavailable`) or did "
    "not answer in time (`database_timeout`). Retry after `Retry-After` seconds."
)


def unavailable_response() -> dict[str, Any]:
    """The ``503`` every operation can answer while the database is down."""
    response = problems(503)[503]
    response["description"] = UNAVAILABLE_DESCRIPTION
    response["headers"] = {
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
    }
    return response


def problems(
    *statuses: int, codes: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for problem+json errors, with an example each."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, _ = _TITLES.get(status) or _default_title(status)
        title = status_title(status)  # one title per status, as every problem is rendered
        if codes and status in codes:
            code = codes[status]
        example: dict[str, Any] = {
            "type": PROBLEM_BASE + code,
            "title": title,
            "status": status,
            "detail": f"Explains the {code.replace('_', ' ')} problem.",
            "code": code,
        }
        if status == 422:
            example["errors"] = [
                {"loc": ["body", "field"], "msg": "explanation", "type": "value_error"}
            ]
        out[status] = {
            "description": title if not codes or status not in codes else f"{title} (`{code}`)",
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": example,
                }
            },
        }
    return out


def _default_title(status: int) -> tuple[str, str]:
    phrase = HTTPStatus(status).phrase
    return phrase.lower().replace(" ", "_").replace("-", "_"), phrase


# Statuses (→ the problem codes they carry) that every operation of a kind can answer,
# whatever its handler does. document_common_problems adds them to the OpenAPI document.
CommonProblems = dict[int, tuple[str, ...]]
ALL_OPERATIONS: CommonProblems = {}
"""Every operation."""
AUTHENTICATED: CommonProblems = {401: ("missing_credentials", "invalid_credentials")}
"""Every ``/v1`` operation (all take a bearer key)."""
WITH_PARAMETERS: CommonProblems = {422: ("validation_error",)}
"""Every operation with a path, query or header parameter."""
WITH_BODY: CommonProblems = {400: ("bad_request",), 422: ("validation_error", "malformed_json")}
"""Every operation that takes a request body (400: the body cannot be decoded)."""
WITH_IDEMPOTENCY_KEY: CommonProblems = {
    409: ("idempotency_key_reused",),
    422: ("invalid_idempotency_key",),
}
"""Every operation that accepts an ``Idempotency-Key`` header."""
WITH_IF_MATCH: CommonProblems = {412: ("version_mismatch",), 422: ("invalid_if_match",)}
"""Every operation that accepts an ``If-Match`` header."""


def _common_statuses(path: str, operation: dict[str, Any]) -> dict[int, list[str]]:
    """The statuses (with their codes) that ``operation`` answers beyond its own."""
    headers = {
        p["name"].lower() for p in operation.get("parameters", []) if p.get("in") == "header"
    }
    kinds = [ALL_OPERATIONS]
    if path.startswith("/v1/"):
        kinds.append(AUTHENTICATED)
    if operation.get("parameters"):
        kinds.append(WITH_PARAMETERS)
    if "requestBody" in operation:
        kinds.append(WITH_BODY)
    if "idempotency-key" in headers:
        kinds.append(WITH_IDEMPOTENCY_KEY)
    if "if-match" in headers:
        kinds.append(WITH_IF_MATCH)
    out: dict[int, list[str]] = {}
    for kind in kinds:
        for status, kind_codes in kind.items():
            codes = out.setdefault(status, [])
            codes.extend(code for code in kind_codes if code not in codes)
    return out


def _is_fastapi_default_422(response: dict[str, Any]) -> bool:
    # FastAPI documents 422 as its own JSON body (HTTPValidationError); ours is a problem.
    return "application/json" in response.get("content", {})


def document_common_problems(schema: dict[str, Any]) -> None:
    """Add the problems each operation can answer by its kind to the OpenAPI ``schema``.

    A status the route documents itself keeps its description and example; the codes the
    kind adds are named in it.
    """
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            for status, codes in sorted(_common_statuses(path, operation).items()):
                existing = responses.get(str(status))
                if existing is None or (status == 422 and _is_fastapi_default_422(existing)):
                    response = problems(status, codes={status: codes[0]})[status]
                    existing = responses[str(status)] = response
                missing = [c for c in codes if f"`{c}`" not in existing["description"]]
                if missing:
                    listed = ", ".join(f"`{c}`" for c in missing)
                    text: str = existing["description"]
                    existing["description"] = (
                        f"{text[:-1]}, {listed})" if text.endswith("`)") else f"{text} ({listed})"
                    )
            operation["responses"] = dict(sorted(responses.items()))


def document_parameters_without_null(schema: dict[str, Any]) -> None:
    """An optional header or query parameter is absent, never ``null``: document its type
    alone (FastAPI renders ``str | None`` as ``anyOf: [string, null]``)."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                param_schema: dict[str, Any] = parameter.get("schema", {})
                variants = param_schema.get("anyOf")
                if not variants or {"type": "null"} not in variants:
                    continue
                rest = [v for v in variants if v != {"type": "null"}]
                if len(rest) == 1:
                    del param_schema["anyOf"]
                    param_schema.update(rest[0])
