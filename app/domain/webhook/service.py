"""Webhook subscriptions: create, read, list, delete, delivery log, redelivery."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.domain import audit
from app.domain.errors import Forbidden, RuleViolation, not_found
from app.domain.events.service import EVENT_TYPES
from app.domain.types import MAX_ID
from app.domain.webhook import rules
from app.domain.webhook.schemas import (
    DeliveryPublic,
    RedeliverRequest,
    WebhookCreate,
    WebhookPublic,
)
from app.models import Event, Store, Webhook, WebhookDelivery

_hooks = Webhook.__table__  # type: ignore[attr-defined]
_deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
_stores = Store.__table__  # type: ignore[attr-defined]
_events = Event.__table__  # type: ignore[attr-defined]

# Every event below the oldest running transaction is final (app/domain/events/service.py):
# a new subscription starts after them.
_BELOW_HORIZON = sa.text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1")


def to_public(row: Any) -> WebhookPublic:
    """The public form of a ``webhooks`` row (never its secret)."""
    return WebhookPublic(
        id=row.id,
        url=row.url,
        events=list(row.events),
        store_ids=None if row.store_ids is None else sorted(row.store_ids),
        status=rules.status(row.breaker_open_until, row.failing_since),
        last_delivered_event_id=row.last_delivered_event_id,
        last_delivered_at=row.last_delivered_at,
        pending_event_id=row.pending_event_id,
        failed_attempts=row.attempt,
        next_attempt_at=row.next_attempt_at if row.pending_event_id is not None else None,
        paused_until=row.breaker_open_until,
        failing_since=row.failing_since,
        first_skipped_event_id=row.first_skipped_event_id,
        created_at=row.created_at,
    )


def _invalid(code: str, detail: str, loc: str, msg: str) -> RuleViolation:
    return RuleViolation(
        code, detail, errors=[{"loc": ["body", loc], "msg": msg, "type": "invalid"}]
    )


async def create(
    session: AsyncSession,
    principal: Principal,
    data: WebhookCreate,
    *,
    allowed_hosts: Collection[str] = (),
) -> WebhookPublic:
    """Subscribe ``url``; events committed from now on are delivered (DOMAIN.md §7)."""
    problem = rules.url_problem(data.url, allowed_hosts)
    if problem is not None:
        raise _invalid("invalid_webhook_url", f"Invalid webhook URL: {problem}.", "url", problem)
    types = sorted(set(data.events))
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise _invalid(
            "unknown_event_type",
            f"Unknown event types: {', '.join(unknown)}. "
            f"Valid types: {', '.join(sorted(EVENT_TYPES))}.",
            "events",
            "unknown type",
        )
    store_ids = None if data.store_ids is None else sorted(set(data.store_ids))
    if store_ids is None and not principal.all_stores:
        raise Forbidden(
            "forbidden_scope", "A store-scoped admin must name the stores of a webhook."
        )
    if store_ids is not None:
        if not store_ids:
            raise _invalid(
                "invalid_store_ids",
                "store_ids must name at least one store, or be null for all stores.",
                "store_ids",
                "empty list",
            )
        found = set(
            (
                await session.execute(sa.select(_stores.c.id).where(_stores.c.id.in_(store_ids)))
            ).scalars()
        )
        missing = [s for s in store_ids if s not in found or not principal.sees_store(s)]
        if missing:
            raise _invalid(
                "unknown_store",
                f"Unknown stores: {', '.join(map(str, missing))}.",
                "store_ids",
                "unknown store",
            )
    row = (
        await session.execute(
            sa.insert(_hooks)
            .values(
                url=data.url,
                events=types,
                store_ids=store_ids,
                secret=data.secret,
                created_by=principal.key_id,
                cursor_tx_id=_BELOW_HORIZON,
                cursor_event_id=MAX_ID,
            )
            .returning(_hooks)
        )
    ).one()
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="webhook.created",
        resource_type="webhook",
        resource_id=row.id,
        data={"events": types, "store_ids": store_ids},
    )
    return to_public(row)


def _visible(principal: Principal, store_ids: list[int] | None) -> bool:
    """A scoped admin sees only webhooks wholly inside its own scope."""
    if principal.all_stores:
        return True
    return store_ids is not None and all(principal.sees_store(s) for s in store_ids)


async def _row(
    session: AsyncSession, principal: Principal, webhook_id: int, *, lock: bool = False
) -> Any:
    stmt = sa.select(_hooks).where(_hooks.c.id == webhook_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).one_or_none()
    if row is None or not _visible(principal, row.store_ids):
        raise not_found("webhook", webhook_id)
    return row


async def get(session: AsyncSession, principal: Principal, webhook_id: int) -> WebhookPublic:
    """One subscription with its delivery status."""
    return to_public(await _row(session, principal, webhook_id))


async def list_page(
    session: AsyncSession,
    principal: Principal,
    *,
    after_id: int | None,
    limit: int,
    store_id: int | None,
) -> list[WebhookPublic]:
    """Subscriptions by id, ``limit + 1`` after ``after_id``; ``store_id``: those that
    receive that store's events."""
    stmt = sa.select(_hooks).order_by(_hooks.c.id).limit(limit + 1)
    if after_id is not None:
        stmt = stmt.where(_hooks.c.id > after_id)
    if not principal.all_stores:
        assert principal.store_ids is not None
        stmt = stmt.where(
            _hooks.c.store_ids.is_not(None),
            _hooks.c.store_ids.contained_by(sorted(principal.store_ids)),
        )
    if store_id is not None:
        stmt = stmt.where(
            sa.or_(_hooks.c.store_ids.is_(None), _hooks.c.store_ids.contains([store_id]))
        )
    return [to_public(r) for r in await session.execute(stmt)]


