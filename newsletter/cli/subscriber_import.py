"""``newsletter subscribers import`` and ``import-status``: an import job, reported wherever
it runs.

Without a broker the job runs here, reading the file where it is; with one the file's bytes go
into the database with the job and a worker on any host imports them. Either way this command
checks the file and the list first, then follows the job's row (its progress on stderr) and
prints its report, so the operator sees the same thing wherever the import ran.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from newsletter import jobs
from newsletter.cli.context import (
    database,
    emit,
    import_sessions,
    json_option,
    reading,
    settings,
    transaction,
)
from newsletter.db import utcnow
from newsletter.errors import InvalidInput
from newsletter.subscribers import import_runs
from newsletter.subscribers.importer import ImportOptions
from newsletter.subscribers.importjob import ImportJobReport, create_job, job_report
from newsletter.subscribers.models import ImportJobStatus, LegalBasis
from newsletter.subscribers.service import get_list
from newsletter.subscribers.sources.file import FileSource


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--list", "list_name", required=True, help="The list to subscribe them to.")
@click.option("--upsert", is_flag=True, help="Update the name and attributes of known subscribers.")
@click.option(
    "--reactivate-suppressed",
    is_flag=True,
    help="Re-subscribe unsubscribed, bounced or blocked subscribers found in the file.",
)
@click.option(
    "--check-deliverability",
    is_flag=True,
    help="Refuse addresses whose domain has no mail server (DNS).",
)
@click.option(
    "--legal-basis",
    type=click.Choice([basis.value for basis in LegalBasis]),
    default=LegalBasis.CONSENT.value,
    show_default=True,
    help="Why these people may be mailed (GDPR Art. 6), recorded with every subscription.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    help="With a broker: follow the worker to the end (default), or print the job id and "
    "leave (follow it with `subscribers import-status JOB`).",
)
@json_option
def subscribers_import(
    file: Path,
    list_name: str,
    upsert: bool,
    reactivate_suppressed: bool,
    check_deliverability: bool,
    legal_basis: str,
    wait: bool,
    as_json: bool,
) -> None:
    """Import a CSV file (an 'email' column; optional 'name' and attribute columns).

    Committed batch by batch: after an interruption, run the same command again. With a
    broker configured the file is stored in the database and imported by a worker on any
    host; this command shows its progress and its report all the same.
    """
    config = settings()
    source = FileSource.checked(file)  # a missing file is said here, before anything is queued
    options = ImportOptions(
        upsert=upsert,
        reactivate_suppressed=reactivate_suppressed,
        check_deliverability=check_deliverability,
        legal_basis=LegalBasis(legal_basis),
    )
    if config.in_process:
        if not wait:
            raise InvalidInput(
                "--no-wait needs a broker (NEWSLETTER_BROKER_URL): without one the import "
                "runs in this process"
            )
        with _import_progress() as progress:
            config = database()
            report = import_runs.import_file(
                import_sessions(config),
                file,
                list_name,
                options,
                pepper=config.secret_key,
                progress=progress,
            )
        _print_outcome(report, report.counts_document(), as_json)
        return
    with transaction() as session:
        list_id = get_list(session, list_name).id
        job_id = create_job(session, list_id, source, options, upload=True, now=utcnow())
    jobs.submit(config, "import_subscribers", job_id=job_id)
    if not wait:
        emit(
            {"job": job_id, "status": ImportJobStatus.QUEUED.value},
            as_json,
            lambda d: click.echo(
                f"import job {d['job']} queued; follow it with: "
                f"newsletter subscribers import-status {d['job']} --wait"
            ),
        )
        return
    report = _follow(job_id)
    _print_outcome(report, report.counts_document(), as_json)


@click.command("import-status")
@click.argument("job_id", type=int)
@click.option(
    "--wait", is_flag=True, help="Follow the job to its end, then report as `import` does."
)
@json_option
def subscribers_import_status(job_id: int, wait: bool, as_json: bool) -> None:
    """Progress, counts and bad rows of an import job, wherever it runs."""
    if wait:
        report = _follow(job_id)
        _print_outcome(report, report.as_document(), as_json)
        return
    with reading() as session:
        report = job_report(session, job_id)
    emit(report.as_document(), as_json, lambda _: _print_status(report))


FOLLOW_SECONDS = 0.5  # how often a waiting command reads the job's row
STALE_SECONDS = 120  # a running job without progress for this long: say so, once


def _follow(job_id: int) -> ImportJobReport:
    """Read the job's row until it is over, showing its progress on stderr."""
    notes = _FollowNotes(job_id)
    with _import_progress() as progress:
        while True:
            with reading() as session:
                report = job_report(session, job_id)
            if report.rows_done:
                progress(report.rows_done)
            if report.finished:
                return report
            notes.show(report, utcnow())
            time.sleep(FOLLOW_SECONDS)


