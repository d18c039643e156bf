"""Settings, read from the environment (prefix ``STOREOPS_``; ``DATABASE_URL`` as is)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_ORIGIN_RE = re.compile(r"https?://[^/\s?#]+")


class Settings(BaseSettings):
    """Every setting of the service; the README lists them."""

    model_config = SettingsConfigDict(env_prefix="STOREOPS_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "STOREOPS_DATABASE_URL"),
        description="PostgreSQL URL; unset means an embedded server under data_dir.",
    )
    data_dir: Path = Field(default=PROJECT_ROOT / ".storeops")
    admin_key: str | None = Field(default=None, min_length=16)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    sweep_enabled: bool = True
    metrics_enabled: bool = True
    access_log: bool = True
    log_level: str = "INFO"
    idempotency_ttl_hours: int = Field(default=24, ge=24)
    auth_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    # 40 kept connections and no overflow: an overflow connection is closed as soon as it is
    # returned, so under steady load above the pool size every request paid for a new
    # PostgreSQL backend (bench intake-single: postgres CPU per order went from unmeasurable
    # churn to 0.83x the raw transaction's). Same ceiling of 40 per process as 20 + 20 before.
    db_pool_size: int = Field(default=40, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_connect_timeout_seconds: float = Field(default=1.5, gt=0, le=60)
    db_pool_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    db_statement_timeout_seconds: float = Field(default=30.0, ge=0)
    db_idle_in_transaction_timeout_seconds: float = Field(default=15.0, ge=0)

    # Request bounds (issue 7 item 3): 8 MiB holds a full 1,000-order bulk batch many times.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    # Browsers (issue 8 item 7): origins allowed to call the API; none by default. NoDecode:
    # pydantic-settings would read a list from the environment as JSON (PITFALLS.md).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Webhooks (issue 11; docs/webhooks.md). Every process delivers; work is leased per
    # subscription in PostgreSQL, so replicas never send one attempt twice.
    webhook_worker_enabled: bool = True
    # "process": a spawned child process delivers (its own GIL: busy request handling does
    # not starve it); "thread": a thread of the API process (tests, one-core machines).
    webhook_worker_mode: Literal["process", "thread"] = "process"
    webhook_poll_seconds: float = Field(default=0.25, gt=0, le=60)
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_give_up_seconds: float = Field(default=86400.0, gt=0)
    webhook_breaker_failures: int = Field(default=5, ge=1)
    webhook_breaker_cooldown_seconds: float = Field(default=60.0, gt=0)
    webhook_batch_size: int = Field(default=100, ge=1, le=1000)
    webhook_delivery_log_days: int = Field(default=7, ge=1)
    # Hosts webhook URLs may name (comma-separated, exact host names or IPs); empty = any.
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(h).strip().lower() for h in value if str(h).strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # ``https://a.example,https://b.example``; blanks and a trailing slash are dropped
        # (browsers send an origin without one, and a mismatch would refuse every request).
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            origins = [str(o).strip().rstrip("/") for o in value if str(o).strip()]
            # An origin without its scheme (``ops.example.com``) would never match a browser's
            # ``Origin``: refuse it at start rather than refuse every request.
            bad = [o for o in origins if o != "*" and not _ORIGIN_RE.fullmatch(o)]
            if bad:
                raise ValueError(f"not an origin (scheme://host[:port]): {', '.join(bad)}")
            return origins
        return value


def to_async_url(url: str) -> str:
    """Rewrite a ``postgresql://`` URL for SQLAlchemy's asyncpg dialect."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('://', 1)[0]}://…")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
