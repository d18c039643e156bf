"""Request and response shapes of API keys."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.auth import Role
from app.domain.types import Id, Text


class ApiKeyCreate(BaseModel):
    """A new key: ``store_ids`` null means every store."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "warehouse app 仓库", "role": "warehouse", "store_ids": ["1"]}]
        },
    )

    name: Text
    role: Role
    store_ids: list[Id] | None = Field(default=None, max_length=1000)


class ApiKeyPublic(BaseModel):
    """A key as listed (never with its secret)."""

    id: Id
    name: str
    role: Role
    store_ids: list[Id] | None
    secret_prefix: str = Field(description="First characters of the secret, to recognise it.")
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyPublic):
    """A new key, with its secret: shown this once, only a hash is stored."""

    secret: str | None = Field(
        examples=["sk_4dT0…"],
        description="The secret, in the first response only. A replay of the request with "
        "the same `Idempotency-Key` returns the key with `secret: null` (it is not kept).",
    )
