"""Start-up steps shared by ``make run`` and the app's lifespan: database, migrations, admin key."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncSession

from alembic import command
from app.auth import new_secret
from app.config import PROJECT_ROOT, Settings
from app.domain.api_key.service import ensure_bootstrap_admin
from app.embedded_pg import EmbeddedPostgres, start

logger = logging.getLogger("storeops.bootstrap")

ADMIN_KEY_FILE = "admin_key"


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration of this project (optionally bound to ``url``)."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["configure_logger"] = False
    if url is not None:
        config.attributes["database_url"] = url
    return config


def migration_head() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def migrate(url: str) -> None:
    """``alembic upgrade head`` against ``url`` (blocking; call from a thread in async code)."""
    command.upgrade(alembic_config(url), "head")


def resolve_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The configured ``DATABASE_URL``, or an embedded server under ``data_dir``."""
    if settings.database_url:
        return settings.database_url, None
    embedded = start(settings.data_dir)
    return embedded.uri, embedded


def admin_secret(settings: Settings) -> tuple[str, Path | None]:
    """``STOREOPS_ADMIN_KEY``, else a key generated once and kept in ``data_dir/admin_key``."""
    if settings.admin_key:
        return settings.admin_key, None
    path = settings.data_dir / ADMIN_KEY_FILE
    if path.exists():
        return path.read_text().strip(), path
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = new_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret, path


async def ensure_admin_key(session: AsyncSession, secret: str) -> None:
    """Create or keep the bootstrap admin key."""
    await ensure_bootstrap_admin(session, secret)
    await session.commit()