async def delete(session: AsyncSession, principal: Principal, webhook_id: int) -> None:
    """Remove a subscription and its delivery log; nothing more is sent to it."""
    await _row(session, principal, webhook_id, lock=True)
    await session.execute(sa.delete(_hooks).where(_hooks.c.id == webhook_id))
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="webhook.deleted",
        resource_type="webhook",
        resource_id=webhook_id,
    )


async def deliveries(
    session: AsyncSession,
    principal: Principal,
    webhook_id: int,
    *,
    before_id: int | None,
    limit: int,
) -> list[DeliveryPublic]:
    """The subscription's delivery attempts, newest first, ``limit + 1`` rows."""
    await _row(session, principal, webhook_id)
    stmt = (
        sa.select(_deliveries)
        .where(_deliveries.c.webhook_id == webhook_id)
        .order_by(_deliveries.c.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        stmt = stmt.where(_deliveries.c.id < before_id)
    return [
        DeliveryPublic(
            id=r.id,
            event_id=r.event_id,
            event_type=r.event_type,
            attempt=r.attempt,
            response_status=r.response_status,
            error=r.error,
            duration_ms=r.duration_ms,
            attempted_at=r.attempted_at,
        )
        for r in await session.execute(stmt)
    ]


async def redeliver(
    session: AsyncSession, principal: Principal, webhook_id: int, data: RedeliverRequest
) -> WebhookPublic:
    """Move the subscription back to just before ``from_event_id``: that event (if it
    matches the subscription) and every later one are delivered again, in order."""
    await _row(session, principal, webhook_id, lock=True)
    anchor = (
        await session.execute(sa.select(_events.c.tx_id).where(_events.c.id == data.from_event_id))
    ).scalar_one_or_none()
    if anchor is None:
        raise _invalid(
            "unknown_event",
            f"No event {data.from_event_id}: pass the id of an event from the feed.",
            "from_event_id",
            "unknown event id",
        )
    # The version bump tells a worker mid-delivery to drop the position it holds.
    row = (
        await session.execute(
            sa.update(_hooks)
            .where(_hooks.c.id == webhook_id)
            .values(
                version=_hooks.c.version + 1,
                cursor_tx_id=anchor,
                cursor_event_id=data.from_event_id - 1,
                pending_event_id=None,
                attempt=0,
                first_failure_at=None,
                consecutive_failures=0,
                breaker_open_until=None,
                failing_since=None,
                first_skipped_event_id=None,
                next_attempt_at=sa.func.now(),
            )
            .returning(_hooks)
        )
    ).one()
    await audit.record(
        session,
        api_key_id=principal.key_id,
        action="webhook.redelivered",
        resource_type="webhook",
        resource_id=webhook_id,
        data={"from_event_id": str(data.from_event_id)},
    )
    return to_public(row)
