"""Imports with a broker: the CLI reports them, whichever host the worker runs on.

Each test starts its own redis-server and a real Celery worker process whose working directory
is a directory of its own: a relative path would name another file there, and a file the test
deletes after queuing is gone for the worker too, so only bytes that went through the database
can reach it. The CLI runs in the test process (``run_cli``), in yet another directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.config import Settings, load_settings
from newsletter.db import session_scope
from newsletter.subscribers.models import ImportChunk, ImportJob, Subscriber
from tests.conftest import REPO, Run, assert_one_line_error, make_env, unavailable
from tests.delivery.relay import free_port
from tests.delivery.test_workers import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PEOPLE = (
    b"email,name,city\n"
    b"ann@example.com,Ann,Almaty\n"
    b"bob@example.com,Bob,Bishkek\n"
    b"broken@,Broken,\n"
    b"cem@example.com,Cem,\n"
)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(free_port(), directory)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(run_cli: Run, redis_server: RedisServer) -> dict[str, str]:
    """The CLI's environment with the broker set; the list ``weekly`` exists."""
    env = {"NEWSLETTER_BROKER_URL": redis_server.url}
    assert run_cli("list", "create", "weekly", env=env).exit_code == 0
    return env


@contextmanager
def worker(database_url: str, redis: RedisServer, directory: Path) -> Iterator[None]:
    """A Celery worker started in ``directory`` (not the CLI's working directory)."""
    directory.mkdir(exist_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "--pool=solo",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=directory,
        env={
            **os.environ,
            **make_env(database_url),
            "NEWSLETTER_BROKER_URL": redis.url,
            "PYTHONPATH": str(REPO),
        },
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def queued_tasks(redis: RedisServer) -> int:
    out = subprocess.run(
        ["redis-cli", "-p", str(redis.port), "llen", "celery"], capture_output=True, check=True
    )
    return int(out.stdout.strip())


def jobs_and_chunks(database_url: str) -> tuple[int, int]:
    with session_scope(load_settings(make_env(database_url))) as session:
        return (
            session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) or 0,
            session.scalar(sa.select(sa.func.count()).select_from(ImportChunk)) or 0,
        )


def test_a_missing_file_is_reported_by_the_cli_and_nothing_is_queued(
    run_cli: Run, broker: dict[str, str], redis_server: RedisServer, committed_settings: Settings
) -> None:
    result = run_cli("subscribers", "import", "missing.csv", "--list", "weekly", env=broker)

    assert "no such file: missing.csv" in assert_one_line_error(result, 2)
    assert queued_tasks(redis_server) == 0
    assert jobs_and_chunks(committed_settings.database_url) == (0, 0)


def test_an_unknown_list_is_reported_by_the_cli_and_nothing_is_queued(
    run_cli: Run, broker: dict[str, str], redis_server: RedisServer, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_bytes(PEOPLE)

    result = run_cli("subscribers", "import", str(people), "--list", "nope", env=broker)

    assert "no list named" in assert_one_line_error(result, 2)
    assert queued_tasks(redis_server) == 0


def test_the_cli_waits_for_the_worker_and_prints_its_counts_and_bad_rows(
    run_cli: Run,
    broker: dict[str, str],
    redis_server: RedisServer,
    committed_settings: Settings,
    tmp_path: Path,
) -> None:
    (tmp_path / "people.csv").write_bytes(PEOPLE)
    url: str = committed_settings.database_url

    with worker(url, redis_server, tmp_path / "worker"):
        # A relative name: in the worker's directory there is no such file.
        result = run_cli(
            "subscribers", "import", "people.csv", "--list", "weekly", "--json", env=broker
        )

    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "4 rows imported"  # progress, as without a broker
    document = result.json()
    assert {k: v for k, v in document.items() if k != "job"} == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "error_count": 1,
        "errors": [{"line": 4, "error": "There must be something after the @-sign."}],
        "warning_count": 0,
        "warnings": [],
    }
    assert jobs_and_chunks(url) == (1, 0)  # the upload is deleted once the import is done
    status = run_cli("subscribers", "import-status", str(document["job"]), "--json", env=broker)
    assert (status.json()["status"], status.json()["rows_done"]) == ("done", 4)


