"""One translation of database failures, whichever path raised them.

Statements run through SQLAlchemy raise :class:`sqlalchemy.exc.DBAPIError` (wrapping the
driver's error); statements run on the raw asyncpg connection (:func:`app.db.driver`)
raise ``asyncpg.exceptions.*``; a server that is down raises ``OSError`` before either
driver gets a connection. :func:`classify` reads any of them as one :class:`DbFailure`,
and :func:`as_domain_error` turns it into the typed error the API reports. The request
retry (:mod:`app.routing`), the bulk services (an item that fails alone) and the error
handlers (:mod:`app.errors`) all use these, so the two paths cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import asyncpg
from sqlalchemy import exc as sa_exc

from app.domain.errors import Conflict, DomainError, RuleViolation, Unavailable

# Raised by the deferred constraint trigger when stock taken at COMMIT is gone (migration
# 0005; reservations.STOCK_GONE_AT_COMMIT).
STOCK_GONE_AT_COMMIT = "SO001"
# The server went away or refused us: shutdown, crash, too many clients, starting up,
# a session ended by idle_in_transaction_session_timeout or idle_session_timeout.
_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "57P05", "53300", "25P03"})
_QUERY_CANCELED = "57014"


class Kind(StrEnum):
    """What a database failure means for the request that met it."""

    RETRY = "retry"
    """Serialization failure or deadlock: run the request again."""
    STOCK_GONE = "stock_gone"
    """Stock taken at commit was gone (also retried; final answer 409)."""
    INVALID_VALUE = "invalid_value"
    """SQLSTATE class 22: a value PostgreSQL cannot hold (NUL, overflow, too long)."""
    UNIQUE = "unique"
    CHECK = "check"
    FOREIGN_KEY = "foreign_key"
    NOT_NULL = "not_null"
    """A required column left empty: a bug, not the request's fault (500)."""
    UNAVAILABLE = "unavailable"
    """No connection, or the connection was lost."""
    TIMEOUT = "timeout"
    """The statement ran past ``statement_timeout`` (or was cancelled)."""


@dataclass(frozen=True, slots=True)
class DbFailure:
    """A database failure read from either driver path."""

    kind: Kind
    sqlstate: str | None = None
    constraint: str | None = None

    @property
    def retryable(self) -> bool:
        """Nothing was committed and a fresh transaction may well succeed."""
        return self.kind in (Kind.RETRY, Kind.STOCK_GONE)

    @property
    def item_error(self) -> bool:
        """Caused by one item's values (a bulk request can fail that item alone)."""
        return self.kind in (Kind.INVALID_VALUE, Kind.UNIQUE, Kind.CHECK)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, what it wraps (``orig``) and its causes, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return seen


def _by_sqlstate(sqlstate: str) -> Kind | None:
    if sqlstate in ("40P01", "40001"):
        return Kind.RETRY
    if sqlstate == STOCK_GONE_AT_COMMIT:
        return Kind.STOCK_GONE
    if sqlstate.startswith("22"):
        return Kind.INVALID_VALUE
    if sqlstate == "23505":
        return Kind.UNIQUE
    if sqlstate == "23514":
        return Kind.CHECK
    if sqlstate == "23503":
        return Kind.FOREIGN_KEY
    if sqlstate == "23502":
        return Kind.NOT_NULL
    if sqlstate.startswith("08") or sqlstate in _UNAVAILABLE:
        return Kind.UNAVAILABLE
    if sqlstate == _QUERY_CANCELED:
        return Kind.TIMEOUT
    return None


def classify(exc: BaseException) -> DbFailure | None:
    """What a database failure means, from either driver path; None if it is not one."""
    chain = _chain(exc)
    for err in chain:
        sqlstate = getattr(err, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            kind = _by_sqlstate(sqlstate)
            if kind is not None:
                # SQLAlchemy's wrapper keeps the SQLSTATE; the constraint is on asyncpg's error.
                constraint = next(
                    (
                        c.constraint_name
                        for c in chain
                        if isinstance(c, asyncpg.PostgresError) and c.constraint_name
                    ),
                    None,
                )
                return DbFailure(kind, sqlstate, constraint)
    for err in chain:
        if isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated:
            return DbFailure(Kind.UNAVAILABLE)
        if isinstance(err, asyncpg.InterfaceError) and "closed" in str(err):
            return DbFailure(Kind.UNAVAILABLE)
        if isinstance(err, asyncpg.exceptions.ConnectionDoesNotExistError):
            return DbFailure(Kind.UNAVAILABLE)
        # Pool exhausted past pool_timeout; connect refused or timed out; socket gone.
        if isinstance(err, sa_exc.TimeoutError | OSError):
            return DbFailure(Kind.UNAVAILABLE)
    return None


# Unique and check constraints whose violation has a business meaning: the same codes the
# services answer when they find the clash themselves (a concurrent request can get past
# their check and meet the constraint instead).
_CONSTRAINT_ERRORS: dict[str, tuple[str, str]] = {
    "uq_skus_store_id_sku_code": ("duplicate_sku", "The SKU code already exists in the store."),
    "stores_code_key": ("duplicate_store_code", "The store code is taken."),
    "uq_orders_external_id_store_id": (
        "duplicate_order",
        "The order already exists in the store.",
    ),
    "uq_orders_store_id_tracking_number": (
        "duplicate_tracking",
        "The tracking number is on another order.",
    ),
    "ck_stock_levels_reserved_within_on_hand": (
        "insufficient_stock",
        "Not enough stock for the change.",
    ),
}


def as_domain_error(failure: DbFailure) -> DomainError | None:
    """The typed error the API reports for ``failure``; None for an unexpected one (500)."""
    kind = failure.kind
    if kind is Kind.INVALID_VALUE:
        return RuleViolation(
            "invalid_value",
            "A value in the request cannot be stored (out of range, or an invalid character).",
            errors=[{"loc": ["body"], "msg": "value cannot be stored", "type": "invalid_value"}],
        )
    if kind is Kind.STOCK_GONE:
        return Conflict("insufficient_stock", "The stock ran out while the request was committing.")
    if kind in (Kind.UNIQUE, Kind.CHECK):
        known = _CONSTRAINT_ERRORS.get(failure.constraint or "")
        if known is not None:
            return Conflict(*known)
        if kind is Kind.UNIQUE:
            return Conflict("conflict", "The request clashes with an existing resource.")
        return RuleViolation(
            "invalid_value",
            "A value in the request breaks a database constraint.",
            errors=[{"loc": ["body"], "msg": "value not allowed", "type": "invalid_value"}],
        )
    if kind is Kind.FOREIGN_KEY:
        return Conflict("conflict", "The request refers to, or removes, a resource in use.")
    if kind is Kind.RETRY:
        return Conflict("conflict", "The request collided with a concurrent one; retry.")
    if kind is Kind.UNAVAILABLE:
        return Unavailable("database_unavailable", "The database cannot be reached; retry.")
    if kind is Kind.TIMEOUT:
        return Unavailable("database_timeout", "The database did not answer in time; retry later.")
    return None


def translate(exc: BaseException) -> DomainError | None:
    """The typed error for a database failure from either path; None if not one we know."""
    failure = classify(exc)
    return None if failure is None else as_domain_error(failure)


def item_error(exc: BaseException) -> DomainError | None:
    """The typed error if ``exc`` is a database failure caused by one item's values.

    Bulk services use it to fail that item alone; anything else (a lost connection, a bug)
    still fails the request.
    """
    failure = classify(exc)
    if failure is None or not failure.item_error:
        return None
    return as_domain_error(failure)
