"""``Idempotency-Key`` storage: the first response to a key is committed with its change.

A key is claimed with one ``INSERT … ON CONFLICT`` in the request's own transaction. A
parallel duplicate blocks on the unique index until the first transaction ends, then
finds the committed response and replays it; if the first rolled back (a server error),
the duplicate claims the key and does the work itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import Conflict, RuleViolation

MAX_KEY_LENGTH = 255

_CLAIM = sa.text(
    """
    INSERT INTO idempotency_keys (api_key_id, key, method, path, fingerprint)
    VALUES (:api_key_id, :key, :method, :path, :fingerprint)
    ON CONFLICT (api_key_id, key) DO UPDATE
       SET method = EXCLUDED.method, path = EXCLUDED.path, fingerprint = EXCLUDED.fingerprint,
           response_status = NULL, response_body = NULL, response_media_type = NULL,
           created_at = now()
     WHERE idempotency_keys.created_at < now() - make_interval(hours => :ttl_hours)
    RETURNING 1
    """
)
_LOAD = sa.text(
    """
    SELECT fingerprint, response_status, response_body, response_media_type
      FROM idempotency_keys WHERE api_key_id = :api_key_id AND key = :key
    """
)
_SAVE = sa.text(
    """
    UPDATE idempotency_keys
       SET response_status = :status, response_body = :body, response_media_type = :media_type
     WHERE api_key_id = :api_key_id AND key = :key
    """
)
_PURGE = sa.text(
    "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => :ttl_hours)"
)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response kept for replay."""

    status: int
    body: bytes
    media_type: str | None


def validate_key(key: str) -> str:
    """Keys are 1–255 visible ASCII characters."""
    if not (0 < len(key) <= MAX_KEY_LENGTH) or not key.isascii() or not key.isprintable():
        raise RuleViolation(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} printable ASCII characters.",
        )
    return key


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """Hash of what the request asks for; JSON bodies are compared by content, not layout."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def claim(
    session: AsyncSession,
    *,
    api_key_id: int,
    key: str,
    method: str,
    path: str,
    fingerprint: str,
    ttl_hours: int,
) -> StoredResponse | None:
    """Claim ``key`` for this request, or return the response stored under it.

    Raises ``409 idempotency_key_reused`` when the key was used for a different request.
    """
    params = {
        "api_key_id": api_key_id,
        "key": key,
        "method": method,
        "path": path,
        "fingerprint": fingerprint,
        "ttl_hours": ttl_hours,
    }
    if (await session.execute(_CLAIM, params)).first() is not None:
        return None
    row = (await session.execute(_LOAD, {"api_key_id": api_key_id, "key": key})).one()
    if row.fingerprint != fingerprint:
        raise Conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request.",
        )
    if row.response_status is None:  # only possible if a writer committed without a response
        raise Conflict("idempotency_key_in_progress", "A request with this key is in progress.")
    return StoredResponse(row.response_status, bytes(row.response_body), row.response_media_type)


async def save(
    session: AsyncSession, *, api_key_id: int, key: str, response: StoredResponse
) -> None:
    """Store the response of a claimed key (same transaction as the change)."""
    await session.execute(
        _SAVE,
        {
            "api_key_id": api_key_id,
            "key": key,
            "status": response.status,
            "body": response.body,
            "media_type": response.media_type,
        },
    )


async def purge_expired(session: AsyncSession, ttl_hours: int) -> int:
    """Delete keys older than the retention period; returns how many."""
    result = await session.execute(_PURGE, {"ttl_hours": ttl_hours})
    return int(result.rowcount)  # type: ignore[attr-defined]
