"""The Alembic migrations build exactly the tables the models describe, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from newsletter.db import alembic_config, current_revision, head_revision, upgrade


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    # database_url is migrated to head by its fixture; check() fails on any difference.
    command.check(alembic_config(database_url))


def test_upgrade_is_idempotent_and_reaches_head(database_url: str) -> None:
    upgrade(database_url)
    engine = sa.create_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrations_run_down_and_up_again_on_an_empty_database(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/roundtrip.db"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    upgrade(url)
    engine = sa.create_engine(url)
    try:
        assert "deliveries" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
