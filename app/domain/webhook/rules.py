"""Pure webhook rules: URL checks, signatures, backoff, give-up and the circuit breaker."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]")


class Status(StrEnum):
    """What ``GET /v1/webhooks/{id}`` reports."""

    ACTIVE = "active"
    PAUSED = "paused"
    FAILING = "failing"


def url_problem(url: str, allowed_hosts: Collection[str] = ()) -> str | None:
    """Why ``url`` cannot receive webhooks, or None if it can.

    Only absolute ``http``/``https`` URLs with a plain host name or IP address; no
    credentials (``user:pass@``), no fragment, nothing unprintable. A non-empty
    ``allowed_hosts`` (setting ``STOREOPS_WEBHOOK_ALLOWED_HOSTS``) restricts the host.
    """
    if len(url) > MAX_URL_LENGTH:
        return f"the URL is longer than {MAX_URL_LENGTH} characters"
    if _CONTROL_RE.search(url):
        return "the URL contains spaces or control characters"
    if not url.isascii():
        return "the URL must be ASCII (punycode the host, percent-encode the path)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the URL cannot be parsed (check the host and port)"
    if parts.scheme.lower() not in ("http", "https"):
        return "the URL must start with http:// or https://"
    if "@" in parts.netloc:
        return "the URL must not carry credentials (user:password@); sign with the secret"
    if parts.fragment or url.endswith("#"):
        return "the URL must not have a fragment (#…)"
    host = parts.hostname or ""
    if not host:
        return "the URL has no host"
    if port == 0:
        return "the URL's port must be 1-65535"
    if not _is_host(host, bracketed=parts.netloc.startswith("[")):
        return "the URL's host is not a valid host name or IP address"
    if allowed_hosts and host.lower().rstrip(".") not in allowed_hosts:
        return "the URL's host is not in the allowed hosts (STOREOPS_WEBHOOK_ALLOWED_HOSTS)"
    return None


def _is_host(host: str, *, bracketed: bool) -> bool:
    if bracketed:
        try:
            return ipaddress.ip_address(host).version == 6
        except ValueError:
            return False
    return len(host) <= 253 and bool(_HOSTNAME_RE.match(host))


def signature(secret: str, body: bytes) -> str:
    """``X-StoreOps-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_v2(secret: str, timestamp: str, body: bytes) -> str:
    """``X-StoreOps-Signature-V2``: the HMAC of ``<timestamp>.<body>`` (replay-resistant)."""
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Policy:
    """Retry, give-up and breaker settings."""

    base: timedelta
    cap: timedelta
    give_up_after: timedelta
    breaker_failures: int
    breaker_cooldown: timedelta


@dataclass(frozen=True)
class RetryState:
    """The delivery state of one subscription that the rules move on."""

    attempt: int = 0
    """Failed attempts at the event at the head of the subscription's queue."""
    first_failure_at: datetime | None = None
    consecutive_failures: int = 0
    """Failed attempts in a row, across events (the breaker counts these)."""
    breaker_open_until: datetime | None = None
    failing_since: datetime | None = None


def backoff(attempt: int, policy: Policy, rand: Callable[[], float]) -> timedelta:
    """Delay before retry ``attempt + 1``: base × 2^(attempt-1), capped, half of it jittered."""
    exponent = min(max(attempt - 1, 0), 40)
    full = min(policy.cap, policy.base * (1 << exponent))
    return full / 2 + full * (rand() / 2)


@dataclass(frozen=True)
class Failure:
    """What to do after a failed attempt."""

    state: RetryState
    next_attempt_at: datetime
    gave_up: bool


def after_failure(
    state: RetryState, now: datetime, policy: Policy, rand: Callable[[], float]
) -> Failure:
    """A failed attempt: retry later, or give the event up once it failed for long enough.

    After ``breaker_failures`` failures in a row the breaker opens: nothing is sent
    until ``breaker_cooldown`` has passed, then one attempt probes the endpoint (a
    failed probe opens it again).
    """
    first = state.first_failure_at or now
    failures = state.consecutive_failures + 1
    gave_up = now - first >= policy.give_up_after
    if gave_up:
        # The event is skipped; the subscription goes on with the next one and is failing.
        new = RetryState(
            attempt=0,
            first_failure_at=None,
            consecutive_failures=failures,
            breaker_open_until=state.breaker_open_until,
            failing_since=state.failing_since or now,
        )
        next_at = now
    else:
        new = replace(
            state, attempt=state.attempt + 1, first_failure_at=first, consecutive_failures=failures
        )
        next_at = now + backoff(new.attempt, policy, rand)
    if failures >= policy.breaker_failures:
        open_until = max(next_at, now + policy.breaker_cooldown)
        new = replace(new, breaker_open_until=open_until)
        next_at = open_until
    return Failure(new, next_at, gave_up)


def after_success(state: RetryState) -> RetryState:
    """A delivered event closes the breaker; ``failing`` stays until a redelivery (events
    were skipped: someone has to look)."""
    return RetryState(failing_since=state.failing_since)


def status(breaker_open_until: datetime | None, failing_since: datetime | None) -> Status:
    """``failing`` once an event was given up (until a redelivery), ``paused`` while the
    breaker is open or waiting for its probe, else ``active``."""
    if failing_since is not None:
        return Status.FAILING
    if breaker_open_until is not None:
        return Status.PAUSED
    return Status.ACTIVE
