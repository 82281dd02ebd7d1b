"""Fixtures shared by the whole suite: settings, and a database on SQLite and on PostgreSQL.

Every test that takes ``session`` runs twice, once per backend. The schema is built by the real
Alembic migrations, and each test runs inside an outer transaction that is rolled back, so tests
never see each other's rows. In CI (``CI`` set) a missing PostgreSQL fails the run instead of
skipping it.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy.orm import Session

from newsletter.config import Settings, load_settings
from newsletter.db import create_database_engine, upgrade

REPO = Path(__file__).resolve().parents[1]
SAMPLE_BULLETIN = REPO / "newsletter" / "samples" / "bulletin-2025-12-11.txt"
POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEST_SECRET = "test-secret-key-0123456789abcdefghijklmnop"
IN_CI = bool(os.environ.get("CI"))
POSTAL_ADDRESS = "Central Asia News Desk, 12 Abay Avenue, Almaty 050000, Kazakhstan"


# Property tests: a bounded number of examples each, so the suite's time stays predictable in
# CI; no deadline, since a loaded machine makes single examples slow, not wrong.
hypothesis_settings.register_profile(
    "newsletter",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile("newsletter")


def unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI, where every backend must be present."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must run every test)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sample_bulletin() -> bytes:
    return SAMPLE_BULLETIN.read_bytes()


def make_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "NEWSLETTER_DATABASE_URL": database_url,
        "NEWSLETTER_SECRET_KEY": TEST_SECRET,
        "NEWSLETTER_BASE_URL": "https://news.example.org",
        "NEWSLETTER_FROM": "Central Asia Weekly <bulletin@news.example.org>",
        "NEWSLETTER_POSTAL_ADDRESS": POSTAL_ADDRESS,
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"nl_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    sa.create_engine(url).dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(make_env(database_url))


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        transaction.rollback()


@pytest.fixture
def committed_settings(
    database_url: str, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings for code that opens and commits its own sessions (jobs, CLI, workers).

    The rows it commits are deleted after the test. The working directory is a temporary one,
    so nothing (a secret key file, previews) is written into the checkout.
    """
    monkeypatch.chdir(tmp_path)
    yield load_settings(make_env(database_url))
    empty_tables(engine)


@pytest.fixture
def postgres_settings(postgres_url: str) -> Iterator[Settings]:
    """Committed sessions on PostgreSQL: the only backend where two writers interleave (on
    SQLite BEGIN IMMEDIATE queues the second writer before its check, so the check decides)."""
    upgrade(postgres_url)
    engine = sa.create_engine(postgres_url)
    yield load_settings(make_env(postgres_url))
    empty_tables(engine)
    engine.dispose()


def wait_until_blocked_on_a_lock(url: str, statement: str) -> None:
    # Polled without sleeping: each round is one query; the bound only stops a broken test.
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")  # a fresh view each round
    try:
        with engine.connect() as connection:
            for _ in range(100_000):
                waiting = connection.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND query LIKE :statement"
                    ),
                    {"statement": f"{statement}%"},
                )
                if waiting:
                    return
    finally:
        engine.dispose()
    pytest.fail(f"no backend ever waited on {statement!r}")


def empty_tables(engine: sa.Engine) -> None:
    from newsletter.db import Base

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(sa.text(f"DELETE FROM {table}"))


def row_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows per table (of those that exist): what "the database is unchanged" is checked
    against."""
    from newsletter.db import Base

    existing = set(sa.inspect(engine).get_table_names())
    with engine.connect() as connection:
        return {
            table.name: connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
            if table.name in existing
        }


def assert_one_line_error(result: CliResult, exit_code: int) -> str:
    """A command that failed as promised: ``exit_code``, one ``error:`` line on stderr, no
    traceback anywhere. Returns that line."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.exit_code == exit_code, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") or lines[0].startswith('{"error": '), lines[0]
    return lines[0]


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def lines(self) -> list[Any]:
        """One JSON document per line (``--json`` commands that print several)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


Run = Callable[..., CliResult]


@pytest.fixture
def run_cli(
    committed_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """The ``newsletter`` command in-process: ``run_cli("issue", "check", "1")``.

    ``env`` sets more variables for that call; ``stdin`` feeds the command's standard input.
    """
    from newsletter.cli import main

    for name, value in make_env(committed_settings.database_url).items():
        monkeypatch.setenv(name, value)

    def run(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> CliResult:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
