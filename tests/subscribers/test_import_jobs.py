"""Import jobs: the file's bytes through the database, progress and errors any process reads."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.db import session_factory, session_scope, utcnow
from newsletter.errors import ImportFailed, InvalidInput, InvalidTransition
from newsletter.subscribers import import_runs
from newsletter.subscribers.importer import BatchCounts, ImportOptions, pipeline, run_import
from newsletter.subscribers.importjob import ImportJobReport, create_job, job_report, start_job
from newsletter.subscribers.models import (
    ImportChunk,
    ImportFailure,
    ImportJob,
    ImportJobStatus,
    MailingList,
    Subscriber,
    Subscription,
)
from newsletter.subscribers.service import create_list
from newsletter.subscribers.sources.file import FileSource
from newsletter.subscribers.sources.upload import UploadSource, store_upload
from tests.conftest import REPO, make_env
from tests.subscribers.conftest import import_sessions, wait_until_the_killed_writers_are_gone

WriteCsv = Callable[..., Path]


def queue(settings: Settings, path: Path, options: ImportOptions | None = None) -> int:
    """What the CLI does with a broker: the job and its upload, committed."""
    with session_scope(settings) as session:
        found = session.scalar(sa.select(MailingList.id).where(MailingList.name == "weekly"))
        list_id = found if found is not None else create_list(session, "weekly").id
        return create_job(
            session,
            list_id,
            FileSource.checked(path),
            options or ImportOptions(),
            upload=True,
            now=utcnow(),
        )


def run_import_job(settings: Settings, job_id: int, **options: Any) -> ImportJobReport:
    """The job run as a worker runs it, on this test's database."""
    return import_runs.run_import_job(
        import_sessions(settings), job_id, pepper=settings.secret_key, **options
    )


def import_file(settings: Settings, path: Path, list_name: str) -> ImportJobReport:
    """What ``subscribers import`` does without a broker."""
    return import_runs.import_file(
        import_sessions(settings), path, list_name, pepper=settings.secret_key
    )


def chunks(settings: Settings) -> int:
    with session_scope(settings) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(ImportChunk)) or 0


def emails(settings: Settings) -> set[str]:
    with session_scope(settings) as session:
        return set(session.scalars(sa.select(Subscriber.email)))


