"""The database's errors in our words: ``translate_error`` (called by the engine's hook in
``newsletter.db``, and around Alembic, which runs on an engine of its own).

Only what a user or an operator can act on is translated, each into one sentence naming the
database (its file, or host, port and database; never a password):

- a full disk or an I/O error → ``StorageError`` (nothing of the command was stored);
- a server that refuses or drops connections, a locked file → ``DatabaseUnavailable``;
- a database, role or host that does not exist, a refused login, a read-only file for a
  command that writes, a directory that does not exist → ``ConfigError``;
- a table or column that is missing → ``SchemaOutOfDate``;
- a value the database refuses (too long, a NUL byte) → ``InvalidInput``; validation should
  have refused it first, this keeps the two databases saying the same thing if it did not.

Anything else (a syntax error, a constraint nobody expected) is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import exc, make_url

from newsletter.errors import (
    ConfigError,
    DatabaseUnavailable,
    InvalidInput,
    NewsletterError,
    SchemaOutOfDate,
    StorageError,
)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite ``url`` (absolute), or None for PostgreSQL or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


def describe(url: str) -> str:
    """How an error names the database: its file, or ``host:port/database``, no password."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return parsed.render_as_string(hide_password=True)
    host, port = parsed.host or "localhost", parsed.port or 5432
    return f"PostgreSQL at {host}:{port}, database {parsed.database!r}"


# Fragments of the messages that say the setting is wrong, not that the server is down: a
# database, role or host that does not exist, a refused login. Connection errors carry no
# SQLSTATE, so the text is all there is.
_WRONG_SETTING = (
    "does not exist",
    "password authentication failed",
    "no pg_hba.conf entry",
    "failed to resolve host",
    "could not translate host name",
    "invalid dsn",
    "invalid connection option",
)


def translate_error(error: BaseException, url: str) -> NewsletterError | None:
    """Our error for what the database driver raised, or None when it is a bug of ours.

    Only the conditions a user or an operator can act on are translated; anything else (a
    syntax error, a constraint we did not expect) keeps its traceback for ``--debug``.
    """
    where = describe(url)
    original = getattr(error, "orig", None) or error
    text = str(original).strip()
    first_line = text.splitlines()[0] if text else type(original).__name__
    lowered = text.lower()
    sqlstate = getattr(original, "sqlstate", None) or ""
    if isinstance(error, exc.DataError) or sqlstate.startswith("22"):
        return InvalidInput(f"the database refused a value: {first_line}")
    if "no such table" in lowered or "no such column" in lowered or sqlstate in ("42P01", "42703"):
        return SchemaOutOfDate(
            f"the schema of the database {where} does not match this version ({first_line}): "
            "run `newsletter db upgrade`"
        )
    if url.startswith("sqlite"):
        return _sqlite_error(lowered, where, first_line)
    if sqlstate == "25006":  # a standby, or a transaction of a command that only reads
        return ConfigError(f"the database {where} is read-only: {first_line}")
    if not isinstance(error, exc.OperationalError | exc.InterfaceError):
        return None
    if any(fragment in lowered for fragment in _WRONG_SETTING):
        return ConfigError(f"NEWSLETTER_DATABASE_URL: {where}: {_connection_reason(text)}")
    if sqlstate == "53100":
        return StorageError(f"the database server is out of disk space ({where}): {first_line}")
    return DatabaseUnavailable(f"cannot use the database {where}: {_connection_reason(text)}")


def _sqlite_error(lowered: str, where: str, first_line: str) -> NewsletterError | None:
    if "database is locked" in lowered or "database table is locked" in lowered:
        return DatabaseUnavailable(
            f"the database {where} is locked by another process; try again when it is done"
        )
    if "readonly database" in lowered or "read-only" in lowered:
        return ConfigError(
            f"the database {where} is read-only, and this command writes to it: run it as a "
            "user who may write the file and its directory"
        )
    if "disk is full" in lowered or "disk i/o error" in lowered:
        return StorageError(
            f"cannot write the database {where} ({first_line}): is the disk full? Nothing "
            "of this command was stored"
        )
    if "unable to open database file" in lowered:
        return ConfigError(
            f"NEWSLETTER_DATABASE_URL: cannot open the database {where}: check that its "
            "directory exists and may be written"
        )
    if "file is not a database" in lowered or "malformed" in lowered:
        return ConfigError(
            f"NEWSLETTER_DATABASE_URL: {where} is not a usable database ({first_line})"
        )
    return None


def _connection_reason(text: str) -> str:
    # psycopg: 'connection failed: connection to server at "h", port p failed: FATAL:  …'.
    # The host and port are named by ``describe`` already; keep what went wrong.
    reason = text.splitlines()[0].rsplit(" failed: ", 1)[-1]
    return " ".join(reason.replace("FATAL:", "").split())
