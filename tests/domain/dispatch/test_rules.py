"""Pure dispatch rules: the shared dispatch vectors and every number of DOMAIN.md §1–§2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.domain.dispatch import rules
from app.domain.dispatch.rules import Risk
from app.domain.store.rules import LatePenalty, effective_policy, platform_default
from tests.helpers import vector_cases

PLATFORMS = ("pdd", "taobao", "tmall", "douyin", "jd", "other")
T = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
S = timedelta(seconds=1)


def _cases() -> list[Any]:
    return [pytest.param(c, id=c["name"]) for c in vector_cases("dispatch")]


def _at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# ---------------------------------------------------------------------------------------------
# Shared vectors


@pytest.mark.parametrize("case", _cases())
def test_dispatch_vector(case: dict[str, Any]) -> None:
    policy = effective_policy(case["platform"], case["policy"])
    paid_at = _at(case["paid_at"])
    now = _at(case["now"])
    assert now is not None
    start = rules.clock_start(paid_at, case["group_buy"], _at(case["group_formed_at"]))
    due = rules.deadline(start, _at(case["promised_ship_by"]), policy)
    expect = case["expect"]
    if "deadline" in expect:
        assert due == _at(expect["deadline"])
    if due is None or start is None:
        assert expect.get("risk") is None
    else:
        if "risk" in expect:
            assert rules.risk(start, due, now, policy) == Risk(expect["risk"])
        if "seconds_left" in expect:
            assert rules.seconds_left(due, now) == expect["seconds_left"]
    if "penalty" in expect:
        accrued = rules.accrued_penalty(due, now, policy.late_penalty, Decimal(case["paid_amount"]))
        assert str(accrued) == expect["penalty"]


@pytest.mark.parametrize("case", _cases())
def test_vector_policies_are_the_platform_defaults(case: dict[str, Any]) -> None:
    """The vectors spell out each platform's default penalty; the defaults must agree."""
    given = case["policy"]["late_penalty"]
    default = platform_default(case["platform"]).late_penalty
    assert (default.rate, default.min, default.max) == (
        Decimal(given["rate"]),
        Decimal(given["min"]),
        Decimal(given["max"]),
    )


# ---------------------------------------------------------------------------------------------
# Platform defaults and overrides (DOMAIN.md §1)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_platform_has_the_same_clock_defaults(platform: str) -> None:
    p = platform_default(platform)
    assert (p.dispatch_hours, p.internal_target_hours, p.pickup_grace_hours) == (48, 24, 24)
    assert p.auto_complete_days == 10
    assert effective_policy(platform, {}) == p


@pytest.mark.parametrize(
    ("platform", "paid", "expected"),
    [
        ("pdd", "0.01", "3.00"),
        ("pdd", "59.90", "3.00"),
        ("pdd", "99999.00", "3.00"),
        ("taobao", "0.01", "5.00"),
        ("taobao", "20.00", "5.00"),
        ("taobao", "49.99", "5.00"),
        ("taobao", "50.00", "5.00"),
        ("taobao", "50.10", "5.01"),
        ("taobao", "300.00", "30.00"),
        ("taobao", "999.99", "100.00"),
        ("taobao", "1000.00", "100.00"),
        ("taobao", "2000.00", "100.00"),
        ("tmall", "20.00", "5.00"),
        ("tmall", "300.00", "30.00"),
        ("tmall", "2000.00", "100.00"),
        ("douyin", "0.01", "10.00"),
        ("douyin", "59.90", "10.00"),
        ("douyin", "5000.00", "10.00"),
        ("jd", "59.90", "0.00"),
        ("jd", "5000.00", "0.00"),
        ("other", "59.90", "0.00"),
    ],
)
def test_default_late_penalty(platform: str, paid: str, expected: str) -> None:
    policy = platform_default(platform)
    assert str(rules.penalty(policy.late_penalty, Decimal(paid))) == expected


