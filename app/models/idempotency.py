"""Stored responses for ``Idempotency-Key`` replays."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models._types import created_at_column


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a key, committed with the change it describes."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.Index("ix_idempotency_keys_created_at", "created_at"),)

    api_key_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    method: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    path: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    fingerprint: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    response_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    response_body: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary))
    response_media_type: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
