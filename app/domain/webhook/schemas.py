"""Request and response shapes of webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.domain.events.service import EVENT_TYPES
from app.domain.types import NO_CONTROL_CHARS, Id
from app.domain.webhook.rules import MAX_URL_LENGTH, Status

EventType = Annotated[
    str,
    Field(max_length=100),
    # Documented as the known types; an unknown one is answered as `unknown_event_type`.
    WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)}),
]


class WebhookCreate(BaseModel):
    """A new subscription: events of these types (in these stores) POSTed to ``url``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://erp.example.com/storeops/hooks",
                    "events": ["order.created", "order.shipped"],
                    "secret": "whsec_4f1c2b9a7d3e8f60",
                    "store_ids": ["1"],
                }
            ]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="An http(s) URL without credentials; redirects are not followed.",
        examples=["https://erp.example.com/storeops/hooks"],
        # Documented only: the service checks the URL itself, to say what is wrong with it.
        json_schema_extra={"format": "uri", "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s@#/?]+"},
    )
    events: list[EventType] = Field(
        min_length=1, max_length=100, description="Event types to deliver (at least one)."
    )
    secret: str = Field(
        min_length=16,
        max_length=256,
        pattern=NO_CONTROL_CHARS,
        description="Signing secret (at least 16 characters). Never returned, not even now.",
    )
    store_ids: list[Id] | None = Field(
        default=None,
        max_length=1000,
        description="Only events of these stores; null (the default) for every store.",
    )


class WebhookPublic(BaseModel):
    """A subscription and where its delivery stands (never with its secret)."""

    id: Id
    url: str
    events: list[str]
    store_ids: list[Id] | None
    status: Status = Field(
        description="`active`; `paused` while the circuit breaker is open (or waiting for "
        "its probe); `failing` once an event was given up, until a delivery succeeds."
    )
    last_delivered_event_id: Id | None = Field(description="Last event delivered (2xx).")
    last_delivered_at: datetime | None
    pending_event_id: Id | None = Field(
        description="The event being retried, if the last attempt failed."
    )
    failed_attempts: int = Field(description="Failed attempts at the pending event.")
    next_attempt_at: datetime | None = Field(
        description="When the pending event is tried next (null when nothing waits)."
    )
    paused_until: datetime | None = Field(
        description="While `paused`: when the breaker lets one probe delivery through."
    )
    failing_since: datetime | None = Field(
        description="While `failing`: when the first event was given up (skipped)."
    )
    first_skipped_event_id: Id | None = Field(
        description="The oldest event given up since the last redelivery: redeliver from it."
    )
    created_at: datetime


class DeliveryPublic(BaseModel):
    """One attempt to deliver one event."""

    id: Id
    event_id: Id
    event_type: str
    attempt: int = Field(description="1 for the first attempt at the event, then 2, 3, …")
    response_status: int | None = Field(description="HTTP status; null if none came back.")
    error: str | None = Field(description="Why the attempt failed; null on success.")
    duration_ms: int
    attempted_at: datetime


class RedeliverRequest(BaseModel):
    """Where a replay starts."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"from_event_id": "1200"}]}
    )

    from_event_id: Id = Field(
        description="Deliver this event (if the subscription wants it) and every later one again."
    )
