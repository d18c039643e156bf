"""API key orchestration."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal, Role, forget_cached_keys, hash_secret, new_secret
from app.domain import audit
from app.domain.api_key.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from app.domain.errors import Forbidden, RuleViolation, not_found
from app.models import ApiKey, Store

_keys = ApiKey.__table__  # type: ignore[attr-defined]
_stores = Store.__table__  # type: ignore[attr-defined]
BOOTSTRAP_NAME = "bootstrap admin (STOREOPS_ADMIN_KEY)"


def to_public(key: ApiKey) -> ApiKeyPublic:
    """The listed form of a key."""
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        role=Role(key.role),
        store_ids=None if key.store_ids is None else sorted(key.store_ids),
        secret_prefix=key.secret_prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


async def create(session: AsyncSession, principal: Principal, data: ApiKeyCreate) -> ApiKeyCreated:
    """Create a key within the creator's own scope; the secret is returned once."""
    store_ids = None if data.store_ids is None else sorted(set(data.store_ids))
    if store_ids is None and not principal.all_stores:
        raise Forbidden("forbidden_scope", "A store-scoped admin cannot create an all-stores key.")
    if store_ids is not None:
        if not store_ids:
            raise RuleViolation(
                "invalid_store_ids",
                "store_ids must name at least one store, or be null for all stores.",
                errors=[{"loc": ["body", "store_ids"], "msg": "empty list", "type": "invalid"}],
            )
        found = set(
            (
                await session.execute(sa.select(_stores.c.id).where(_stores.c.id.in_(store_ids)))
            ).scalars()
        )
        missing = [s for s in store_ids if s not in found or not principal.sees_store(s)]
        if missing:
            raise RuleViolation(
                "unknown_store",
                f"Unknown stores: {', '.join(map(str, missing))}.",
                errors=[{"loc": ["body", "store_ids"], "msg": "unknown store", "type": "invalid"}],
            )
    secret = new_secret()
    key_id = (
        await session.execute(
            sa.insert(_keys)
            .values(
                name=data.name,
                role=data.role.value,
                store_ids=store_ids,
                secret_hash=hash_secret(secret),
                secret_prefix=secret[:8],
                created_by=principal.key_id,
            )
            .returning(_keys.c.id)
        )
    ).scalar_one()
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="api_key.created",
        resource_type="api_key",
        resource_id=key_id,
        data={"name": data.name, "role": data.role.value, "store_ids": store_ids},
    )
    key = await session.get(ApiKey, key_id)
    assert key is not None
    return ApiKeyCreated(**to_public(key).model_dump(), secret=secret)


def _visible(principal: Principal, key: ApiKey) -> bool:
    """A scoped admin sees only keys wholly inside its own scope."""
    if principal.all_stores:
        return True
    return key.store_ids is not None and all(principal.sees_store(s) for s in key.store_ids)


async def list_page(
    session: AsyncSession,
    principal: Principal,
    *,
    after_id: int | None,
    limit: int,
    include_revoked: bool,
) -> list[ApiKey]:
    """Keys by id, ``limit + 1`` rows after ``after_id``."""
    stmt = sa.select(ApiKey).order_by(_keys.c.id)
    if after_id is not None:
        stmt = stmt.where(_keys.c.id > after_id)
    if not include_revoked:
        stmt = stmt.where(_keys.c.revoked_at.is_(None))
    if not principal.all_stores:
        assert principal.store_ids is not None
        stmt = stmt.where(
            ApiKey.store_ids.is_not(None),  # type: ignore[union-attr]
            ApiKey.store_ids.contained_by(sorted(principal.store_ids)),  # type: ignore[union-attr]
        )
    return list((await session.execute(stmt.limit(limit + 1))).scalars())


async def revoke(session: AsyncSession, principal: Principal, key_id: int) -> None:
    """Revoke a key now; later requests with it are 401."""
    key = await session.get(ApiKey, key_id, with_for_update=True)
    if key is None or key.revoked_at is not None or not _visible(principal, key):
        raise not_found("api_key", key_id)
    await session.execute(
        sa.update(_keys).where(_keys.c.id == key_id).values(revoked_at=sa.func.now())
    )
    forget_cached_keys()
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="api_key.revoked",
        resource_type="api_key",
        resource_id=key_id,
    )


async def ensure_bootstrap_admin(session: AsyncSession, secret: str) -> None:
    """Make sure an all-stores admin key with ``secret`` exists and is live."""
    stmt = pg_insert(_keys).values(
        name=BOOTSTRAP_NAME,
        role=Role.ADMIN.value,
        store_ids=None,
        secret_hash=hash_secret(secret),
        secret_prefix=secret[:8],
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["secret_hash"],
            set_={"role": Role.ADMIN.value, "store_ids": None, "revoked_at": None},
        )
    )
