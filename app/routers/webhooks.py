"""``/v1/webhooks``: subscriptions to the event feed, their status and delivery log (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.auth import Admin
from app.domain.store import service as stores
from app.domain.webhook import service
from app.domain.webhook.schemas import (
    DeliveryPublic,
    RedeliverRequest,
    WebhookCreate,
    WebhookPublic,
)
from app.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from app.routers._common import IdempotencyKeyHeader, Session, path_id, problems
from app.routing import TransactionalRoute

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=TransactionalRoute)

WebhookId = Annotated[str, Path(examples=["3"])]


@router.post(
    "",
    status_code=201,
    response_model=WebhookPublic,
    responses=problems(401, 403, 404, 422),
)
async def create_webhook(
    request: Request,
    body: WebhookCreate,
    principal: Admin,
    session: Session,
    _: IdempotencyKeyHeader = None,
) -> WebhookPublic:
    """Subscribe a URL to events; events committed from now on are POSTed to it, signed
    with `secret` (see docs/webhooks.md).

    The secret is never returned, not by this response, a replay of it or any read.
    """
    settings = request.app.state.settings
    return await service.create(
        session, principal, body, allowed_hosts=settings.webhook_allowed_hosts
    )


@router.get("", response_model=Page[WebhookPublic], responses=problems(401, 403, 404, 422))
async def list_webhooks(
    principal: Admin,
    session: Session,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    store_id: Annotated[
        str | None, Query(description="Only webhooks that receive this store's events.")
    ] = None,
) -> Page[WebhookPublic]:
    """Webhooks by id, with their delivery status."""
    after = decode_cursor(cursor, "webhooks", 1)[0] if cursor else None
    store = None
    if store_id is not None:
        store = path_id(store_id, "store")
        await stores.store_filter(session, principal, store)
    rows = await service.list_page(session, principal, after_id=after, limit=limit, store_id=store)
    return page_of(rows, limit, lambda w: encode_cursor("webhooks", w.id))


@router.get("/{webhook_id}", response_model=WebhookPublic, responses=problems(401, 403, 404))
async def get_webhook(webhook_id: WebhookId, principal: Admin, session: Session) -> WebhookPublic:
    """One webhook: `status` (`active`, `paused`, `failing`) and the last delivered event."""
    return await service.get(session, principal, path_id(webhook_id, "webhook"))


@router.delete("/{webhook_id}", status_code=204, responses=problems(401, 403, 404))
async def delete_webhook(webhook_id: WebhookId, principal: Admin, session: Session) -> Response:
    """Delete a webhook and its delivery log; nothing more is sent to it."""
    await service.delete(session, principal, path_id(webhook_id, "webhook"))
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryPublic],
    responses=problems(401, 403, 404, 422),
)
async def list_deliveries(
    webhook_id: WebhookId,
    principal: Admin,
    session: Session,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[DeliveryPublic]:
    """The webhook's delivery attempts, newest first (kept `STOREOPS_WEBHOOK_DELIVERY_LOG_DAYS`)."""
    before = decode_cursor(cursor, "webhook-deliveries", 1)[0] if cursor else None
    rows = await service.deliveries(
        session, principal, path_id(webhook_id, "webhook"), before_id=before, limit=limit
    )
    return page_of(rows, limit, lambda d: encode_cursor("webhook-deliveries", d.id))


@router.post(
    "/{webhook_id}/redeliver",
    response_model=WebhookPublic,
    responses=problems(401, 403, 404, 422),
)
async def redeliver(
    webhook_id: WebhookId,
    body: RedeliverRequest,
    principal: Admin,
    session: Session,
    _: IdempotencyKeyHeader = None,
) -> WebhookPublic:
    """Deliver again from `from_event_id` on (that event if the webhook wants it, then every
    later one, in order); also resumes a `paused` or `failing` webhook at once."""
    return await service.redeliver(session, principal, path_id(webhook_id, "webhook"), body)
