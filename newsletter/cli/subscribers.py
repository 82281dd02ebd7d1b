"""``newsletter list …``, ``subscribers …``, ``subscriber …`` and ``segment …``."""

from __future__ import annotations

import csv
import datetime as dt
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click

from newsletter import jobs as newsletter_jobs
from newsletter.bounces.service import forget_subscriber
from newsletter.cli.context import database, emit, json_option, reading, settings, transaction
from newsletter.db import utcnow
from newsletter.errors import InvalidInput, file_error
from newsletter.subscribers import jobs
from newsletter.subscribers.consent import unsubscribe
from newsletter.subscribers.importjob import (
    ImportJobReport,
    ImportOptions,
    create_job,
    job_report,
)
from newsletter.subscribers.models import ConsentSource, ImportJobStatus
from newsletter.subscribers.segments import count_segment, create_segment, get_segment
from newsletter.subscribers.service import (
    create_list,
    erase_subscriber,
    export_list,
    find_subscriber,
    get_list,
    list_lists,
    subscriber_data,
    subscriber_lists,
)
from newsletter.subscribers.sources.file import FileSource


def register(cli: click.Group) -> None:
    for group in (list_group, subscribers_group, subscriber_group, segment_group):
        cli.add_command(group)


# --- newsletter list ------------------------------------------------------------------------


@click.group("list")
def list_group() -> None:
    """Mailing lists."""


@list_group.command("create")
@click.argument("name")
@click.option("--double-opt-in", is_flag=True, help="New subscribers must confirm by email.")
@click.option("--description", default="", help="What the list is for.")
@json_option
def list_create(name: str, double_opt_in: bool, description: str, as_json: bool) -> None:
    """Create a mailing list."""
    with transaction() as session:
        created = create_list(session, name, double_opt_in=double_opt_in, description=description)
        document = {"name": created.name, "double_opt_in": created.double_opt_in}
    emit(document, as_json, lambda d: click.echo(f"created list {d['name']}"))


