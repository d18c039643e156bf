"""Snapshot planning (DOMAIN.md §2 transitions), table-tested."""

from __future__ import annotations

import pytest

from app.domain.marketplace.rules import Ours, Step, SyncConflict, Theirs, plan, same_lines

P, A, S, D, C, X = (
    "pending_payment",
    "awaiting_shipment",
    "shipped",
    "delivered",
    "completed",
    "cancelled",
)


def ours(
    status: str,
    *,
    group: bool = False,
    formed: bool = False,
    hold: bool = False,
    tracking: str | None = None,
) -> Ours:
    return Ours(status, group, formed, hold, tracking)


@pytest.mark.parametrize(
    ("current", "target", "steps"),
    [
        (ours(P), P, []),
        (ours(P), A, [Step.PAY]),
        (ours(A), A, []),
        (ours(P), S, [Step.PAY, Step.SHIP]),
        (ours(P), C, [Step.PAY, Step.SHIP, Step.DELIVER, Step.COMPLETE]),
        (ours(A), D, [Step.SHIP, Step.DELIVER]),
        (ours(S), D, [Step.DELIVER]),
        (ours(D), C, [Step.COMPLETE]),
        (ours(C), C, []),
        (ours(A, group=True), "group_pending", []),
        (ours(P, group=True), "group_pending", [Step.PAY]),
        (ours(A, group=True), A, [Step.GROUP_FORMED]),
        (ours(P, group=True), A, [Step.PAY, Step.GROUP_FORMED]),
        (ours(A, group=True), "group_failed", [Step.GROUP_FAILED]),
        (ours(A), "refund_pending", [Step.HOLD]),
        (ours(P), "refund_pending", [Step.PAY, Step.HOLD]),
        (ours(A, hold=True), "refund_pending", []),
        (ours(A, hold=True), A, [Step.RELEASE]),
        (ours(A, hold=True), S, [Step.RELEASE, Step.SHIP]),
        (ours(A, hold=True), X, [Step.CANCEL]),
        (ours(S), "refund_pending", []),
        (ours(A), X, [Step.CANCEL]),
        (ours(P), X, [Step.CANCEL]),
        (ours(X), X, []),
        (ours(X), "group_failed", []),
    ],
)
def test_plan(current: Ours, target: str, steps: list[Step]) -> None:
    assert plan(current, Theirs(target)) == steps


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (ours(S), A),  # backwards
        (ours(A), P),
        (ours(C), D),
        (ours(S), X),  # cannot cancel a shipped order
        (ours(X), A),
        (ours(A), "group_failed"),  # not a group buy
        (ours(A, group=True, formed=True), "group_pending"),
        (ours(A, group=True, formed=True), "group_failed"),
        (ours(A), "group_pending"),
    ],
)
def test_plan_conflicts(current: Ours, target: str) -> None:
    with pytest.raises(SyncConflict):
        plan(current, Theirs(target))


def test_other_tracking_number_conflicts() -> None:
    with pytest.raises(SyncConflict):
        plan(ours(S, tracking="73100000000001"), Theirs(S, "73100000000002"))
    assert plan(ours(S, tracking="YT1234567890123"), Theirs(S, "yt1234567890123")) == []


def test_same_lines() -> None:
    mine = [(5, "A", 2, "59.80")]
    assert same_lines(mine, [(5, None, 2, "59.80")])
    assert same_lines(mine, [(None, "A", 2, "59.80")])
    assert not same_lines(mine, [(5, None, 3, "59.80")])
    assert not same_lines(mine, [(6, None, 2, "59.80")])
    assert not same_lines(mine, [(5, None, 2, "59.90")])
    assert not same_lines(mine, [])
