"""The migrations and the table classes describe the same schema."""

from __future__ import annotations

from alembic import command
from app.bootstrap import alembic_config


def test_models_match_migrations(database_url: str) -> None:
    command.check(alembic_config(database_url))
