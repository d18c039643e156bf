"""Shapes of the event feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.domain.types import Id


class EventPublic(BaseModel):
    """One event of the durable feed."""

    id: Id
    type: str = Field(examples=["order.created"])
    store_id: Id | None
    occurred_at: datetime
    data: dict[str, Any] = Field(examples=[{"order_id": "981", "external_id": "PDD2611110001"}])


class EventPage(BaseModel):
    """A page of the feed; pass ``next_cursor`` (an event id) as ``after`` to continue."""

    items: list[EventPublic]
    next_cursor: str | None = Field(
        description="Id of the page's last event when more follow; null once caught up "
        "(poll later with `after` = the last id you processed)."
    )
