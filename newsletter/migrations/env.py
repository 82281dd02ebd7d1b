"""Alembic environment: runs the migrations in ``versions/`` against the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from newsletter import models  # noqa: F401 - registers every table on Base.metadata
from newsletter.db import Base

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
