"""Import jobs: one ``subscribers import`` as a row that every process can read and report.

The CLI records the job (and, for a worker, stores the file's bytes: ``sources.upload``) in
its own transaction and queues the job's id after the commit. Whoever runs it (a worker, or
the CLI itself without a broker) moves it ``queued → running → done | failed``, writes the
rows done after every committed batch, and at the end the counts, the first
``MAX_ERRORS_KEPT`` row errors and the first ``MAX_WARNINGS_KEPT`` row warnings, in the
transaction that deletes the upload. So
``subscribers import`` (waiting) and ``subscribers import-status`` print the same report on
any host, whether the job ran in this process or on a worker somewhere else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.db import get_or_raise
from newsletter.errors import ImportFailed, InvalidInput
from newsletter.subscribers.csvfile import RowError, RowWarning
from newsletter.subscribers.importer import ImportOptions, ImportResult, check_file
from newsletter.subscribers.models import (
    ImportFailure,
    ImportJob,
    ImportJobError,
    ImportJobStatus,
    ImportNoteKind,
    MailingList,
)
from newsletter.subscribers.sources.file import FileSource
from newsletter.subscribers.sources.upload import delete_upload, store_upload

FINISHED = frozenset({ImportJobStatus.DONE, ImportJobStatus.FAILED})


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a runner needs of a job it has started."""

    job_id: int
    list_id: int
    file_name: str
    size_bytes: int
    sha256: str | None
    options: ImportOptions


@dataclass(frozen=True, slots=True)
class ImportJobReport:
    """A job as ``subscribers import-status`` shows it."""

    job_id: int
    status: ImportJobStatus
    list_name: str
    file_name: str
    size_bytes: int
    rows_done: int
    created: int
    updated: int
    unchanged: int
    error_count: int
    errors: tuple[RowError, ...]  # the first MAX_ERRORS_KEPT, in file order
    warning_count: int
    warnings: tuple[RowWarning, ...]  # the first MAX_WARNINGS_KEPT, in file order
    failure: ImportFailure | None
    error: str | None  # why the whole file was refused, or the fault that stopped it
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def counts_document(self) -> dict[str, Any]:
        """What ``subscribers import --json`` prints: the job and its counts."""
        return {
            "job": self.job_id,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [{"line": e.line, "error": e.error} for e in self.errors],
            "error_count": self.error_count,
            "warnings": [{"line": w.line, "warning": w.warning} for w in self.warnings],
            "warning_count": self.warning_count,
        }

    def as_document(self) -> dict[str, Any]:
        """What ``subscribers import-status --json`` prints."""

        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            **self.counts_document(),
            "status": self.status.value,
            "list": self.list_name,
            "file": self.file_name,
            "bytes": self.size_bytes,
            "rows_done": self.rows_done,
            "error": self.error,
            "queued_at": iso(self.queued_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "updated_at": iso(self.updated_at),
        }

    def raise_failure(self) -> None:
        """A failed job as the error its runner met: a refused file is the operator's to fix
        (``InvalidInput``, exit 2), a fault or an interruption is not (``ImportFailed``,
        exit 1)."""
        if self.status is not ImportJobStatus.FAILED:
            return
        if self.failure is ImportFailure.INPUT:
            raise InvalidInput(self.error or "the file was refused")
        raise ImportFailed(f"import job {self.job_id} failed: {self.error}")