def test_an_upload_reads_back_byte_for_byte_across_chunk_boundaries(
    committed_settings: Settings, tmp_path: Path
) -> None:
    data = b"email,name\n" + "".join(f"ü{n}@example.com,Ann {n}\n" for n in range(300)).encode()
    path = tmp_path / "people.csv"
    path.write_bytes(data)
    with session_scope(committed_settings) as session:
        list_id = create_list(session, "weekly").id
        job_id = create_job(
            session, list_id, FileSource.checked(path), ImportOptions(), upload=False, now=utcnow()
        )
        stored = store_upload(session, job_id, FileSource.checked(path), chunk_bytes=7)

    source = UploadSource(
        session_factory(committed_settings).begin, job_id, "people.csv", stored.size, stored.sha256
    )
    with source.open() as stream:
        first = stream.read(5)
        rest = stream.read()

    assert first + rest == data
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert chunks(committed_settings) == -(-len(data) // 7)


def test_a_job_imports_from_its_upload_and_keeps_counts_and_errors_but_not_the_file(
    committed_settings: Settings, write_csv: WriteCsv
) -> None:
    path = write_csv("email,name\nann@example.com,Ann\nbroken@,B\nbob@example.com,Bob\n")
    job_id = queue(committed_settings, path)
    path.unlink()  # the worker never needs it

    report = run_import_job(committed_settings, job_id)

    assert report.status is ImportJobStatus.DONE
    assert (report.created, report.updated, report.unchanged, report.error_count) == (2, 0, 0, 1)
    assert [(e.line, e.error) for e in report.errors] == [
        (3, "There must be something after the @-sign.")
    ]
    assert report.rows_done == 3
    assert report.started_at is not None
    assert report.finished_at is not None
    assert chunks(committed_settings) == 0
    assert emails(committed_settings) == {"ann@example.com", "bob@example.com"}


def test_a_job_keeps_its_warnings_apart_from_its_errors(
    committed_settings: Settings, write_csv: WriteCsv
) -> None:
    path = write_csv("email\nüser@example.com\nbroken@\nv8@пример.рф\nöla@example.com\n")
    job_id = queue(committed_settings, path)

    run_import_job(committed_settings, job_id)
    with session_scope(committed_settings) as session:
        report = job_report(session, job_id)

    assert (report.created, report.error_count, report.warning_count) == (3, 1, 2)
    assert [e.line for e in report.errors] == [3]
    assert [(w.line, w.warning.split(" ")[0]) for w in report.warnings] == [
        (2, "üser@example.com"),
        (5, "öla@example.com"),
    ]
    assert report.rows_done == 4  # a warned row counts once, as created


def test_the_options_travel_with_the_job(committed_settings: Settings, write_csv: WriteCsv) -> None:
    first = write_csv("email,name\nann@example.com,Ann\n", "first.csv")
    run_import_job(committed_settings, queue(committed_settings, first))
    renamed = write_csv("email,name\nann@example.com,Annie\n", "renamed.csv")

    report = run_import_job(
        committed_settings, queue(committed_settings, renamed, ImportOptions(upsert=True))
    )

    assert (report.created, report.updated) == (0, 1)
    with session_scope(committed_settings) as session:
        assert session.scalars(sa.select(Subscriber.name)).one() == "Annie"


def test_progress_is_written_where_another_connection_sees_it(
    committed_settings: Settings, write_csv: WriteCsv
) -> None:
    path = write_csv("email\n" + "".join(f"user{n}@example.com\n" for n in range(25_000)))
    job_id = queue(committed_settings, path)
    seen: list[tuple[int, int, str]] = []

    def watch(rows: int) -> None:
        with session_scope(committed_settings) as session:
            report = job_report(session, job_id)
            seen.append((rows, report.rows_done, report.status.value))

    run_import_job(committed_settings, job_id, progress=watch)

    assert [rows for rows, _, _ in seen] == [rows for _, rows, _ in seen]
    assert {status for _, _, status in seen} == {"running"}
    assert seen[-1][0] == 25_000
    assert len(seen) >= 3


def test_a_job_delivered_again_after_it_finished_changes_nothing(
    committed_settings: Settings, write_csv: WriteCsv
) -> None:
    job_id = queue(committed_settings, write_csv("email\nann@example.com\n"))
    done = run_import_job(committed_settings, job_id)

    again = run_import_job(committed_settings, job_id)

    assert again == done
    with session_scope(committed_settings) as session, pytest.raises(InvalidTransition):
        session.get_one(ImportJob, job_id).transition(ImportJobStatus.RUNNING, utcnow())


def test_a_job_left_running_by_a_dead_worker_runs_again_and_holds_each_row_once(
    committed_settings: Settings, write_csv: WriteCsv
) -> None:
    lines = [f"user{n}@example.com" for n in range(50)]
    path = write_csv("email\n" + "\n".join(lines) + "\n")
    job_id = queue(committed_settings, path)
    with session_scope(committed_settings) as session:
        spec = start_job(session, job_id, utcnow())  # the worker that died had started it
        assert spec is not None
    # ... and committed its first 20 rows before it died.
    run_import(
        session_factory(committed_settings).begin,
        write_csv("email\n" + "\n".join(lines[:20]) + "\n", "part.csv"),
        spec.list_id,
        pepper=committed_settings.secret_key,
    )

    report = run_import_job(committed_settings, job_id)

    assert (report.status, report.created, report.unchanged) == (ImportJobStatus.DONE, 30, 20)
    with session_scope(committed_settings) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 50


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"name\nAnn\n", "line 1: the header has no 'email' column"),
        ("email\nann@example.com\n".encode("utf-16"), "line 1: the file is UTF-16"),
        (b"", "the file is empty"),
    ],
)
def test_a_file_refused_whole_is_refused_before_a_job_is_stored(
    committed_settings: Settings, tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)

    with pytest.raises(InvalidInput, match=says):
        queue(committed_settings, path)
    with session_scope(committed_settings) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) == 0
    assert chunks(committed_settings) == 0


