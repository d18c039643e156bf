"""Listeners for allocation changes, so orders can follow their reservations.

The inventory domain decides who gets stock (backorders by earliest deadline; stocktake
shortfalls from the latest deadline); the orders domain registers a listener to update
order allocation and emit ``order.allocated``, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class AllocationChange:
    """Reserved quantity of one reservation went up (allocated) or down (taken back)."""

    reservation_id: int
    line_ref: str
    order_id: int | None
    sku_id: int
    delta: int
    reserved: int
    requested: int

    @property
    def complete(self) -> bool:
        """Whether the line is now fully reserved."""
        return self.reserved == self.requested


Listener = Callable[[AsyncSession, Sequence[AllocationChange]], Awaitable[None]]
_listeners: list[Listener] = []


def on_allocation_change(listener: Listener) -> Listener:
    """Register ``listener`` (usable as a decorator)."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


async def notify(session: AsyncSession, changes: Sequence[AllocationChange]) -> None:
    """Tell every listener, in the caller's transaction."""
    if changes:
        for listener in list(_listeners):
            await listener(session, changes)