@pytest.mark.parametrize(
    ("platform", "overrides", "field", "expected"),
    [
        ("pdd", {"dispatch_hours": 24}, "dispatch_hours", 24),
        ("pdd", {"internal_target_hours": 12}, "internal_target_hours", 12),
        ("taobao", {"pickup_grace_hours": 48}, "pickup_grace_hours", 48),
        ("jd", {"auto_complete_days": 7}, "auto_complete_days", 7),
        ("pdd", {"dispatch_hours": 72}, "internal_target_hours", 24),
        (
            "jd",
            {"late_penalty": {"rate": "0", "min": "2.00", "max": "2.00"}},
            "late_penalty",
            LatePenalty(Decimal("0"), Decimal("2.00"), Decimal("2.00")),
        ),
        # Field by field: an override of one penalty field keeps the others.
        (
            "taobao",
            {"late_penalty": {"max": "50.00"}},
            "late_penalty",
            LatePenalty(Decimal("0.10"), Decimal("5.00"), Decimal("50.00")),
        ),
        (
            "douyin",
            {"late_penalty": {"rate": 0.05, "min": 1, "max": "10.00"}},
            "late_penalty",
            LatePenalty(Decimal("0.05"), Decimal("1"), Decimal("10.00")),
        ),
    ],
)
def test_overrides(platform: str, overrides: dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(effective_policy(platform, overrides), field) == expected


def test_overridden_penalty_amounts() -> None:
    policy = effective_policy("taobao", {"late_penalty": {"max": "50.00"}})
    assert str(rules.penalty(policy.late_penalty, Decimal("2000.00"))) == "50.00"
    jd = effective_policy("jd", {"late_penalty": {"rate": "0", "min": "2.00", "max": "2.00"}})
    assert str(rules.penalty(jd.late_penalty, Decimal("59.90"))) == "2.00"


@pytest.mark.parametrize(
    ("rate", "paid", "expected"),
    [
        ("0.10", "123.45", "12.35"),  # 12.345: half up (half even would give 12.34)
        ("0.10", "50.05", "5.01"),  # 5.005
        ("0.10", "50.04", "5.00"),  # 5.004
        ("0.10", "0.05", "0.01"),  # 0.005
        ("0.10", "0.04", "0.00"),  # 0.004
        ("0.05", "0.10", "0.01"),  # 0.005
        ("0.035", "99.99", "3.50"),  # 3.49965
        ("0.15", "33.30", "5.00"),  # 4.995
    ],
)
def test_penalty_rounds_half_up_to_the_fen(rate: str, paid: str, expected: str) -> None:
    penalty = LatePenalty(Decimal(rate), Decimal("0"), Decimal("1000"))
    assert str(penalty.amount(Decimal(paid))) == expected


# ---------------------------------------------------------------------------------------------
# Clock start, deadline and risk (DOMAIN.md §2)


@pytest.mark.parametrize(
    ("paid_at", "group_buy", "formed_at", "expected"),
    [
        (T, False, None, T),
        (None, False, None, None),
        (T, True, None, None),
        (T, True, T + 10 * H, T + 10 * H),
        (None, True, T, None),
        (T + 2 * H, True, T, T + 2 * H),  # joined a group that had formed: payment starts it
    ],
)
def test_clock_start(
    paid_at: datetime | None,
    group_buy: bool,
    formed_at: datetime | None,
    expected: datetime | None,
) -> None:
    assert rules.clock_start(paid_at, group_buy, formed_at) == expected


@pytest.mark.parametrize(
    ("start", "promised", "overrides", "expected"),
    [
        (T, None, {}, T + 48 * H),
        (T, None, {"dispatch_hours": 24}, T + 24 * H),
        (T, T + 6 * H, {}, T + 6 * H),
        (T, T + 96 * H, {}, T + 96 * H),  # pre-sale: the promised time wins even when later
        (None, T + 6 * H, {}, None),
        (None, None, {}, None),
    ],
)
def test_deadline(
    start: datetime | None,
    promised: datetime | None,
    overrides: dict[str, Any],
    expected: datetime | None,
) -> None:
    assert rules.deadline(start, promised, effective_policy("pdd", overrides)) == expected


@pytest.mark.parametrize(
    ("due", "overrides", "expected"),
    [
        (T + 48 * H, {}, T + 24 * H),  # internal target
        (T + 24 * H, {}, T + 12 * H),  # half the window
        (T + 6 * H, {}, T + 3 * H),
        (T + 48 * H, {"internal_target_hours": 12}, T + 12 * H),
        (T + 96 * H, {}, T + 24 * H),
    ],
)
def test_at_risk_from(due: datetime, overrides: dict[str, Any], expected: datetime) -> None:
    assert rules.at_risk_from(T, due, effective_policy("pdd", overrides)) == expected


@pytest.mark.parametrize(
    ("elapsed", "expected", "left"),
    [
        (timedelta(0), Risk.ON_TRACK, 48 * 3600),
        (24 * H - S, Risk.ON_TRACK, 24 * 3600 + 1),
        (24 * H, Risk.AT_RISK, 24 * 3600),
        (48 * H - S, Risk.AT_RISK, 1),
        (48 * H, Risk.AT_RISK, 0),
        (48 * H + timedelta(microseconds=1), Risk.OVERDUE, -1),
        (48 * H + S, Risk.OVERDUE, -1),
        (50 * H, Risk.OVERDUE, -2 * 3600),
    ],
)
def test_risk_and_seconds_left(elapsed: timedelta, expected: Risk, left: int) -> None:
    policy = platform_default("pdd")
    due = T + 48 * H
    assert rules.risk(T, due, T + elapsed, policy) == expected
    assert rules.seconds_left(due, T + elapsed) == left


@pytest.mark.parametrize(
    ("now", "expected"),
    [(T + 48 * H - S, "0.00"), (T + 48 * H, "0.00"), (T + 48 * H + S, "3.00")],
)
def test_penalty_accrues_only_after_the_deadline(now: datetime, expected: str) -> None:
    pdd = platform_default("pdd").late_penalty
    assert str(rules.accrued_penalty(T + 48 * H, now, pdd, Decimal("59.90"))) == expected


def test_no_deadline_accrues_nothing() -> None:
    pdd = platform_default("pdd").late_penalty
    assert rules.accrued_penalty(None, T + 1000 * H, pdd, Decimal("59.90")) == Decimal("0.00")


# ---------------------------------------------------------------------------------------------
# Tracking numbers and carrier patterns (DOMAIN.md §2)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("A" * 8, True),
        ("1" * 8, True),
        ("a1B2c3D4", True),
        ("SF1234567890123", True),
        ("X" * 30, True),
        ("A" * 7, False),
        ("X" * 31, False),
        ("", False),
        ("SF-12345678", False),
        ("SF 12345678", False),
        ("SF12345678_", False),
        ("顺丰12345678", False),
        ("１２３４５６７８９", False),  # full-width digits are not ASCII digits
        ("ABCDEFGH\n", False),
    ],
)
def test_tracking_number_format(number: str, valid: bool) -> None:
    assert rules.is_valid_tracking_number(number) is valid


