"""Keyset (cursor) pagination: the cursor holds the sort key and id of the last row seen.

Keyset pages are stable under concurrent inserts: a row present when paging starts is
returned exactly once, whatever is inserted between pages.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field

from app.domain.errors import RuleViolation

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_TEXT_POSITION = 255


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page."
    )


LimitParam = Annotated[
    int,
    Query(ge=1, le=MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT}, max {MAX_LIMIT})."),
]
CursorParam = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]


def _is_key_value(value: Any) -> bool:
    """Cursor positions are bigint keys (ids, epoch microseconds)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def encode_cursor(kind: str, *values: Any) -> str:
    """Opaque cursor for a list ``kind`` positioned after ``values``."""
    return base64.urlsafe_b64encode(orjson.dumps([kind, *values])).decode().rstrip("=")


def _is_text_value(value: Any) -> bool:
    """A text position (a sort key such as a SKU code)."""
    # PostgreSQL text cannot hold NUL: such a cursor is invalid, not a database error.
    return isinstance(value, str) and len(value) <= MAX_TEXT_POSITION and "\x00" not in value


def decode_cursor(
    cursor: str, kind: str, arity: int, *, text_at: frozenset[int] = frozenset()
) -> list[Any]:
    """Values of a cursor made by :func:`encode_cursor`; 422 ``invalid_cursor`` otherwise.

    Values are bigint keys, except at the indexes in ``text_at``, which are short strings.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, orjson.JSONDecodeError):
        data = None
    if (
        not isinstance(data, list)
        or len(data) != arity + 1
        or data[0] != kind
        or not all(
            _is_text_value(v) if i in text_at else _is_key_value(v) for i, v in enumerate(data[1:])
        )
    ):
        raise RuleViolation(
            "invalid_cursor",
            "The cursor is malformed or belongs to another list.",
            errors=[
                {"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "invalid_cursor"}
            ],
        )
    return list(data[1:])


def page_of(items: list[T], limit: int, cursor_of: Any) -> Page[T]:
    """Trim the ``limit + 1`` rows fetched to a page, with the cursor of its last row."""
    if len(items) > limit:
        items = items[:limit]
        return Page(items=items, next_cursor=cursor_of(items[-1]))
    return Page(items=items, next_cursor=None)