@list_group.command("ls")
@json_option
def list_ls(as_json: bool) -> None:
    """Show every list with its subscription counts."""
    with reading() as session:
        document = [summary.as_document() for summary in list_lists(session)]

    def human(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            counts = ", ".join(f"{n} {status}" for status, n in row["subscriptions"].items())
            optin = " (double opt-in)" if row["double_opt_in"] else ""
            click.echo(f"{row['name']}{optin}: {counts}")

    emit(document, as_json, human)


# --- newsletter subscribers -----------------------------------------------------------------


@click.group("subscribers")
def subscribers_group() -> None:
    """Import and export subscribers in bulk."""


@subscribers_group.command("import")
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
    options = ImportOptions(upsert, reactivate_suppressed, check_deliverability)
    if config.in_process:
        if not wait:
            raise InvalidInput(
                "--no-wait needs a broker (NEWSLETTER_BROKER_URL): without one the import "
                "runs in this process"
            )
        with _import_progress() as progress:
            report = jobs.import_file(database(), file, list_name, options, progress=progress)
        _print_outcome(report, report.counts_document(), as_json)
        return
    with transaction() as session:
        list_id = get_list(session, list_name).id
        job_id = create_job(session, list_id, source, options, upload=True, now=utcnow())
    newsletter_jobs.submit(config, "import_subscribers", job_id=job_id)
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


@subscribers_group.command("import-status")
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
    emit(report.as_document(), as_json, _print_status)


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
    click.echo(
        f"created {d['created']}, updated {d['updated']}, unchanged {d['unchanged']}, "
        f"errors {d['error_count']}"
    )
    for error in d["errors"]:
        click.echo(f"line {error['line']}: {error['error']}")
    if d["error_count"] > len(d["errors"]):
        click.echo(f"… and {d['error_count'] - len(d['errors'])} more errors")


def _print_status(d: dict[str, Any]) -> None:
    head = f"import job {d['job']} ({d['file']} into {d['list']}): {d['status']}"
    if d["status"] == ImportJobStatus.FAILED:
        click.echo(f"{head}: {d['error']}")
    elif d["status"] == ImportJobStatus.DONE:
        click.echo(f"{head} at {d['finished_at']}, {d['rows_done']:,} rows")
        _print_counts(d)
    elif d["status"] == ImportJobStatus.RUNNING:
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


@subscribers_group.command("export")
@click.option("--list", "list_name", required=True, help="The list to export.")
@click.option("--out", type=click.Path(path_type=Path), help="File to write; stdout by default.")
def subscribers_export(list_name: str, out: Path | None) -> None:
    """Export a list as CSV (email,name,status,subscription_status,attributes as JSON).

    The file imports back as it was, suppressions included.
    """
    with reading() as session:
        list_id = get_list(session, list_name).id
        if out is None:
            _write_csv(sys.stdout, export_list(session, list_id))
            return
        try:
            with out.open("w", encoding="utf-8", newline="") as stream:
                _write_csv(stream, export_list(session, list_id))
        except OSError as exc:
            raise file_error("write", out, exc) from exc


def _write_csv(stream: IO[str], rows: Iterator[list[str]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    for row in rows:
        writer.writerow(row)


# --- newsletter subscriber ------------------------------------------------------------------


@click.group("subscriber")
def subscriber_group() -> None:
    """One subscriber: show, unsubscribe, export (GDPR access), delete (GDPR erasure)."""


@subscriber_group.command("show")
@click.argument("email")
@json_option
def subscriber_show(email: str, as_json: bool) -> None:
    """Status of a subscriber and of each of their subscriptions."""
    with reading() as session:
        subscriber = find_subscriber(session, email)
        document = {
            "email": subscriber.email,
            "status": subscriber.status.value,
            "lists": {
                name: status.value
                for name, status in subscriber_lists(session, subscriber.id).items()
            },
        }

    def human(d: dict[str, Any]) -> None:
        click.echo(f"{d['email']}: {d['status']}")
        for name, status in d["lists"].items():
            click.echo(f"  {name}: {status}")

    emit(document, as_json, human)


@subscriber_group.command("unsubscribe")
@click.argument("email")
@click.option("--list", "list_name", help="Only from this list; from every list by default.")
@json_option
def subscriber_unsubscribe(email: str, list_name: str | None, as_json: bool) -> None:
    """Unsubscribe at once (from one list, or from all); running it again changes nothing."""
    with transaction() as session:
        subscriber = find_subscriber(session, email)
        list_id = get_list(session, list_name).id if list_name else None
        changed = unsubscribe(
            session, subscriber.id, list_id=list_id, source=ConsentSource.ADMIN, now=utcnow()
        )
        document = {"email": subscriber.email, "list": list_name, "changed": changed}

    def human(d: dict[str, Any]) -> None:
        where = f"list {d['list']}" if d["list"] else "every list"
        state = "unsubscribed from" if d["changed"] else "was already unsubscribed from"
        click.echo(f"{d['email']} {state} {where}")

    emit(document, as_json, human)


@subscriber_group.command("export")
@click.argument("email")
def subscriber_export(email: str) -> None:
    """Every piece of data held about a subscriber, consent records included, as JSON."""
    with reading() as session:
        document = subscriber_data(session, email)
    emit(document, True)


@subscriber_group.command("delete")
@click.argument("email")
@json_option
def subscriber_delete(email: str, as_json: bool) -> None:
    """Erase a subscriber for good, consent records included (GDPR erasure).

    Only a keyed hash of the address is kept, so that no import adds it again.
    """
    with transaction() as session:
        subscriber = find_subscriber(session, email)
        address = subscriber.email
        # Bounces name the address too; they are a later stage's records, so erased from here.
        forget_subscriber(session, subscriber.id, address)
        erase_subscriber(session, settings().secret_key, address)
    emit({"erased": True}, as_json, lambda d: click.echo(f"erased {address}"))


# --- newsletter segment ---------------------------------------------------------------------


@click.group("segment")
def segment_group() -> None:
    """Saved filters over a list, evaluated when a campaign is sent."""


@segment_group.command("create")
@click.argument("name")
@click.option("--list", "list_name", required=True, help="The list the segment narrows.")
@click.option("--where", "expression", required=True, help="e.g. \"attributes.city = 'Almaty'\"")
@json_option
def segment_create(name: str, list_name: str, expression: str, as_json: bool) -> None:
    """Save a segment and print how many subscribers it matches now."""
    with transaction() as session:
        segment = create_segment(session, name, get_list(session, list_name).id, expression)
        document = {
            "name": segment.name,
            "list": list_name,
            "count": count_segment(session, segment),
        }
    emit(document, as_json, lambda d: click.echo(f"segment {d['name']}: {d['count']} subscribers"))


@segment_group.command("count")
@click.argument("name")
@json_option
def segment_count(name: str, as_json: bool) -> None:
    """How many subscribers the segment would mail now."""
    with reading() as session:
        segment = get_segment(session, name)
        document = {"name": segment.name, "count": count_segment(session, segment)}
    emit(document, as_json, lambda d: click.echo(f"segment {d['name']}: {d['count']} subscribers"))
