"""The webhook delivery worker: every process runs one; PostgreSQL decides who sends what.

A worker claims ready subscriptions with ``FOR UPDATE SKIP LOCKED`` and gives each a lease
(a token and an expiry) in one short transaction; only the lease holder delivers for a
subscription, so replicas and workers never send one attempt twice. No transaction stays
open while a request is in flight: that would hold back the feed's horizon for everyone.

Events are read exactly as the feed reads them, in ``(tx_id, id)`` order below the horizon
(every transaction older than the oldest still running), so an event of a transaction that
commits late is never passed by. Each subscription delivers in order: its next event waits
until the one before it was delivered or given up. Subscriptions are served concurrently
(at most ``concurrency`` at a time per process), so a slow endpoint only delays its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import dberrors
from app.domain.clock import Clock, SystemClock
from app.domain.events.schemas import EventPublic
from app.domain.store import zones
from app.domain.types import MAX_ID
from app.domain.webhook import rules
from app.domain.webhook.transport import LeanTransport
from app.domain.webhook.work import (
    CLAIM,
    FETCH,
    FLUSH_SECONDS,
    Attempt,
    Lease,
    Outgoing,
    WorkerConfig,
    lease_of,
    short_error,
)
from app.models import Webhook, WebhookDelivery

logger = logging.getLogger("storeops.webhooks")

_hooks = Webhook.__table__  # type: ignore[attr-defined]
_deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
USER_AGENT = "StoreOps-Webhooks/1.0"
_MAX_RESPONSE_BYTES = 64 * 1024
# Attempts are recorded (and the position moved on) at the end of each fetched batch, or
# after this many or FLUSH_SECONDS, whichever comes first.
_FLUSH_EVERY = 100
_SERVE_SECONDS = 10.0
_PURGE_EVERY_SECONDS = 600.0
STOP_GRACE_SECONDS = 10.0
_LINGER_SECONDS = 0.5
_LINGER_POLL_SECONDS = 0.02

__all__ = ["DeliveryWorker", "WorkerConfig"]


class DeliveryWorker:
    """Background task delivering webhooks from the outbox (see the module docstring)."""

    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        config: WorkerConfig | None = None,
        *,
        clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.maker = maker
        self.config = config or WorkerConfig()
        self.clock = clock or SystemClock()
        self.rand = rand
        self._client = client
        self._own_client = client is None
        self._task: asyncio.Task[Any] | None = None
        self._serving: set[asyncio.Task[Any]] = set()
        # Subscriptions this worker holds (id → lease token), released when it stops.
        self._held: dict[int, str] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._requests: set[asyncio.Task[Any]] = set()
        self._purged_at = 0.0
        self._urls: dict[str, httpx.URL] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client (created on first use: no redirects, no cookies, the configured
        timeouts, the lean HTTP/1.1 transport of :mod:`app.domain.webhook.transport`)."""
        if self._client is None:
            t = self.config.timeout_seconds
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(t, connect=t, read=t, write=t, pool=t),
                follow_redirects=False,
                trust_env=False,
                # Stateless: a receiver's Set-Cookie is never sent back (to it or another).
                cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
                transport=LeanTransport(max_idle_per_origin=self.config.concurrency),
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    def _url(self, url: str) -> httpx.URL:
        """The parsed URL of a webhook (parsed once per worker)."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 10_000:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    def start(self) -> None:
        """Start delivering in the background."""
        self._task = asyncio.create_task(self._loop(), name="storeops-webhooks")

    async def stop(self) -> None:
        """Stop: requests in flight are abandoned (their events are sent again, same attempt
        number, by whichever worker claims the subscription next), what was delivered is
        recorded, and the subscriptions are released."""
        self._stopping.set()
        self._wake.set()
        for request in list(self._requests):
            request.cancel()
        # Database work is left to finish (a cancelled query would leave its connection
        # half-used); only a stuck one is cancelled after the grace period.
        tasks = [t for t in (self._task, *self._serving) if t is not None]
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
            for task in stuck:
                task.cancel()
            for task in stuck:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = None
        if self._held:
            with contextlib.suppress(Exception):
                async with self.maker() as session:
                    for webhook_id, token in sorted(self._held.items()):
                        await session.execute(
                            sa.update(_hooks)
                            .where(_hooks.c.id == webhook_id, _hooks.c.lease_token == token)
                            .values(lease_token=None, lease_until=None)
                        )
                    await session.commit()
            self._held.clear()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            free = self.config.concurrency - len(self._serving)
            if free > 0 and not self._stopping.is_set():
                try:
                    for lease in await self._claim(free):
                        task = asyncio.create_task(self._serve(lease))
                        self._serving.add(task)
                        task.add_done_callback(self._served)
                    await self._purge_old_deliveries()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failure = dberrors.classify(exc)
                    if failure is not None and failure.kind is dberrors.Kind.UNAVAILABLE:
                        logger.warning("webhook.database_unavailable error=%s", type(exc).__name__)
                    else:
                        logger.exception("webhook.claim_failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_seconds)

    def _served(self, task: asyncio.Task[Any]) -> None:
        self._serving.discard(task)
        if not task.cancelled() and task.exception() is None and task.result():
            # It sent something: its subscription (or another) may have more already.
            self._wake.set()

    async def _claim(self, n: int) -> list[Lease]:
        token = uuid.uuid4().hex
        now = self.clock.now()
        async with self.maker() as session:
            rows = (
                await session.execute(
                    CLAIM, {"token": token, "until": now + self.config.lease, "now": now, "n": n}
                )
            ).all()
            await session.commit()
        for r in rows:
            self._held[r.id] = token
        return [lease_of(r, token) for r in rows]

    async def _purge_old_deliveries(self) -> None:
        if time.monotonic() - self._purged_at < _PURGE_EVERY_SECONDS:
            return
        self._purged_at = time.monotonic()
        cutoff = self.clock.now() - timedelta(days=self.config.log_days)
        async with self.maker() as session:
            old = sa.select(_deliveries.c.id).where(_deliveries.c.attempted_at < cutoff)
            result = await session.execute(
                sa.delete(_deliveries).where(
                    _deliveries.c.id.in_(old.limit(10_000).scalar_subquery())
                )
            )
            await session.commit()
        purged = result.rowcount  # type: ignore[attr-defined]
        if purged:
            logger.info("webhook.deliveries_purged count=%s", purged)

    async def _serve(self, lease: Lease) -> int:
        """Deliver the subscription's events in order until none is ready, one fails, or
        the lease is lost; the number of requests sent."""
        sent = 0
        started = time.monotonic()
        idle_since: float | None = None
        advance: int | None = None
        try:
            while not self._stopping.is_set() and time.monotonic() - started < _SERVE_SECONDS:
                events, horizon = await self._fetch(lease)
                # All of the subscription's events below the horizon are in hand when the
                # batch is not full: once they are delivered, the position moves up to it.
                advance = horizon if len(events) < self.config.batch_size else None
                if not events:
                    # Keep the lease a moment: under load the next event is usually close,
                    # and letting go and claiming again costs two transactions.
                    now = time.monotonic()
                    idle_since = idle_since or now
                    if now - idle_since >= _LINGER_SECONDS:
                        break
                    await asyncio.sleep(_LINGER_POLL_SECONDS)
                    continue
                idle_since = None
                more, n = await self._deliver(lease, events, advance_to=advance)
                sent += n
                if not more:
                    return sent
            await self._flush(lease, [], advance_to=advance, release=True)
            return sent
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("webhook.serve_failed webhook_id=%s", lease.id)
            with contextlib.suppress(Exception):
                await self._flush(lease, [], release=True)
            return sent

    async def _fetch(self, lease: Lease) -> tuple[list[Outgoing], int]:
        """The subscription's next events after its position, below the horizon (one
        statement: the horizon and the events, read in one snapshot)."""
        async with self.maker() as session:
            rows = (
                await session.execute(
                    FETCH,
                    {
                        "ctx": lease.cursor[0],
                        "cid": lease.cursor[1],
                        "types": lease.events,
                        "stores": lease.store_ids,
                        "n": self.config.batch_size,
                    },
                )
            ).all()
            horizon = int(rows[0].horizon)
            rows = [r for r in rows if r.id is not None]
            models = [
                EventPublic(
                    id=r.id,
                    type=r.type,
                    store_id=r.store_id,
                    occurred_at=r.occurred_at,
                    data=r.data,
                )
                for r in rows
            ]
            # The envelope's instant in store time, as the feed gives it.
            models = await zones.in_store_time(session, models)
        out = [
            Outgoing(r.id, r.tx_id, r.type, orjson.dumps(m.model_dump(mode="json")))
            for r, m in zip(rows, models, strict=True)
        ]
        return out, horizon

    async def _deliver(
        self, lease: Lease, events: Sequence[Outgoing], *, advance_to: int | None
    ) -> tuple[bool, int]:
        """Send ``events`` in order, recording as it goes; (whether to go on, requests sent)."""
        done: list[Attempt] = []
        flushed_at = time.monotonic()
        for i, event in enumerate(events):
            head = i == 0 and lease.pending_event_id == event.id
            attempt = None
            if not self._stopping.is_set():
                attempt = await self._post(lease, event, lease.state.attempt + 1 if head else 1)
            if attempt is None:
                # Stopping: record what was delivered and let the subscription go.
                await self._flush(lease, done, release=True)
                return False, i
            done.append(attempt)
            if not attempt.ok:
                await self._flush(lease, done, release=True)
                return False, i + 1
            last = i == len(events) - 1
            if last or len(done) >= _FLUSH_EVERY or time.monotonic() - flushed_at > FLUSH_SECONDS:
                if not await self._flush(lease, done, advance_to=advance_to if last else None):
                    return False, i + 1
                done = []
                flushed_at = time.monotonic()
        return True, len(events)

    async def _post(self, lease: Lease, event: Outgoing, attempt: int) -> Attempt | None:
        """One signed POST of one event; None if the worker stopped meanwhile."""
        request = asyncio.create_task(self._request(lease, event, attempt))
        self._requests.add(request)
        try:
            await asyncio.wait({request})
        finally:
            self._requests.discard(request)
        return None if request.cancelled() else request.result()

    async def _request(self, lease: Lease, event: Outgoing, attempt: int) -> Attempt:
        """One signed POST of one event; never raises for what the receiver does."""
        attempted_at = self.clock.now()
        timestamp = str(int(attempted_at.timestamp()))
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "X-StoreOps-Event-Id": str(event.id),
            "X-StoreOps-Event-Type": event.type,
            "X-StoreOps-Webhook-Id": str(lease.id),
            "X-StoreOps-Attempt": str(attempt),
            "X-StoreOps-Timestamp": timestamp,
            "X-StoreOps-Signature": rules.signature(lease.secret, event.body),
            "X-StoreOps-Signature-V2": rules.signature_v2(lease.secret, timestamp, event.body),
        }
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.attempt_seconds):
                # Built here rather than by client.stream(): merging the client's URL,
                # headers and cookies into every request cost a third of a delivery.
                request = httpx.Request(
                    "POST",
                    self._url(lease.url),
                    content=event.body,
                    headers=headers,
                    extensions={"timeout": self.client.timeout.as_dict()},
                )
                response = await self.client.send(request, stream=True)
                try:
                    status = response.status_code
                    read = 0
                    # Drain a small answer so the connection is kept; never a large one.
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read > _MAX_RESPONSE_BYTES:
                            break
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            error = f"timeout: {type(exc).__name__}"
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            error = short_error(exc)
        if error is None and status is not None and not 200 <= status < 300:
            error = (
                f"redirect not followed (HTTP {status})"
                if 300 <= status < 400
                else f"HTTP {status}"
            )
        return Attempt(
            event=event,
            attempt=attempt,
            response_status=status,
            error=error,
            duration_ms=int((time.perf_counter() - started) * 1000),
            attempted_at=attempted_at,
        )

    async def _flush(
        self,
        lease: Lease,
        attempts: Sequence[Attempt],
        *,
        advance_to: int | None = None,
        release: bool = False,
    ) -> bool:
        """Record attempts and move the subscription on, if this worker still holds it;
        whether it does (and the subscription was not redelivered meanwhile)."""
        now = self.clock.now()
        async with self.maker() as session:
            version = (
                await session.execute(
                    sa.select(_hooks.c.version)
                    .where(_hooks.c.id == lease.id, _hooks.c.lease_token == lease.token)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if version is None:
                # Deleted, or the lease ran out and another worker took over.
                await session.rollback()
                self._held.pop(lease.id, None)
                return False
            if attempts:
                await session.execute(
                    sa.insert(_deliveries),
                    [
                        {
                            "webhook_id": lease.id,
                            "event_id": a.event.id,
                            "event_type": a.event.type,
                            "attempt": a.attempt,
                            "response_status": a.response_status,
                            "error": a.error,
                            "duration_ms": a.duration_ms,
                            "attempted_at": a.attempted_at,
                        }
                        for a in attempts
                    ],
                )
            if version != lease.version:
                # Redelivered meanwhile: the new position stands; let go.
                await session.execute(
                    sa.update(_hooks)
                    .where(_hooks.c.id == lease.id)
                    .values(lease_token=None, lease_until=None)
                )
                await session.commit()
                self._held.pop(lease.id, None)
                return False
            values = self._advance(lease, attempts, now, advance_to)
            if release:
                values |= {"lease_token": None, "lease_until": None}
            else:
                values["lease_until"] = now + self.config.lease
            await session.execute(sa.update(_hooks).where(_hooks.c.id == lease.id).values(values))
            await session.commit()
        if release:
            self._held.pop(lease.id, None)
        return True

    def _advance(
        self,
        lease: Lease,
        attempts: Sequence[Attempt],
        now: datetime,
        advance_to: int | None,
    ) -> dict[str, Any]:
        """The subscription's new position and retry state after ``attempts`` (all delivered
        but possibly the last); updates ``lease`` to match."""
        values: dict[str, Any] = {}
        delivered = [a for a in attempts if a.ok]
        if delivered:
            last = delivered[-1]
            lease.cursor = (last.event.tx_id, last.event.id)
            lease.state = rules.after_success(lease.state)
            lease.pending_event_id = None
            values |= {
                "last_delivered_event_id": last.event.id,
                "last_delivered_at": last.attempted_at,
                "next_attempt_at": now,
            }
        failed = attempts[-1] if attempts and not attempts[-1].ok else None
        if failed is not None:
            outcome = rules.after_failure(lease.state, now, self.config.policy, self.rand)
            lease.state = outcome.state
            if outcome.gave_up:
                logger.warning(
                    "webhook.gave_up webhook_id=%s event_id=%s attempts=%s",
                    lease.id,
                    failed.event.id,
                    failed.attempt,
                )
                lease.cursor = (failed.event.tx_id, failed.event.id)
                lease.pending_event_id = None
                # The oldest event skipped since the last redelivery: where to redeliver from.
                values["first_skipped_event_id"] = sa.func.coalesce(
                    _hooks.c.first_skipped_event_id, failed.event.id
                )
            else:
                lease.pending_event_id = failed.event.id
            values["next_attempt_at"] = outcome.next_attempt_at
        elif advance_to is not None and (advance_to - 1, MAX_ID) > lease.cursor:
            lease.cursor = (advance_to - 1, MAX_ID)
        state = lease.state
        values |= {
            "cursor_tx_id": lease.cursor[0],
            "cursor_event_id": lease.cursor[1],
            "pending_event_id": lease.pending_event_id,
            "attempt": state.attempt,
            "first_failure_at": state.first_failure_at,
            "consecutive_failures": state.consecutive_failures,
            "breaker_open_until": state.breaker_open_until,
            "failing_since": state.failing_since,
        }
        return values