class _FollowNotes:
    """What a waiting command says once: that the job waits for a worker, or has gone quiet."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.said_queued = self.said_stale = False

    def show(self, report: ImportJobReport, now: dt.datetime) -> None:
        if report.status is ImportJobStatus.QUEUED and not self.said_queued:
            self.said_queued = True
            click.echo(
                f"import job {self.job_id} queued, waiting for a worker (Ctrl-C stops waiting, "
                "not the import)",
                err=True,
            )
        silent = (now - report.updated_at).total_seconds()
        running = report.status is ImportJobStatus.RUNNING
        if running and silent > STALE_SECONDS and not self.said_stale:
            self.said_stale = True
            click.echo(
                f"import job {self.job_id}: no progress for {silent:.0f} s; if its worker "
                "died, the broker gives the job to another one after its visibility timeout, "
                "and the import starts again (nothing is added twice)",
                err=True,
            )


def _print_outcome(report: ImportJobReport, document: dict[str, Any], as_json: bool) -> None:
    """A failed job as its one-line error (exit 2 for a refused file); else ``document``."""
    report.raise_failure()
    emit(document, as_json, _print_counts)


def _print_counts(d: dict[str, Any]) -> None:
    # The warnings only when there are some: the usual summary line stays as it always was.
    warned = f", warnings {d['warning_count']}" if d["warning_count"] else ""
    click.echo(
        f"created {d['created']}, updated {d['updated']}, unchanged {d['unchanged']}, "
        f"errors {d['error_count']}{warned}"
    )
    for error in d["errors"]:
        click.echo(f"line {error['line']}: {error['error']}")
    if d["error_count"] > len(d["errors"]):
        click.echo(f"… and {d['error_count'] - len(d['errors'])} more errors")
    for warning in d["warnings"]:
        click.echo(f"warning: line {warning['line']}: {warning['warning']}")
    if d["warning_count"] > len(d["warnings"]):
        click.echo(f"… and {d['warning_count'] - len(d['warnings'])} more warnings")


def _print_status(report: ImportJobReport) -> None:
    d = report.as_document()
    head = f"import job {d['job']} ({d['file']} into {d['list']}): {d['status']}"
    if report.status is ImportJobStatus.FAILED:
        click.echo(f"{head}: {d['error']}")
    elif report.status is ImportJobStatus.DONE:
        click.echo(f"{head} at {d['finished_at']}, {d['rows_done']:,} rows")
        _print_counts(d)
    elif report.status is ImportJobStatus.RUNNING:
        click.echo(f"{head}, {d['rows_done']:,} rows so far (last progress {d['updated_at']})")
    else:
        click.echo(f"{head} since {d['queued_at']}, waiting for a worker")


@contextmanager
def _import_progress() -> Iterator[Callable[[int], None]]:
    """Rows done, on stderr: a rich progress line on a terminal, else a line per change."""
    if not sys.stderr.isatty():
        last = [0]

        def line(rows: int) -> None:
            if rows != last[0]:
                last[0] = rows
                click.echo(f"{rows:,} rows imported", err=True)

        yield line
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.completed:,} rows imported"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=None)
        yield lambda rows: bar.update(task, completed=rows)


COMMANDS = (subscribers_import, subscribers_import_status)
