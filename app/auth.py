"""Bearer API keys → a typed :class:`Principal`, with role and store-scope checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.domain.errors import Forbidden, NotFound, Unauthorized
from app.models import ApiKey


class Role(StrEnum):
    """What a key may do (API.md, Conventions → Auth)."""

    ADMIN = "admin"
    OPERATOR = "operator"
    WAREHOUSE = "warehouse"
    INTEGRATION = "integration"


ALL_ROLES = frozenset(Role)
SECRET_PREFIX = "sk_"
_keys = ApiKey.__table__  # type: ignore[attr-defined]
# Verified keys, briefly: saves a query per request on hot paths. A revocation is seen at
# once by the process that made it and within ``auth_cache_seconds`` by other replicas.
_cache: dict[str, tuple[float, Principal]] = {}
_CACHE_MAX = 10_000


def hash_secret(secret: str) -> str:
    """Keys are long random tokens, so a fast unsalted SHA-256 is enough to look them up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A fresh high-entropy secret."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    key_id: int
    name: str
    role: Role
    store_ids: frozenset[int] | None

    @property
    def all_stores(self) -> bool:
        """Whether the key is scoped to every store."""
        return self.store_ids is None

    def sees_store(self, store_id: int) -> bool:
        """Whether ``store_id`` is inside the key's scope."""
        return self.store_ids is None or store_id in self.store_ids

    def check_store(self, store_id: int, kind: str = "store", ident: object = None) -> None:
        """Out-of-scope resources are reported as missing (their existence is not revealed)."""
        if not self.sees_store(store_id):
            raise NotFound(
                f"{kind}_not_found", f"{kind.capitalize()} {ident or store_id} not found."
            )

    def scope_filter(self, column: Any) -> Any:
        """A SQL condition limiting ``column`` (a store id) to the key's scope."""
        if self.store_ids is None:
            return sa.true()
        return column.in_(sorted(self.store_ids))

    def scoped_store_ids(self, requested: int | None) -> list[int] | None:
        """Store ids a list query may read: the requested one (if visible) or the whole scope."""
        if requested is not None:
            self.check_store(requested)
            return [requested]
        return None if self.store_ids is None else sorted(self.store_ids)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing_credentials", "Send 'Authorization: Bearer <api key>'.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("invalid_credentials", "Use the Bearer scheme with an API key.")
    return token


async def authenticate(
    request: Request, session: Annotated[AsyncSession, Depends(get_session)]
) -> Principal:
    """Resolve the bearer key of the request; 401 if missing, unknown or revoked."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = _bearer(request)
    digest = hash_secret(token)
    ttl: float = request.app.state.settings.auth_cache_seconds
    hit = _cache.get(digest)
    if hit is not None and hit[0] > time.monotonic():
        request.state.principal = hit[1]
        return hit[1]
    row = (
        await session.execute(
            sa.select(
                _keys.c.id, _keys.c.name, _keys.c.role, _keys.c.store_ids, _keys.c.secret_hash
            ).where(_keys.c.secret_hash == digest, _keys.c.revoked_at.is_(None))
        )
    ).one_or_none()
    # Keys are found by the SHA-256 of the secret, so lookup timing can tell at most a prefix
    # of a hash, never of a secret; the comparison that accepts the key is constant-time.
    if row is None or not hmac.compare_digest(row.secret_hash, digest):
        raise Unauthorized("invalid_credentials", "The API key is unknown or revoked.")
    principal = Principal(
        key_id=row.id,
        name=row.name,
        role=Role(row.role),
        store_ids=None if row.store_ids is None else frozenset(row.store_ids),
    )
    request.state.principal = principal
    if ttl > 0:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[digest] = (time.monotonic() + ttl, principal)
    return principal


def forget_cached_keys() -> None:
    """Drop cached keys (after a revocation, so this process refuses the key at once)."""
    _cache.clear()


def require(*roles: Role) -> Callable[..., Any]:
    """Dependency: authenticate, then 403 unless the key has one of ``roles``."""
    allowed = frozenset(roles)

    async def dependency(
        principal: Annotated[Principal, Depends(authenticate)],
    ) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(
                "forbidden_role",
                f"Role '{principal.role}' may not do this; allowed: {', '.join(sorted(allowed))}.",
            )
        return principal

    return dependency


ANY_ROLE = (Role.ADMIN, Role.OPERATOR, Role.WAREHOUSE, Role.INTEGRATION)

Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
AnyRole = Annotated[Principal, Depends(require(*ANY_ROLE))]
"""Any authenticated key."""
Staff = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR))]
"""Admin or operator (internal web frontend)."""