def test_no_wait_prints_a_job_that_import_status_follows_after_the_file_is_gone(
    run_cli: Run,
    broker: dict[str, str],
    redis_server: RedisServer,
    committed_settings: Settings,
    tmp_path: Path,
) -> None:
    people = tmp_path / "people.csv"
    people.write_bytes(PEOPLE)
    url: str = committed_settings.database_url

    queued = run_cli(
        "subscribers", "import", str(people), "--list", "weekly", "--no-wait", "--json", env=broker
    )
    people.unlink()  # the operator's laptop is gone; only the database has the bytes now

    assert queued.exit_code == 0, queued.stderr
    job = queued.json()["job"]
    assert queued.json()["status"] == "queued"
    before = run_cli("subscribers", "import-status", str(job), "--json", env=broker).json()
    assert (before["status"], before["rows_done"], before["file"]) == ("queued", 0, "people.csv")
    with worker(url, redis_server, tmp_path / "worker"):
        followed = run_cli("subscribers", "import-status", str(job), "--wait", "--json", env=broker)

    assert followed.exit_code == 0, followed.stderr
    document = followed.json()
    assert {k: document[k] for k in ("status", "created", "error_count", "rows_done")} == {
        "status": "done",
        "created": 3,
        "error_count": 1,
        "rows_done": 4,
    }
    assert document["errors"] == [{"line": 4, "error": "There must be something after the @-sign."}]
    with session_scope(committed_settings) as session:
        assert set(session.scalars(sa.select(Subscriber.email))) == {
            "ann@example.com",
            "bob@example.com",
            "cem@example.com",
        }


def test_a_worker_reports_an_address_only_an_smtputf8_relay_can_deliver_as_a_warning(
    run_cli: Run,
    broker: dict[str, str],
    redis_server: RedisServer,
    committed_settings: Settings,
    tmp_path: Path,
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name\nann@example.com,Ann\nüser@example.com,Üser\nv8@пример.рф,V8\n",
        encoding="utf-8",
    )
    url: str = committed_settings.database_url
    queued = run_cli(
        "subscribers", "import", str(people), "--list", "weekly", "--no-wait", "--json", env=broker
    )
    job = str(queued.json()["job"])

    with worker(url, redis_server, tmp_path / "worker"):
        waited = run_cli("subscribers", "import-status", job, "--wait", "--json", env=broker)
    status = run_cli("subscribers", "import-status", job, "--json", env=broker)
    human = run_cli("subscribers", "import-status", job, env=broker)

    assert waited.exit_code == 0, waited.stderr
    warning = {
        "line": 3,
        "warning": "üser@example.com has a non-ASCII local part: only a relay that offers "
        "SMTPUTF8 can deliver it",
    }
    for document in (waited.json(), status.json()):
        assert {k: document[k] for k in ("status", "created", "error_count", "warning_count")} == {
            "status": "done",
            "created": 3,
            "error_count": 0,
            "warning_count": 1,
        }
        assert document["warnings"] == [warning]
    assert f"warning: line 3: {warning['warning']}" in human.stdout.splitlines()


def test_a_file_refused_whole_is_refused_by_the_cli_and_nothing_is_queued(
    run_cli: Run,
    broker: dict[str, str],
    redis_server: RedisServer,
    committed_settings: Settings,
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes("email,name\nann@example.com,Ann\n".encode("utf-16"))

    result = run_cli("subscribers", "import", str(bad), "--list", "weekly", env=broker)

    assert "the file is UTF-16; save it as UTF-8" in assert_one_line_error(result, 2)
    assert queued_tasks(redis_server) == 0
    assert jobs_and_chunks(committed_settings.database_url) == (0, 0)
