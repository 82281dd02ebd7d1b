"""An import job run from start to end: what a worker task, and the CLI without a broker, call.

``run_import_job`` moves a job ``queued → running → done | failed`` around ``run_import``,
writing the rows done after every committed batch, so any process can follow it
(``importjob``). ``import_file`` records a job for a file where it is and runs it here. Both
commit as they go (a transaction per batch), so they take their sessions from the caller
(``ImportSessions``) instead of opening any: the edge owns the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from newsletter.db import Clock, SessionFactory, utcnow
from newsletter.errors import UserError
from newsletter.subscribers.importer import ImportOptions, run_import
from newsletter.subscribers.importjob import (
    ImportJobReport,
    create_job,
    fail_job,
    finish_job,
    job_report,
    record_progress,
    start_job,
)
from newsletter.subscribers.models import ImportFailure
from newsletter.subscribers.service import get_list
from newsletter.subscribers.sources import ImportSource
from newsletter.subscribers.sources.file import FileSource
from newsletter.subscribers.sources.upload import UploadSource


@dataclass(frozen=True, slots=True)
class ImportSessions:
    """The transactions an import run opens, given by whoever runs it."""

    write: SessionFactory  # the job's row and every batch, each committed at the block's end
    # Read-only, for the chunks of an upload: reading one takes no write lock beside the writer
    # (SQLite).
    read: SessionFactory


def run_import_job(
    sessions: ImportSessions,
    job_id: int,
    *,
    pepper: str,
    source: ImportSource | None = None,
    progress: Callable[[int], None] | None = None,
    clock: Clock = utcnow,
) -> ImportJobReport:
    """Run import job ``job_id`` from its upload (or from ``source``, the file where it is).

    Commits after every batch (see ``run_import``) and writes the rows done each time, so any
    process can follow it; safe to run again after a crash, so the task may be ``acks_late``.
    A file the importer refuses (a ``UserError``) fails the job with its reason; any other
    exception fails it too and is raised, for the runner's log. A job that is over already
    is left as it is. ``progress`` also gets the rows done (a progress bar here). ``pepper``
    is the secret key (erased addresses are stored as its HMAC).
    """
    with sessions.write() as session:
        spec = start_job(session, job_id, clock())
    if spec is not None:
        if source is None:
            assert spec.sha256 is not None, "a queued job without an upload"
            source = UploadSource(
                sessions.read, job_id, spec.file_name, spec.size_bytes, spec.sha256
            )

        def advance(rows: int) -> None:
            with sessions.write() as session:
                record_progress(session, job_id, rows, clock())
            if progress is not None:
                progress(rows)

        try:
            result = run_import(
                sessions.write, source, spec.list_id, spec.options, pepper=pepper, progress=advance
            )
        except UserError as exc:
            with sessions.write() as session:
                fail_job(session, job_id, ImportFailure.INPUT, str(exc), clock())
        except Exception as exc:
            with sessions.write() as session:
                fail_job(
                    session, job_id, ImportFailure.FAULT, f"{type(exc).__name__}: {exc}", clock()
                )
            raise
        else:
            with sessions.write() as session:
                finish_job(session, job_id, result, clock())
    with sessions.write() as session:
        return job_report(session, job_id)


def import_file(
    sessions: ImportSessions,
    path: Path,
    list_name: str,
    options: ImportOptions | None = None,
    *,
    pepper: str,
    progress: Callable[[int], None] | None = None,
    clock: Clock = utcnow,
) -> ImportJobReport:
    """Import the CSV file at ``path`` here, where it is, as a job any process can report.

    Interrupted (Ctrl-C), the job is marked so: nothing else would ever run it again.
    """
    source = FileSource.checked(path)
    with sessions.write() as session:
        list_id = get_list(session, list_name).id
        job_id = create_job(
            session, list_id, source, options or ImportOptions(), upload=False, now=clock()
        )
    try:
        return run_import_job(
            sessions, job_id, pepper=pepper, source=source, progress=progress, clock=clock
        )
    except KeyboardInterrupt:
        with sessions.write() as session:
            fail_job(
                session,
                job_id,
                ImportFailure.INTERRUPTED,
                "interrupted; the batches before were kept: run the same import again",
                clock(),
            )
        raise