def test_a_missing_chunk_fails_the_job_instead_of_importing_half_a_file(
    committed_settings: Settings, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("newsletter.subscribers.sources.upload.CHUNK_BYTES", 16)
    path = write_csv("email\n" + "".join(f"user{n}@example.com\n" for n in range(20)))
    with session_scope(committed_settings) as session:
        list_id = create_list(session, "weekly").id
        source = FileSource.checked(path)
        job_id = create_job(session, list_id, source, ImportOptions(), upload=False, now=utcnow())
        stored = store_upload(session, job_id, source, chunk_bytes=16)
        job = session.get_one(ImportJob, job_id)
        job.sha256, job.size_bytes = stored.sha256, stored.size
        session.execute(
            sa.delete(ImportChunk).where(ImportChunk.job_id == job_id, ImportChunk.seq == 3)
        )

    report = run_import_job(committed_settings, job_id)

    assert (report.status, report.failure) == (ImportJobStatus.FAILED, ImportFailure.INPUT)
    assert "chunk 3 is missing" in (report.error or "")
    assert emails(committed_settings) == set()  # the first batch was never complete


def test_a_fault_fails_the_job_and_is_raised_for_the_workers_log(
    committed_settings: Settings, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = queue(committed_settings, write_csv("email\nann@example.com\n"))

    def broken(*args: object, **kwargs: object) -> BatchCounts:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "import_batch", broken)

    with pytest.raises(RuntimeError, match="disk on fire"):
        run_import_job(committed_settings, job_id)
    with session_scope(committed_settings) as session:
        report = job_report(session, job_id)
    assert (report.status, report.failure) == (ImportJobStatus.FAILED, ImportFailure.FAULT)
    assert report.error == "RuntimeError: disk on fire"
    with pytest.raises(ImportFailed, match="disk on fire"):
        report.raise_failure()


def test_an_import_interrupted_where_it_runs_says_so(
    committed_settings: Settings, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv("email\nann@example.com\n")
    with session_scope(committed_settings) as session:
        create_list(session, "weekly")

    def interrupted(*args: object, **kwargs: object) -> BatchCounts:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "import_batch", interrupted)

    with pytest.raises(KeyboardInterrupt):
        import_file(committed_settings, path, "weekly")
    with session_scope(committed_settings) as session:
        job_id = session.scalars(sa.select(ImportJob.id)).one()
        report = job_report(session, job_id)
    assert (report.status, report.failure) == (ImportJobStatus.FAILED, ImportFailure.INTERRUPTED)
    with pytest.raises(ImportFailed, match="run the same import again"):
        report.raise_failure()


def test_two_writers_read_one_upload(
    committed_settings: Settings, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL a big file is split between two writers; here every file is.
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    path = write_csv("email\n" + "".join(f"user{n}@example.com\n" for n in range(3_000)))

    report = run_import_job(committed_settings, queue(committed_settings, path))

    assert (report.status, report.created, report.error_count) == (ImportJobStatus.DONE, 3_000, 0)


CHILD = """
import sys
from newsletter.config import load_settings
from newsletter.db import session_factory
from newsletter.subscribers.import_runs import ImportSessions, run_import_job
settings = load_settings()
sessions = ImportSessions(
    session_factory(settings).begin, session_factory(settings, readonly=True).begin
)
run_import_job(sessions, int(sys.argv[1]), pepper=settings.secret_key)
"""


@pytest.mark.slow
def test_a_job_killed_half_way_and_run_again_holds_each_row_once(
    committed_settings: Settings, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = 100_000  # ten batches
    path = write_csv("email\n" + "".join(f"user{n}@example.com\n" for n in range(rows)))
    job_id = queue(committed_settings, path)
    env = {**os.environ, **make_env(committed_settings.database_url), "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(job_id)], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(emails(committed_settings)) == 0 and time.monotonic() < deadline:
            assert child.poll() is None, "the import ended before it could be killed"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    wait_until_the_killed_writers_are_gone(committed_settings)
    committed = len(emails(committed_settings))
    assert 0 < committed < rows, "the kill did not land half-way"
    with session_scope(committed_settings) as session:
        assert job_report(session, job_id).status is ImportJobStatus.RUNNING

    report = run_import_job(committed_settings, job_id)

    assert (report.created, report.unchanged, report.error_count) == (
        rows - committed,
        committed,
        0,
    )
    assert len(emails(committed_settings)) == rows
    assert chunks(committed_settings) == 0
