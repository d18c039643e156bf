"""API keys: only a SHA-256 of the secret is stored."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from app.models._types import created_at_column, id_column


class ApiKey(SQLModel, table=True):
    """A bearer credential with a role and a store scope (``store_ids`` null = all stores)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        sa.CheckConstraint(
            "role IN ('admin', 'operator', 'warehouse', 'integration')", name="ck_api_keys_role"
        ),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    role: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    store_ids: list[int] | None = Field(
        default=None, sa_column=sa.Column(pg.ARRAY(sa.BigInteger), nullable=True)
    )
    secret_hash: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    secret_prefix: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_by: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    created_at: datetime | None = Field(default=None, sa_column=created_at_column())
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
