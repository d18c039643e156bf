"""``/v1/api-keys``: create, list and revoke API keys (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.auth import Admin
from app.domain.api_key import service
from app.domain.api_key.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import IdempotencyKeyHeader, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"], route_class=TransactionalRoute)


@router.post("", status_code=201, response_model=ApiKeyCreated, responses=problems(401, 403, 422))
async def create_api_key(
    request: Request,
    body: ApiKeyCreate,
    principal: Admin,
    session: Session,
    _: IdempotencyKeyHeader = None,
) -> ApiKeyCreated:
    """Create a key; its `secret` is in this response only (a hash is stored).

    A replay with the same `Idempotency-Key` answers the same key with `secret: null`:
    the secret is not kept, not even with the stored response.
    """
    created = await service.create(session, principal, body)
    # What the idempotency store keeps and replays: the key without its secret.
    request.state.replay_body = created.model_copy(update={"secret": None}).model_dump_json()
    return created


@router.get("", response_model=Page[ApiKeyPublic], responses=problems(401, 403, 422))
async def list_api_keys(
    principal: Admin,
    session: Session,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
) -> Page[ApiKeyPublic]:
    """Keys visible to this admin, by id (secrets are never shown)."""
    after = decode_cursor(cursor, "api-keys", 1)[0] if cursor else None
    rows = await service.list_page(
        session, principal, after_id=after, limit=limit, include_revoked=include_revoked
    )
    page = page_of(rows, limit, lambda k: encode_cursor("api-keys", k.id))
    return Page(items=[service.to_public(k) for k in page.items], next_cursor=page.next_cursor)


@router.delete("/{key_id}", status_code=204, responses=problems(401, 403, 404))
async def revoke_api_key(
    key_id: Annotated[str, Path(examples=["2"])], principal: Admin, session: Session
) -> Response:
    """Revoke a key: requests with it are refused from now on."""
    await service.revoke(session, principal, path_id(key_id, "api_key"))
    return Response(status_code=204)
