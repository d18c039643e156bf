"""Request and response shapes of tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.domain.ticket.rules import Author, Outcome, Priority, SlaState, TicketStatus, TicketType
from app.domain.types import NO_CONTROL_CHARS, NO_NUL, Id, Instant, NonNegativeMoney, Text

ExternalId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
AgentName = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARS)]
Body = Annotated[str, Field(min_length=1, max_length=10_000, pattern=NO_NUL)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value


class CustomerIn(BaseModel):
    """The buyer who opened the request."""

    model_config = ConfigDict(extra="forbid")

    name: Text
    contact: Text | None = None


class TicketCreate(BaseModel):
    """A new ticket (idempotent on ``store_id`` + ``external_id`` when given)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "store_id": "1",
                    "order_id": "981",
                    "type": "refund",
                    "subject": "退款：茶叶受潮",
                    "body": "收到的茶叶受潮了，要求退款。",
                    "customer": {"name": "张三", "contact": "13800138000"},
                    "opened_at": "2026-11-11T12:00:00+08:00",
                    "external_id": "PDD-AS-2611110001",
                }
            ]
        },
    )

    store_id: Id
    order_id: Id | None = None
    type: TicketType
    subject: Text
    body: Body
    priority: Priority | None = Field(default=None, description="Default by type (DOMAIN.md §4).")
    customer: CustomerIn | None = None
    opened_at: Instant | None = Field(
        default=None, description="When the buyer opened it on the platform (default now)."
    )
    external_id: ExternalId | None = Field(
        default=None, description="The platform's after-sales number: intake is idempotent."
    )

    _check_body = field_validator("body")(_not_blank)


class MessageIn(BaseModel):
    """A message on the thread; the first ``agent`` message is the first response."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"author": "agent", "agent": "小李", "body": "您好，已为您登记退款。"}]
        },
    )

    author: Author
    body: Body
    agent: AgentName | None = Field(default=None, description="The agent's name.")

    _check_body = field_validator("body")(_not_blank)


class AssignIn(BaseModel):
    """Give the ticket to an agent."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"agent": "小李"}]})

    agent: AgentName


class TicketUpdate(BaseModel):
    """Change priority or subject (``If-Match``); a priority change recomputes the dues."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"priority": "urgent"}]}
    )

    priority: Priority | None = None
    subject: Text | None = None


class ResolveIn(BaseModel):
    """How the ticket was resolved; a refund is recorded on its order."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"outcome": "refunded", "refund_amount": "59.90", "note": "部分退款"},
                {"outcome": "claim_filed", "compensation_amount": "20.00"},
            ]
        },
    )

    outcome: Outcome
    refund_amount: NonNegativeMoney | None = Field(
        default=None, description="Only with outcome `refunded`; at most what is left to refund."
    )
    compensation_amount: NonNegativeMoney | None = Field(
        default=None, description="Paid to the buyer besides a refund (e.g. lost parcel)."
    )
    restock: bool | None = Field(
        default=None,
        strict=True,
        description="return_refund: the goods came back; a `return` movement per line.",
    )
    note: Annotated[str, Field(max_length=2000, pattern=NO_NUL)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ResolveIn:
        if self.outcome is Outcome.REFUNDED:
            if self.refund_amount is None or self.refund_amount <= 0:
                raise ValueError("outcome refunded needs a refund_amount above 0.00")
        elif self.refund_amount is not None:
            raise ValueError("refund_amount goes only with outcome refunded")
        if self.outcome is Outcome.COMPENSATED and not self.compensation_amount:
            raise ValueError("outcome compensated needs a compensation_amount above 0.00")
        return self


class MessageOut(BaseModel):
    """One message of the thread."""

    id: Id
    author: Author
    agent: str | None
    body: str
    api_key_id: Id | None = Field(description="The key that wrote it.")
    created_at: datetime


class TicketPublic(BaseModel):
    """A ticket with its SLA state computed at read time, and its whole thread."""

    id: Id
    store_id: Id
    order_id: Id | None
    external_id: str | None
    type: TicketType
    priority: Priority
    status: TicketStatus
    subject: str
    assignee: str | None
    customer: CustomerIn | None
    opened_at: datetime
    first_response_due: datetime
    first_response_at: datetime | None
    resolution_due: datetime
    resolved_at: datetime | None
    sla_state: SlaState
    outcome: Outcome | None
    refund_amount: NonNegativeMoney | None
    compensation_amount: NonNegativeMoney | None
    restock: bool | None
    reopen_count: int
    escalated_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    messages: list[MessageOut]
