"""Which transitions lead from our order to the platform's snapshot (pure; table-tested).

DOMAIN.md §2 states ``pending_payment → awaiting_shipment → shipped → delivered →
completed`` (+ ``cancelled`` before shipment). A snapshot names where the platform is; the
plan is the ordered list of our own transitions that gets the order there, or a
:class:`SyncConflict` when the snapshot is behind us or contradicts us.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Step(StrEnum):
    """One of the order's own transitions (app/domain/order)."""

    PAY = "pay"
    GROUP_FORMED = "group_formed"
    GROUP_FAILED = "group_failed"
    HOLD = "hold"  # platform refund in progress (orders.platform_refund_pending)
    RELEASE = "release"
    CANCEL = "cancel"
    SHIP = "ship"  # a shipment made elsewhere, recorded
    DELIVER = "deliver"
    COMPLETE = "complete"


class SyncConflict(Exception):
    """The snapshot goes backwards or contradicts the order; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Ours:
    """What the plan needs of our order."""

    status: str
    group_buy: bool
    group_formed: bool
    refund_hold: bool
    tracking_number: str | None = None


@dataclass(frozen=True, slots=True)
class Theirs:
    """What the plan needs of the snapshot."""

    platform_status: str
    tracking_number: str | None = None


_RANK = {
    "pending_payment": 0,
    "awaiting_shipment": 1,
    "group_pending": 1,
    "refund_pending": 1,
    "shipped": 2,
    "delivered": 3,
    "completed": 4,
}
_ENDED = ("cancelled", "group_failed")
_OPEN = ("pending_payment", "awaiting_shipment")


def plan(ours: Ours, theirs: Theirs) -> list[Step]:
    """The transitions from ``ours`` to ``theirs``, in order (empty: already there)."""
    target = theirs.platform_status
    if ours.status == "cancelled":
        if target in _ENDED:
            return []
        raise SyncConflict("the order is cancelled here")
    if target in _ENDED:
        if ours.status not in _OPEN:
            raise SyncConflict(f"the order is {ours.status} here; it can no longer be cancelled")
        if target == "group_failed":
            if not ours.group_buy:
                raise SyncConflict("the order is not a group buy here")
            if ours.group_formed:
                raise SyncConflict("the group formed here")
            return [Step.GROUP_FAILED]
        return [Step.CANCEL]
    have, want = _RANK[ours.status], _RANK[target]
    if target == "refund_pending" and have >= 2:
        return []  # a refund after shipment is an after-sales matter (tickets), not a hold
    if want < have:
        raise SyncConflict(f"the snapshot goes backwards ({ours.status} here)")
    if target == "group_pending":
        if not ours.group_buy:
            raise SyncConflict("the order is not a group buy here")
        if ours.group_formed:
            raise SyncConflict("the group formed here")
    steps: list[Step] = []
    if have == 0 and want >= 1:
        steps.append(Step.PAY)
    if ours.group_buy and not ours.group_formed and want >= 1 and target != "group_pending":
        steps.append(Step.GROUP_FORMED)
    hold = target == "refund_pending"
    if have <= 1 and hold != ours.refund_hold:
        steps.append(Step.HOLD if hold else Step.RELEASE)
    if want >= 2:
        if have < 2:
            steps.append(Step.SHIP)
        elif (
            theirs.tracking_number is not None
            and ours.tracking_number is not None
            and theirs.tracking_number.strip().upper() != ours.tracking_number
        ):
            raise SyncConflict(
                f"shipped here with tracking number {ours.tracking_number}, "
                f"not {theirs.tracking_number}"
            )
    if want >= 3 and have < 3:
        steps.append(Step.DELIVER)
    if want >= 4 and have < 4:
        steps.append(Step.COMPLETE)
    return steps


def same_lines(
    ours: list[tuple[int, str, int, str]], theirs: list[tuple[int | None, str | None, int, str]]
) -> bool:
    """Whether the snapshot's lines are ours: per line, the SKU (by id or code), quantity
    and unit price (``"59.80"``), in order."""
    if len(ours) != len(theirs):
        return False
    for (sku_id, code, qty, price), (t_id, t_code, t_qty, t_price) in zip(
        ours, theirs, strict=True
    ):
        if qty != t_qty or price != t_price:
            return False
        if (t_id is not None and t_id != sku_id) or (t_code is not None and t_code != code):
            return False
    return True
