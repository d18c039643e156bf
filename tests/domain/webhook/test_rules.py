"""Webhook rules: URL checks, signatures, backoff, give-up, breaker and status."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.webhook import rules
from app.domain.webhook.rules import Policy, RetryState, Status

NOW = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
POLICY = Policy(
    base=timedelta(seconds=10),
    cap=timedelta(hours=1),
    give_up_after=timedelta(hours=24),
    breaker_failures=5,
    breaker_cooldown=timedelta(seconds=60),
)


@pytest.mark.parametrize(
    "url",
    [
        "https://erp.example.com/hooks",
        "http://127.0.0.1:8080/x?y=1",
        "HTTPS://Example.COM",
        "http://[::1]:9000/",
        "http://erp-1.example.cn./path",
    ],
)
def test_urls_accepted(url: str) -> None:
    assert rules.url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("example.com/hooks", "http:// or https://"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://token@example.com/", "credentials"),
        ("http://example.com/#frag", "fragment"),
        ("http://exa mple.com/", "spaces"),
        ("http://example.com/\x00", "control"),
        ("http://例子.中国/", "ASCII"),
        ("http:///path", "no host"),
        ("http://example.com:0/", "port"),
        ("http://example.com:99999/", "parsed"),
        ("http://-bad-.com/", "host"),
        ("http://[zz::1]/", "parsed"),
        ("https://" + "a" * 2000 + ".com", "longer"),
    ],
)
def test_urls_refused(url: str, why: str) -> None:
    problem = rules.url_problem(url)
    assert problem is not None
    assert why in problem


def test_allowed_hosts() -> None:
    assert rules.url_problem("http://127.0.0.1:9/x", ["127.0.0.1"]) is None
    assert rules.url_problem("http://LOCALHOST./x", ["localhost"]) is None
    problem = rules.url_problem("http://example.com/x", ["127.0.0.1"])
    assert problem is not None
    assert "allowed hosts" in problem


def test_signatures() -> None:
    body = '{"id":"1","data":{"title":"西湖龙井"}}'.encode()
    mac = hmac.new(b"s" * 16, body, hashlib.sha256).hexdigest()
    assert rules.signature("s" * 16, body) == f"sha256={mac}"
    mac2 = hmac.new(b"s" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert rules.signature_v2("s" * 16, "1700000000", body) == f"sha256={mac2}"


@pytest.mark.parametrize(
    ("attempt", "rand", "seconds"),
    [
        (1, 0.0, 5),  # base 10 s, half of it fixed, half jittered
        (1, 1.0, 10),
        (2, 0.0, 10),
        (3, 1.0, 40),
        (9, 1.0, 2560),
        (10, 1.0, 3600),  # capped at 1 h
        (60, 0.5, 2700),
    ],
)
def test_backoff(attempt: int, rand: float, seconds: float) -> None:
    assert rules.backoff(attempt, POLICY, lambda: rand) == timedelta(seconds=seconds)


def test_failure_schedules_a_retry() -> None:
    out = rules.after_failure(RetryState(), NOW, POLICY, lambda: 1.0)
    assert not out.gave_up
    assert out.state == RetryState(attempt=1, first_failure_at=NOW, consecutive_failures=1)
    assert out.next_attempt_at == NOW + timedelta(seconds=10)


def test_gives_up_after_24_hours_and_fails() -> None:
    state = RetryState(
        attempt=30, first_failure_at=NOW - timedelta(hours=24), consecutive_failures=3
    )
    out = rules.after_failure(state, NOW, POLICY, lambda: 0.5)
    assert out.gave_up
    assert out.state.attempt == 0
    assert out.state.first_failure_at is None
    assert out.state.failing_since == NOW
    assert out.next_attempt_at == NOW  # the next event goes at once
    just_before = replace_first(state, NOW - timedelta(hours=24) + timedelta(seconds=1))
    assert not rules.after_failure(just_before, NOW, POLICY, lambda: 0.5).gave_up


def replace_first(state: RetryState, first: datetime) -> RetryState:
    return RetryState(
        attempt=state.attempt,
        first_failure_at=first,
        consecutive_failures=state.consecutive_failures,
    )


def test_breaker_opens_after_repeated_failures() -> None:
    state = RetryState(attempt=3, first_failure_at=NOW, consecutive_failures=4)
    out = rules.after_failure(state, NOW, POLICY, lambda: 0.0)
    assert out.state.breaker_open_until == NOW + timedelta(seconds=60)
    assert out.next_attempt_at == NOW + timedelta(seconds=60)
    assert rules.status(out.state.breaker_open_until, None) is Status.PAUSED
    # A failed probe opens it again; a later backoff longer than the cool-down wins.
    again = rules.after_failure(out.state, NOW, POLICY, lambda: 1.0)
    assert again.next_attempt_at == NOW + timedelta(seconds=160)  # attempt 5: 10 s × 2^4
    closed = rules.after_success(again.state)
    assert closed == RetryState()
    assert rules.status(closed.breaker_open_until, closed.failing_since) is Status.ACTIVE


def test_failing_outlasts_a_success_until_redelivery() -> None:
    state = RetryState(failing_since=NOW, consecutive_failures=7, breaker_open_until=NOW)
    assert rules.status(state.breaker_open_until, state.failing_since) is Status.FAILING
    after = rules.after_success(state)
    assert after == RetryState(failing_since=NOW)
    assert rules.status(after.breaker_open_until, after.failing_since) is Status.FAILING
