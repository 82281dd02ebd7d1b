"""The database: declarative base, shared column types, engine and session factory, migrations.

Library functions take a ``Session`` as their first argument and never commit; whoever opens
the session (a CLI command, a web request, a task) owns the transaction::

    with session_scope(settings) as session:
        import_bulletin(session, text)

The engine translates the database's own errors into ours where they happen (a
``handle_error`` hook calling ``db_errors.translate_error``): a full disk, a locked or
read-only file, a server that refuses connections or a database that does not exist reach the
caller as ``StorageError``, ``DatabaseUnavailable``, ``ConfigError`` or ``SchemaOutOfDate``
naming the database, never as ``sqlalchemy.exc.*``. ``ensure_schema`` is what a command calls
first.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast
from urllib.parse import quote

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
    exc,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker

from newsletter.config import Settings
from newsletter.db_errors import describe, sqlite_path, translate_error
from newsletter.errors import ConfigError, NotFound, SchemaOutOfDate

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

# What a library function that must commit as it goes (an import, a batch at a time; a
# receiver, a message at a time) takes from its caller instead of opening sessions itself:
# each call opens one transaction, committed when the block ends (``sessionmaker.begin``).
SessionFactory = Callable[[], AbstractContextManager[Session]]


ModelT = TypeVar("ModelT", bound=Base)


def get_or_raise(
    session: Session,
    model: type[ModelT],
    key: Any,
    message: str,
    *,
    with_for_update: bool = False,
) -> ModelT:
    """The row of ``model`` with primary key ``key``, or ``NotFound(message)``.

    ``with_for_update``: lock the row until the transaction ends (two workers given the same
    id take turns).
    """
    found = session.get(model, key, with_for_update=with_for_update)
    if found is None:
        raise NotFound(message)
    return found


def affected_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (SQLAlchemy types execute() more loosely)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def insert_ignoring_duplicates(session: Session, model: type[Base]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the session's backend (SQLite or PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(model).on_conflict_do_nothing()
    return sqlite_insert(model).on_conflict_do_nothing()


def utcnow() -> dt.datetime:
    """The one clock of the service: aware UTC. Code that needs time takes a ``Clock``
    (default this one), so a test can pass its own."""
    return dt.datetime.now(dt.UTC)


Clock = Callable[[], dt.datetime]


def create_database_engine(url: str, *, readonly: bool = False) -> Engine:
    """An engine for ``url``; on SQLite with the pragmas and transaction handling we rely on.

    ``readonly``: for commands that only read. They never write (PostgreSQL: read-only
    transactions; SQLite: the file opened read-only), so they work on a file or a standby they
    may not write, and they take no write lock on SQLite.
    """
    if not url.startswith("sqlite"):
        # A connection beyond pool_size is closed when it is returned, so a pool smaller than
        # the threads using it reconnects all the time: the web app's one-click POST went from
        # 340 to 615 requests/s with room for every thread (docs/benchmarks.md, "One-click
        # unsubscribe").
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        _translate_errors(engine, url)
        return engine.execution_options(postgresql_readonly=True) if readonly else engine
    engine = create_engine(
        _read_only_sqlite_url(url) if readonly else url, connect_args={"timeout": 30}
    )

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite starts transactions on its own and mishandles SAVEPOINT; let SQLAlchemy
        # emit BEGIN itself (the recipe from SQLAlchemy's SQLite dialect documentation).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if readonly:
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Any) -> None:
        # IMMEDIATE: take the write lock at the start, so two writers queue on the busy
        # timeout instead of one failing with "database is locked" when it upgrades. A reader
        # takes no lock: in WAL mode it reads its snapshot beside the writer.
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    _translate_errors(engine, url)
    return engine


def _read_only_sqlite_url(url: str) -> URL | str:
    """``url`` as a read-only SQLite URI (``file:…?mode=ro``).

    A WAL database needs its ``-shm`` file even to be read. When that file is absent and the
    directory is not ours to write, SQLite cannot create it, so the file is opened as
    immutable: no process has the database open then (the last one to close it removed the
    ``-shm``), and a reader that sees a write begin half-way gets at worst an odd report.
    """
    path = sqlite_path(url)
    if path is None:
        return url  # in memory: nothing on disk to protect
    query = {"mode": "ro", "uri": "true"}
    if not os.access(path.parent, os.W_OK) and not Path(f"{path}-shm").exists():
        query["immutable"] = "1"
    return URL.create("sqlite", database="file:" + quote(str(path)), query=query)


def _translate_errors(engine: Engine, url: str) -> None:
    @event.listens_for(engine, "handle_error")
    def _handle_error(context: ExceptionContext) -> None:
        if context.is_pre_ping:
            return  # the pool is testing a connection; it reconnects on its own
        translated = translate_error(
            context.sqlalchemy_exception or context.original_exception, url
        )
        if translated is not None:
            raise translated from context.sqlalchemy_exception


@cache
def _engine_for(url: str, readonly: bool = False) -> Engine:
    return create_database_engine(url, readonly=readonly)


def get_engine(settings: Settings, *, readonly: bool = False) -> Engine:
    return _engine_for(settings.database_url, readonly)


def session_factory(settings: Settings, *, readonly: bool = False) -> sessionmaker[Session]:
    return sessionmaker(get_engine(settings, readonly=readonly), expire_on_commit=False)


@contextmanager
def session_scope(settings: Settings, *, readonly: bool = False) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back when it raises.

    ``readonly``: a transaction that cannot write (see ``create_database_engine``).
    """
    with session_factory(settings, readonly=readonly).begin() as session:
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

    try:
        command.upgrade(alembic_config(url), revision)
    except exc.DBAPIError as error:
        # Alembic runs on an engine of its own, so its errors are translated here.
        translated = translate_error(error, url)
        if translated is None:
            raise
        raise translated from error


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def ensure_schema(settings: Settings, *, writes: bool) -> str | None:
    """Make sure the database has the schema this version needs; say what was done, if anything.

    Embedded (a SQLite file): a command that writes creates the file and its schema, or
    upgrades an older schema, and the sentence returned says so. A command that only reads
    (``writes=False``) changes nothing: no file is created, an old schema is not upgraded.

    PostgreSQL is never migrated behind an operator's back (several hosts share it, and an
    upgrade is a decision): a schema that is behind raises ``SchemaOutOfDate`` naming both
    revisions and ``newsletter db upgrade``.
    """
    url = settings.database_url
    head = head_revision()
    path = sqlite_path(url)
    if path is not None:
        if not path.parent.is_dir():
            raise ConfigError(
                f"NEWSLETTER_DATABASE_URL: the directory {path.parent} of the SQLite file "
                "does not exist"
            )
        if not path.exists():
            if not writes:
                raise NotFound(
                    f"there is no database at {path} yet: nothing has been stored (the first "
                    "command that stores something creates it)"
                )
            upgrade(url)
            return f"created the database {path} (schema revision {head})"
    current = current_revision(get_engine(settings, readonly=not writes))
    if current == head:
        return None
    known = current is None or _is_known_revision(current)
    if path is not None and writes and known:
        upgrade(url)
        if current is None:
            return f"created the schema in the database {path} (revision {head})"
        return f"upgraded the database {path} from schema revision {current} to {head}"
    if current is None:
        raise SchemaOutOfDate(
            f"the database {describe(url)} has no schema yet: run `newsletter db upgrade`"
        )
    if not known:
        raise SchemaOutOfDate(
            f"the database schema is at revision {current}, which this version does not know "
            f"(it needs {head}): was it upgraded by a newer version of newsletter?"
        )
    raise SchemaOutOfDate(
        f"the database schema is at revision {current}, this version needs {head}: "
        "run `newsletter db upgrade`"
    )


def _is_known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return (
            ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
            is not None
        )
    except CommandError:
        return False