def create_job(
    session: Session,
    list_id: int,
    source: FileSource,
    options: ImportOptions,
    *,
    upload: bool,
    now: dt.datetime,
) -> int:
    """Record a queued job for ``source``; with ``upload``, store its bytes for a worker.

    A file refused whole (its header) is refused here, before anything is stored. Never
    commits: queue the job's id only after the caller's commit, so that a worker finds the job
    and every chunk of its file.
    """
    check_file(source)
    job = ImportJob(
        list_id=list_id,
        file_name=source.name,
        size_bytes=source.size,
        upsert=options.upsert,
        reactivate_suppressed=options.reactivate_suppressed,
        check_deliverability=options.check_deliverability,
        legal_basis=options.legal_basis,
        status=ImportJobStatus.QUEUED,
        queued_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    if upload:
        stored = store_upload(session, job.id, source)
        job.size_bytes, job.sha256 = stored.size, stored.sha256
    return job.id


def start_job(session: Session, job_id: int, now: dt.datetime) -> JobSpec | None:
    """Mark the job running and return what to run; None if it is over already (the broker
    delivered it twice). A job still running was left by a worker that died: it runs again
    from the start, which the idempotent import allows."""
    job = _job(session, job_id)
    if job.status in FINISHED:
        return None
    job.transition(ImportJobStatus.RUNNING, now)
    job.started_at = now
    job.rows_done = 0
    return JobSpec(
        job_id=job.id,
        list_id=job.list_id,
        file_name=job.file_name,
        size_bytes=job.size_bytes,
        sha256=job.sha256,
        options=ImportOptions(
            upsert=job.upsert,
            reactivate_suppressed=job.reactivate_suppressed,
            check_deliverability=job.check_deliverability,
            legal_basis=job.legal_basis,
        ),
    )


def record_progress(session: Session, job_id: int, rows: int, now: dt.datetime) -> None:
    """The rows done so far (every committed batch): one small UPDATE, no read."""
    session.execute(
        sa.update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == ImportJobStatus.RUNNING)
        .values(rows_done=rows, updated_at=now)
    )


def finish_job(session: Session, job_id: int, result: ImportResult, now: dt.datetime) -> None:
    """Store the counts, the row errors and warnings, and delete the upload: the job is done."""
    job = _job(session, job_id)
    job.transition(ImportJobStatus.DONE, now)
    job.finished_at = now
    job.created, job.updated, job.unchanged = result.created, result.updated, result.unchanged
    job.error_count, job.warning_count = result.error_count, result.warning_count
    job.rows_done = result.created + result.updated + result.unchanged + result.error_count
    notes = [
        {"job_id": job_id, "kind": ImportNoteKind.ERROR, "line": e.line, "error": e.error}
        for e in result.errors
    ] + [
        {"job_id": job_id, "kind": ImportNoteKind.WARNING, "line": w.line, "error": w.warning}
        for w in result.warnings
    ]
    if notes:
        session.execute(sa.insert(ImportJobError), notes)
    delete_upload(session, job_id)


def fail_job(
    session: Session, job_id: int, failure: ImportFailure, error: str, now: dt.datetime
) -> None:
    """The job stopped before its end: keep why, delete the upload (the operator's file is
    where it was; the fix is to run the import again)."""
    job = _job(session, job_id)
    job.transition(ImportJobStatus.FAILED, now)
    job.finished_at = now
    job.failure = failure
    job.error = " ".join(error.split())  # one line, as the CLI prints it
    delete_upload(session, job_id)


def job_report(session: Session, job_id: int) -> ImportJobReport:
    job = _job(session, job_id)
    list_name = session.scalar(sa.select(MailingList.name).where(MailingList.id == job.list_id))
    errors: list[RowError] = []
    warnings: list[RowWarning] = []
    for kind, line, message in session.execute(
        sa.select(ImportJobError.kind, ImportJobError.line, ImportJobError.error)
        .where(ImportJobError.job_id == job_id)
        .order_by(ImportJobError.line, ImportJobError.id)
    ):
        if kind is ImportNoteKind.WARNING:
            warnings.append(RowWarning(line, message))
        else:
            errors.append(RowError(line, message))
    return ImportJobReport(
        job_id=job.id,
        status=job.status,
        list_name=list_name or "",
        file_name=job.file_name,
        size_bytes=job.size_bytes,
        rows_done=job.rows_done,
        created=job.created,
        updated=job.updated,
        unchanged=job.unchanged,
        error_count=job.error_count,
        errors=tuple(errors),
        warning_count=job.warning_count,
        warnings=tuple(warnings),
        failure=job.failure,
        error=job.error,
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        updated_at=job.updated_at,
    )


def _job(session: Session, job_id: int) -> ImportJob:
    return get_or_raise(session, ImportJob, job_id, f"no import job {job_id}")