@pytest.mark.parametrize(
    ("carrier", "number", "matches"),
    [
        ("SF", "SF1234567890123", True),  # SF + 13 digits
        ("SF", "SFA123456789012", True),  # SF + letter/digit + 12 digits
        ("SF", "SF0123456789012", True),
        ("SF", "SF123456789012", False),  # 12 digits
        ("SF", "SF12345678901234", False),  # 14 digits
        ("SF", "YT1234567890123", False),
        ("YTO", "YT1234567890123", True),
        ("YTO", "YT123456789012", False),
        ("YTO", "SF1234567890123", False),
        ("JT", "JT1234567890123", True),
        ("JT", "JT12345678901234", False),
        ("ZTO", "73123456789012", True),
        ("ZTO", "78123456789012", True),
        ("ZTO", "72123456789012", False),
        ("ZTO", "79123456789012", False),
        ("ZTO", "7312345678901", False),
        ("OTHER", "ANYTHING123", True),
        ("UNKNOWN", "ANYTHING123", True),
    ],
)
def test_carrier_patterns(carrier: str, number: str, matches: bool) -> None:
    assert rules.tracking_matches_carrier(carrier, number) is matches


def test_a_carrier_mismatch_is_only_a_flag() -> None:
    """A number of valid shape that fits no SF pattern is still a valid tracking number."""
    number = "ZT12345678"
    assert rules.is_valid_tracking_number(number)
    assert not rules.tracking_matches_carrier("SF", number)


def test_every_carrier_of_the_contract_is_known() -> None:
    assert set(rules.CARRIERS) == {
        "SF",
        "ZTO",
        "YTO",
        "STO",
        "YD",
        "JT",
        "EMS",
        "JD",
        "DBL",
        "OTHER",
    }
    assert set(rules.CARRIER_PATTERNS) <= set(rules.CARRIERS)


# ---------------------------------------------------------------------------------------------
# Fake-shipment guard and auto-completion (DOMAIN.md §2)


@pytest.mark.parametrize(
    ("picked_up", "now", "grace", "expected"),
    [
        (None, T + 23 * H, 24, False),
        (None, T + 24 * H, 24, False),  # exactly at the limit: still within grace
        (None, T + 24 * H + timedelta(microseconds=1), 24, True),
        (None, T + 24 * H + S, 24, True),
        (T + 2 * H, T + 100 * H, 24, False),
        (T + 24 * H, T + 100 * H, 24, False),  # pickup exactly at the limit is in time
        (T + 24 * H + S, T + 100 * H, 24, True),  # picked up, but too late
        (T + 30 * H, T + 30 * H, 24, True),
        (None, T + 47 * H, 48, False),
        (None, T + 48 * H + S, 48, True),
        (T + 47 * H, T + 100 * H, 48, False),
    ],
)
def test_fake_shipment_risk(
    picked_up: datetime | None, now: datetime, grace: int, expected: bool
) -> None:
    assert rules.is_fake_shipment_risk(T, picked_up, now, grace) is expected


@pytest.mark.parametrize(
    ("delivered", "days", "expected"),
    [
        (None, 10, T + 10 * D),
        (T + 1 * D, 10, T + 4 * D),  # delivery + 3 days comes first
        (T + 7 * D, 10, T + 10 * D),  # both at once
        (T + 8 * D, 10, T + 10 * D),  # 10 days after shipment comes first
        (None, 7, T + 7 * D),
        (T + 2 * H, 7, T + 3 * D + 2 * H),
    ],
)
def test_auto_complete_at(delivered: datetime | None, days: int, expected: datetime) -> None:
    assert rules.auto_complete_at(T, delivered, days) == expected
