"""Shared router pieces: session and If-Match dependencies, documented problem responses."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.domain.clock import Clock
from app.domain.errors import RuleViolation, not_found
from app.domain.types import parse_id
from app.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, status_title

Session = Annotated[AsyncSession, Depends(get_session)]


async def get_clock(request: Request) -> Clock:
    """The application's clock (``app.state.clock``; tests put a fixed one there)."""
    clock: Clock = request.app.state.clock
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]

_VERSION_RE = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            description="Current `version` of the resource; a stale one is 412. The `ETag` of "
            'its GET (`"3"`) or the bare number (`3`); a weak `W/"3"` counts too (a proxy that '
            "compresses responses weakens ETags).",
            examples=['"3"'],
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

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe key: a replay returns the first response (≥ 24 h).",
        max_length=255,
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
        code, _ = _TITLES[status]
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
