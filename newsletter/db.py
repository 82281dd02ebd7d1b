"""The database: declarative base, shared column types, engine and session factory, migrations.

Library functions take a ``Session`` as their first argument and never commit; whoever opens
the session (a CLI command, a web request, a task) owns the transaction::

    with session_scope(settings) as session:
        import_bulletin(session, text)
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Annotated, Any, cast

from sqlalchemy import (
    JSON,
    CursorResult,
    DateTime,
    Engine,
    Enum,
    MetaData,
    Result,
    String,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker

from newsletter.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class ExactDecimal(TypeDecorator[decimal.Decimal]):
    """A decimal kept exactly as written: "0.28490" comes back as Decimal("0.28490").

    Numeric columns would pad or trim the scale ("0.2849000000", "8E-5"); rates are shown as
    the desk gave them, so the text form is what is stored.
    """

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: decimal.Decimal | None, dialect: Any) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> decimal.Decimal | None:
        return None if value is None else decimal.Decimal(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        dt.datetime: UtcDateTime(),
        # Statuses are stored as their lower-case values in a VARCHAR (no PostgreSQL ENUM type),
        # so adding a status is a code change, not a schema migration.
        enum.Enum: Enum(
            enum.Enum,
            native_enum=False,
            create_constraint=False,
            length=32,
            values_callable=lambda members: [m.value for m in members],
        ),
        dict[str, Any]: JSON().with_variant(JSONB(), "postgresql"),
    }


# Shared column shapes: the same meaning is spelled the same way in every stage.
intpk = Annotated[int, mapped_column(primary_key=True)]


def affected_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (SQLAlchemy types execute() more loosely)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def insert_ignoring_duplicates(session: Session, model: type[Base]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the session's backend (SQLite or PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(model).on_conflict_do_nothing()
    return sqlite_insert(model).on_conflict_do_nothing()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; on SQLite with the pragmas and transaction handling we rely on."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite starts transactions on its own and mishandles SAVEPOINT; let SQLAlchemy
        # emit BEGIN itself (the recipe from SQLAlchemy's SQLite dialect documentation).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Any) -> None:
        # IMMEDIATE: take the write lock at the start, so two writers queue on the busy
        # timeout instead of one failing with "database is locked" when it upgrades.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@cache
def _engine_for(url: str) -> Engine:
    return create_database_engine(url)


def get_engine(settings: Settings) -> Engine:
    return _engine_for(settings.database_url)


def session_factory(settings: Settings) -> sessionmaker[Session]:
    return sessionmaker(get_engine(settings), expire_on_commit=False)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back when it raises."""
    with session_factory(settings).begin() as session:
        yield session


MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
