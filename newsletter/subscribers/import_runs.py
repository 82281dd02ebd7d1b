"""Long-running work as plain functions; a Celery task (``workers/``) only calls one of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from newsletter.config import Settings
from newsletter.db import session_factory, session_scope, utcnow
from newsletter.errors import UserError
from newsletter.subscribers.consent import purge_unconfirmed
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


def run_import_job(
    settings: Settings,
    job_id: int,
    *,
    source: ImportSource | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportJobReport:
    """Run import job ``job_id`` from its upload (or from ``source``, the file where it is).

    Commits after every batch (see ``run_import``) and writes the rows done each time, so any
    process can follow it; safe to run again after a crash, so the task may be ``acks_late``.
    A file the importer refuses (a ``UserError``) fails the job with its reason; any other
    exception fails it too and is raised, for the runner's log. A job that is over already
    is left as it is. ``progress`` also gets the rows done (a progress bar here).
    """
    factory = session_factory(settings)
    with factory.begin() as session:
        spec = start_job(session, job_id, utcnow())
    if spec is not None:
        if source is None:
            assert spec.sha256 is not None, "a queued job without an upload"
            # Read-only sessions: reading a chunk takes no write lock beside the writer (SQLite).
            source = UploadSource(
                session_factory(settings, readonly=True).begin,
                job_id,
                spec.file_name,
                spec.size_bytes,
                spec.sha256,
            )

        def advance(rows: int) -> None:
            with factory.begin() as session:
                record_progress(session, job_id, rows, utcnow())
            if progress is not None:
                progress(rows)

        try:
            result = run_import(
                factory.begin,
                source,
                spec.list_id,
                spec.options,
                pepper=settings.secret_key,
                progress=advance,
            )
        except UserError as exc:
            with factory.begin() as session:
                fail_job(session, job_id, ImportFailure.INPUT, str(exc), utcnow())
        except Exception as exc:
            with factory.begin() as session:
                fail_job(
                    session, job_id, ImportFailure.FAULT, f"{type(exc).__name__}: {exc}", utcnow()
                )
            raise
        else:
            with factory.begin() as session:
                finish_job(session, job_id, result, utcnow())
    with factory.begin() as session:
        return job_report(session, job_id)


def import_file(
    settings: Settings,
    path: Path,
    list_name: str,
    options: ImportOptions | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportJobReport:
    """Import the CSV file at ``path`` here, where it is, as a job any process can report.

    Interrupted (Ctrl-C), the job is marked so: nothing else would ever run it again.
    """
    source = FileSource.checked(path)
    with session_scope(settings) as session:
        list_id = get_list(session, list_name).id
        job_id = create_job(
            session, list_id, source, options or ImportOptions(), upload=False, now=utcnow()
        )
    try:
        return run_import_job(settings, job_id, source=source, progress=progress)
    except KeyboardInterrupt:
        with session_scope(settings) as session:
            fail_job(
                session,
                job_id,
                ImportFailure.INTERRUPTED,
                "interrupted; the batches before were kept: run the same import again",
                utcnow(),
            )
        raise


UNCONFIRMED_PURGE_DAYS = 30  # candidate for a NEWSLETTER_* setting


def purge_stale_unconfirmed(
    settings: Settings, days: int = UNCONFIRMED_PURGE_DAYS
) -> dict[str, int]:
    """Daily: forget double opt-in sign-ups never confirmed within ``days`` (LAW-05)."""
    with session_scope(settings) as session:
        purged = purge_unconfirmed(session, older_than=dt.timedelta(days=days), now=utcnow())
    return {"purged": purged}
