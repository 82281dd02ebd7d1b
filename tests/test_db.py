"""A database that is not ready says so in one line, and a command that only reads never writes.

Embedded mode creates or upgrades its SQLite file on the first command that writes; PostgreSQL
is never migrated behind the operator's back. An outage is exit code 1, a wrong setting 2; the
database's own errors (a full disk, a lock, a dropped connection) arrive as ours. Cases that
need a real process (another user, a file-size limit) run the installed ``newsletter``.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.config import VARIABLES, Settings
from newsletter.db import (
    create_database_engine,
    current_revision,
    get_or_raise,
    head_revision,
    session_scope,
    upgrade,
)
from newsletter.db_errors import translate_error
from newsletter.errors import ConfigError, DatabaseUnavailable, NotFound, SchemaOutOfDate
from newsletter.subscribers.models import MailingList
from tests.conftest import (
    POSTGRES_ADMIN_URL,
    SAMPLE_BULLETIN,
    TEST_SECRET,
    CliResult,
    assert_one_line_error,
    make_env,
    row_counts,
    unavailable,
)

NEWSLETTER = Path(sys.executable).parent / "newsletter"
NOBODY = 65534
HEAD = head_revision()
BEHIND = "0003"
READ_COMMANDS = [
    ("list", "ls"),
    ("issue", "ls"),
    ("issue", "show", "1"),
    ("subscriber", "show", "ann@example.org"),
    ("subscribers", "export", "--list", "weekly"),
    ("segment", "count", "kz"),
    ("campaign", "status", "1"),
    ("bounces", "report"),
]
Cli = Callable[..., CliResult]


def newsletter(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    user: int | None = None,
    max_file_bytes: int | None = None,
) -> CliResult:
    """The installed command in a process of its own, with no NEWSLETTER_* but ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    environment.update(env or {})

    def limit() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
        if user is not None:
            os.setgroups([])
            os.setgid(user)
            os.setuid(user)

    done = subprocess.run(
        [str(NEWSLETTER), *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``newsletter`` in-process with only the given variables: ``cli(env, "list", "ls")``."""
    from newsletter.cli import main

    def run(env: dict[str, str], *args: str | Path) -> CliResult:
        for variable in VARIABLES:
            monkeypatch.delenv(variable.name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """An empty PostgreSQL database of its own, dropped after the test."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"nl_scratch_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def revision_of(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def counts_of(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        return row_counts(engine)
    finally:
        engine.dispose()


# --- embedded mode: created on first use, read-only commands write nothing ------------------


def test_the_first_command_that_writes_creates_the_embedded_database_and_says_so(
    tmp_path: Path,
) -> None:
    first = newsletter("import-bulletin", SAMPLE_BULLETIN, cwd=tmp_path)
    again = newsletter("import-bulletin", SAMPLE_BULLETIN, cwd=tmp_path)

    assert first.exit_code == 0, first.stderr
    assert first.stderr.startswith(f"created the database {tmp_path / 'newsletter.db'}")
    assert "imported bulletin of 2025-12-11 (language en): 6 articles" in first.stdout
    assert again.exit_code == 0
    assert again.stderr == ""
    assert "already imported" in again.stdout
    assert revision_of(f"sqlite:///{tmp_path / 'newsletter.db'}") == HEAD


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_command_that_only_reads_writes_nothing_where_there_is_no_database(
    command: tuple[str, ...], cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = cli({}, *command)

    line = assert_one_line_error(result, 2)
    assert "there is no database at" in line
    assert sorted(os.listdir(tmp_path)) == []  # no newsletter.db, no newsletter.secret


def test_an_older_embedded_schema_is_upgraded_by_a_command_that_writes(
    cli: Cli, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, BEHIND)

    result = cli({"NEWSLETTER_DATABASE_URL": url}, "list", "create", "weekly")

    assert result.exit_code == 0, result.stderr
    assert f"from schema revision {BEHIND} to {HEAD}" in result.stderr
    assert revision_of(url) == HEAD
    assert counts_of(url)["mailing_lists"] == 1


def test_an_older_embedded_schema_stops_a_command_that_only_reads(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, BEHIND)

    result = cli({"NEWSLETTER_DATABASE_URL": url}, "list", "ls")

    line = assert_one_line_error(result, 2)
    assert line == (
        f"error: the database schema is at revision {BEHIND}, this version needs {HEAD}: "
        "run `newsletter db upgrade`"
    )
    assert revision_of(url) == BEHIND


def test_a_schema_newer_than_this_version_is_refused(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    upgrade(url)
    with sqlite3.connect(tmp_path / "new.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")

    result = cli({"NEWSLETTER_DATABASE_URL": url}, "list", "create", "weekly")

    assert "revision 9999, which this version does not know" in assert_one_line_error(result, 2)
    assert counts_of(url)["mailing_lists"] == 0


def test_a_sqlite_file_in_a_missing_directory_is_a_wrong_setting(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'newsletter.db'}"

    for command in (("list", "create", "weekly"), ("list", "ls"), ("db", "upgrade")):
        line = assert_one_line_error(cli({"NEWSLETTER_DATABASE_URL": url}, *command), 2)
        assert "NEWSLETTER_DATABASE_URL" in line
        assert str(tmp_path / "missing") in line
    assert not (tmp_path / "missing").exists()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user may enter and read, but not write."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    path = Path(tempfile.mkdtemp(prefix="nl-readonly-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_a_database_file_the_user_may_not_write_is_read_but_not_written(
    shared_dir: Path,
) -> None:
    assert newsletter("list", "create", "weekly", cwd=shared_dir).exit_code == 0
    database = shared_dir / "newsletter.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    assert not Path(f"{database}-shm").exists()  # closed cleanly: a reader must do without

    listed = newsletter("list", "ls", cwd=shared_dir, user=NOBODY)
    refused = newsletter(
        "list",
        "create",
        "other",
        cwd=shared_dir,
        user=NOBODY,
        env={"NEWSLETTER_SECRET_KEY": TEST_SECRET},
    )

    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.startswith("weekly: ")
    assert listed.stderr == ""
    assert "is read-only, and this command writes to it" in assert_one_line_error(refused, 2)
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert sorted(os.listdir(shared_dir)) == ["newsletter.db", "newsletter.secret"]


def test_a_full_disk_is_one_line_exit_1_and_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newsletter.db'}"
    upgrade(url)
    before = counts_of(url)

    # RLIMIT_FSIZE makes every write past 40 KB fail as a full disk does (EFBIG, "disk I/O
    # error"); the write-ahead log of the import needs more than that.
    result = newsletter(
        "import-bulletin",
        SAMPLE_BULLETIN,
        cwd=tmp_path,
        env=make_env(url),
        max_file_bytes=40_000,
    )

    line = assert_one_line_error(result, 1)
    assert "StorageError: cannot write the database" in line
    assert "is the disk full?" in line
    assert counts_of(url) == before


# --- PostgreSQL: never migrated behind the operator's back ----------------------------------


def test_a_postgresql_schema_that_is_behind_is_one_line_naming_both_revisions(
    cli: Cli, scratch_postgres: str
) -> None:
    upgrade(scratch_postgres, BEHIND)
    before = counts_of(scratch_postgres)

    for command in (
        ("list", "ls"),
        ("list", "create", "weekly"),
        ("import-bulletin", str(SAMPLE_BULLETIN)),
    ):
        line = assert_one_line_error(cli(make_env(scratch_postgres), *command), 2)
        assert line == (
            f"error: the database schema is at revision {BEHIND}, this version needs {HEAD}: "
            "run `newsletter db upgrade`"
        )
    assert revision_of(scratch_postgres) == BEHIND
    assert counts_of(scratch_postgres) == before


def test_a_postgresql_database_without_a_schema_says_to_upgrade_and_upgrade_fixes_it(
    cli: Cli, scratch_postgres: str
) -> None:
    env = make_env(scratch_postgres)

    refused = cli(env, "list", "create", "weekly")
    upgraded = cli(env, "db", "upgrade")
    created = cli(env, "list", "create", "weekly")

    assert "has no schema yet: run `newsletter db upgrade`" in assert_one_line_error(refused, 2)
    assert upgraded.exit_code == 0
    assert created.exit_code == 0, created.stderr
    assert revision_of(scratch_postgres) == HEAD


def test_a_postgresql_server_that_refuses_connections_is_an_outage_naming_it(cli: Cli) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/newsletter"

    for command in (("list", "ls"), ("list", "create", "weekly"), ("db", "upgrade")):
        line = assert_one_line_error(cli(make_env(url), *command), 1)
        assert f"127.0.0.1:{port}, database 'newsletter'" in line
        assert "Connection refused" in line


def test_a_postgresql_database_that_does_not_exist_is_a_wrong_setting(cli: Cli) -> None:
    name = f"nl_missing_{uuid.uuid4().hex[:8]}"
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    probe = sa.create_engine(POSTGRES_ADMIN_URL)
    try:
        with probe.connect():
            pass
    except sa.exc.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    finally:
        probe.dispose()

    line = assert_one_line_error(cli(make_env(url), "list", "ls"), 2)

    assert line.startswith("error: NEWSLETTER_DATABASE_URL: PostgreSQL at ")
    assert f"database {name!r}" in line
    assert "does not exist" in line


# --- the database's errors in our words -----------------------------------------------------


def test_a_locked_sqlite_database_is_unavailable_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, timeout=0, isolation_level=None)
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            waiter.execute("BEGIN IMMEDIATE")
    finally:
        holder.close()
        waiter.close()

    translated = translate_error(caught.value, f"sqlite:///{path}")

    assert isinstance(translated, DatabaseUnavailable)
    assert f"the database {path} is locked by another process" in str(translated)


def test_a_postgresql_connection_that_goes_away_is_unavailable_and_the_next_one_works(
    postgres_url: str,
) -> None:
    from newsletter.config import load_settings

    upgrade(postgres_url)
    settings = load_settings(make_env(postgres_url))

    with pytest.raises(DatabaseUnavailable, match="terminating connection"):  # noqa: SIM117
        with session_scope(settings) as session:
            session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
    with session_scope(settings) as session:
        assert session.scalar(sa.text("SELECT 1")) == 1


def test_a_missing_table_says_the_schema_does_not_match(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(SchemaOutOfDate, match="newsletter db upgrade"), engine.connect() as c:
            c.execute(sa.text("SELECT * FROM bulletin_imports"))
    finally:
        engine.dispose()


def test_a_read_only_session_cannot_write_on_either_database(settings: Settings) -> None:
    def write_while_reading() -> None:
        with session_scope(settings, readonly=True) as session:
            session.add(MailingList(name=f"reader-{uuid.uuid4().hex[:6]}"))
            session.flush()

    with pytest.raises(ConfigError, match="read-only"):
        write_while_reading()
    with session_scope(settings, readonly=True) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(MailingList)) == 0


def test_get_or_raise_returns_the_row_or_raises_not_found_with_the_message(
    session: Session,
) -> None:
    weekly = MailingList(name="weekly", description="")
    session.add(weekly)
    session.flush()

    assert get_or_raise(session, MailingList, weekly.id, "unused") is weekly
    with pytest.raises(NotFound, match=r"^no list with id 999$"):
        get_or_raise(session, MailingList, 999, "no list with id 999")
