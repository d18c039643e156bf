"""No buyer phone, address, secret or SQL parameter in a log line, whoever logs it.

Exception messages are where request data slips into logs: PostgreSQL errors carry values
(``DETAIL: Key (code)=(…)``, ``Failing row contains (…)``, ``invalid input syntax … "…"``),
pydantic errors echo their input, a ``KeyError`` names the missing key. Starlette re-raises
every handled ``500`` to the server, so uvicorn logs the same exception again.

So every log record, from any library, is made by a record factory that replaces the
record's exception (and any exception among its arguments) with a stand-in chain: the same
tracebacks (frames and code lines), the exception types and the database error fields that
name no value (SQLSTATE, constraint, table, column), but no messages, except for the few
built-in types whose messages describe code rather than data. The factory also withholds
result rows that SQLAlchemy logs at DEBUG and the query string of uvicorn's access line (a
search by phone number). Parameters of logged statements are hidden by the engine
(``hide_parameters``).
"""

from __future__ import annotations

import logging
from typing import Any

# Their messages name code (attributes, types, modules), not data.
_MESSAGE_KEPT = (
    AttributeError,
    ImportError,
    NameError,
    NotImplementedError,
    RecursionError,
    TypeError,
    ZeroDivisionError,
)
# Fields of asyncpg errors (and SQLAlchemy's adapted ones) that name schema objects only.
_SAFE_FIELDS = ("sqlstate", "schema_name", "table_name", "column_name", "constraint_name")
_ROW_MESSAGES = frozenset({"Row %r", "Col %r"})


class WithheldError(Exception):
    """Stands in for a logged exception: its type and safe fields, not its message."""


def _describe(exc: BaseException) -> str:
    kind = type(exc)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(exc, _MESSAGE_KEPT):
        return f"{name}: {exc}"
    found: dict[str, str] = {}
    for source in (exc, getattr(exc, "orig", None)):
        for field in _SAFE_FIELDS:
            value = getattr(source, field, None)
            if isinstance(value, str):
                found.setdefault(field, value)
    statement = getattr(exc, "statement", None)
    if isinstance(statement, str):
        # SQLAlchemy's statement text: placeholders only (values are bound, never inlined).
        found["statement"] = " ".join(statement.split())[:300]
    parts = [f"{field}={value}" for field, value in found.items()] + ["message withheld"]
    return f"{name} ({'; '.join(parts)})"


def withheld(exc: BaseException) -> WithheldError:
    """A stand-in for ``exc`` and its causes: same tracebacks, no messages."""
    copies: dict[int, WithheldError] = {}

    def copy(original: BaseException) -> WithheldError:
        done = copies.get(id(original))
        if done is not None:
            return done
        stand_in = WithheldError(_describe(original)).with_traceback(original.__traceback__)
        copies[id(original)] = stand_in
        stand_in.__suppress_context__ = original.__suppress_context__
        if original.__cause__ is not None:
            stand_in.__cause__ = copy(original.__cause__)
        if original.__context__ is not None:
            stand_in.__context__ = copy(original.__context__)
        return stand_in

    return copy(exc)


def _without_query(path: Any) -> Any:
    return path.partition("?")[0] + "?…" if isinstance(path, str) and "?" in path else path


def _make_safe(record: logging.LogRecord) -> None:
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        if not isinstance(exc, WithheldError):
            stand_in = withheld(exc)
            record.exc_info = (WithheldError, stand_in, stand_in.__traceback__)
            record.exc_text = None
    if isinstance(record.args, tuple) and any(isinstance(a, BaseException) for a in record.args):
        # ``logger.warning("… error=%s", exc)`` would print the message too.
        record.args = tuple(
            _describe(a) if isinstance(a, BaseException) else a for a in record.args
        )
    if record.name.startswith("sqlalchemy.engine") and record.msg in _ROW_MESSAGES:
        record.args = ("(row withheld)",)
    elif record.name == "uvicorn.access" and isinstance(record.args, tuple):
        # (client, method, path with query, HTTP version, status)
        record.args = tuple(_without_query(a) if i == 2 else a for i, a in enumerate(record.args))


_installed = False


def install() -> None:
    """Make every log record of the process safe (idempotent)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def safe_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _make_safe(record)
        return record

    logging.setLogRecordFactory(safe_record)
    _installed = True
