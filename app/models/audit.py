"""Audit trail: who changed what, when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from app.models._types import created_at_column, id_column


class AuditEntry(SQLModel, table=True):
    """One administrative change, with the key that made it."""

    __tablename__ = "audit_entries"
    __table_args__ = (sa.Index("ix_audit_entries_store_id_id", "store_id", "id"),)

    id: int | None = Field(default=None, sa_column=id_column())
    api_key_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    store_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    action: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    resource_type: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    resource_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    data: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=sa.Column(pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    at: datetime | None = Field(default=None, sa_column=created_at_column())
