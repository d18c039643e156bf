"""Typed business errors, each with a stable machine-readable ``code``.

Rendered as RFC 9457 problem details by :mod:`app.errors`; nothing below the routers
knows about HTTP beyond the status each class carries.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError


class DomainError(Exception):
    """Base of every error the API reports on purpose."""

    status: ClassVar[int] = 400

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors
        self.extra = extra or {}


class Unauthorized(DomainError):
    """No credentials, or credentials that match no live key."""

    status = 401


class Forbidden(DomainError):
    """Valid key, but its role or scope does not allow the action."""

    status = 403


class NotFound(DomainError):
    """Missing, or outside the key's store scope (existence is not revealed)."""

    status = 404


class Conflict(DomainError):
    """The request conflicts with the current state."""

    status = 409


class PreconditionFailed(DomainError):
    """``If-Match`` named a version that is no longer current."""

    status = 412


class RuleViolation(DomainError):
    """Well-formed input that breaks a business rule."""

    status = 422


class Unavailable(DomainError):
    """A dependency (the database) cannot serve the request now; retrying later may work."""

    status = 503


ItemError = DomainError | ValidationError
"""Why one item of a bulk request failed: a business error, or invalid fields."""


def item_status(error: ItemError) -> int:
    """An item error's status: the business error's own, 422 for invalid fields."""
    return 422 if isinstance(error, ValidationError) else error.status


def not_found(kind: str, ident: object) -> NotFound:
    """The standard ``<kind>_not_found`` error."""
    return NotFound(
        f"{kind}_not_found", f"{kind.replace('_', ' ').capitalize()} {ident} not found."
    )
