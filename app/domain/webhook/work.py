"""The units of webhook delivery work: what a worker claims, sends and records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from app.config import Settings
from app.domain.webhook import rules

FLUSH_SECONDS = 1.0

CLAIM = sa.text(
    """
    UPDATE webhooks AS w
    SET lease_token = :token, lease_until = :until
    FROM (
        SELECT c.id FROM webhooks AS c
        WHERE (c.lease_until IS NULL OR c.lease_until < :now)
          AND c.next_attempt_at <= :now
          AND EXISTS (
              SELECT 1 FROM events AS e
              WHERE (e.tx_id, e.id) > (c.cursor_tx_id, c.cursor_event_id)
                AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
                AND e.type = ANY (c.events)
                AND (c.store_ids IS NULL OR e.store_id = ANY (c.store_ids)))
        ORDER BY c.next_attempt_at, c.id
        LIMIT :n
        FOR UPDATE SKIP LOCKED
    ) AS s
    WHERE w.id = s.id
    RETURNING w.id, w.url, w.secret, w.events, w.store_ids, w.version, w.cursor_tx_id,
              w.cursor_event_id, w.pending_event_id, w.attempt, w.first_failure_at,
              w.consecutive_failures, w.breaker_open_until, w.failing_since
    """
)


FETCH = sa.text(
    """
    WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon)
    SELECT h.horizon, e.id, e.tx_id, e.type, e.store_id, e.occurred_at, e.data
    FROM h LEFT JOIN LATERAL (
        SELECT id, tx_id, type, store_id, occurred_at, data FROM events
        WHERE (tx_id, id) > (:ctx, :cid)
          AND tx_id < h.horizon
          AND type = ANY (CAST(:types AS text[]))
          AND (CAST(:stores AS bigint[]) IS NULL OR store_id = ANY (CAST(:stores AS bigint[])))
        ORDER BY tx_id, id
        LIMIT :n
    ) AS e ON true
    ORDER BY e.tx_id, e.id
    """
).columns(
    sa.column("horizon", sa.BigInteger),
    sa.column("id", sa.BigInteger),
    sa.column("tx_id", sa.BigInteger),
    sa.column("type", sa.Text),
    sa.column("store_id", sa.BigInteger),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("data", JSONB),
)


@dataclass(frozen=True)
class WorkerConfig:
    """How the worker polls, how many subscriptions it serves at once, how it retries."""

    poll_seconds: float = 0.25
    concurrency: int = 16
    timeout_seconds: float = 5.0
    batch_size: int = 100
    log_days: int = 7
    policy: rules.Policy = field(
        default_factory=lambda: rules.Policy(
            base=timedelta(seconds=10),
            cap=timedelta(hours=1),
            give_up_after=timedelta(hours=24),
            breaker_failures=5,
            breaker_cooldown=timedelta(seconds=60),
        )
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        """The worker's configuration from the service settings."""
        return cls(
            poll_seconds=settings.webhook_poll_seconds,
            concurrency=settings.webhook_concurrency,
            timeout_seconds=settings.webhook_timeout_seconds,
            batch_size=settings.webhook_batch_size,
            log_days=settings.webhook_delivery_log_days,
            policy=rules.Policy(
                base=timedelta(seconds=settings.webhook_retry_base_seconds),
                cap=timedelta(seconds=settings.webhook_retry_cap_seconds),
                give_up_after=timedelta(seconds=settings.webhook_give_up_seconds),
                breaker_failures=settings.webhook_breaker_failures,
                breaker_cooldown=timedelta(seconds=settings.webhook_breaker_cooldown_seconds),
            ),
        )

    @property
    def attempt_seconds(self) -> float:
        """Wall-clock bound of one request (connect, send and read, each ≤ the timeout)."""
        return 2 * self.timeout_seconds + 1

    @property
    def lease(self) -> timedelta:
        """A lease outlives the longest stretch between two renewals (a flush or a request)."""
        return timedelta(seconds=3 * self.attempt_seconds + FLUSH_SECONDS + 30)


@dataclass
class Lease:
    """A subscription this worker holds, with the state its flushes move on."""

    id: int
    url: str
    secret: str
    events: list[str]
    store_ids: list[int] | None
    version: int
    token: str
    cursor: tuple[int, int]
    pending_event_id: int | None
    state: rules.RetryState


@dataclass(frozen=True)
class Outgoing:
    """One event to send: its feed position and its body, exactly as the feed shows it."""

    id: int
    tx_id: int
    type: str
    body: bytes


@dataclass(frozen=True)
class Attempt:
    """The outcome of one request."""

    event: Outgoing
    attempt: int
    response_status: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime

    @property
    def ok(self) -> bool:
        """Delivered: the receiver answered 2xx."""
        return self.error is None


def lease_of(row: Any, token: str) -> Lease:
    return Lease(
        id=row.id,
        url=row.url,
        secret=row.secret,
        events=list(row.events),
        store_ids=None if row.store_ids is None else list(row.store_ids),
        version=row.version,
        token=token,
        cursor=(row.cursor_tx_id, row.cursor_event_id),
        pending_event_id=row.pending_event_id,
        state=rules.RetryState(
            attempt=row.attempt,
            first_failure_at=row.first_failure_at,
            consecutive_failures=row.consecutive_failures,
            breaker_open_until=row.breaker_open_until,
            failing_since=row.failing_since,
        ),
    )


def short_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
