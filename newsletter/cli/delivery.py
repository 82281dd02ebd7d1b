"""``newsletter send``, ``test-send`` and ``worker``: starting campaigns and running the senders.

The ``campaign …`` group is in ``campaigns``; following a send (progress, what it waits for) in
``progress``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import threading
from typing import Any

import click

from newsletter import jobs, sending
from newsletter.cli.campaigns import campaign, confirmed
from newsletter.cli.context import database, emit, json_option, reading, settings, transaction
from newsletter.cli.progress import drive, print_report, send_document
from newsletter.config import Settings
from newsletter.db import utcnow
from newsletter.delivery import report, service
from newsletter.delivery.testsend import send_test
from newsletter.errors import InvalidInput


def register(cli: click.Group) -> None:
    for command in (send, campaign, test_send, worker):
        cli.add_command(command)


@click.command()
@click.argument("issue_id", type=int)
@click.option("--list", "list_names", multiple=True, help="List to send to (repeatable).")
@click.option("--segment", help="Only the subscribers a saved segment of one list matches.")
@click.option("--at", "send_at", help="Start at this ISO time (e.g. 2026-12-01T08:00+06:00).")
@click.option("--wait", is_flag=True, help="Stay until every recipient is done, with progress.")
@click.option(
    "--again",
    is_flag=True,
    help="Send although the issue went to this audience already (asks first, saying how many "
    "people would get it a second time).",
)
@click.option("--yes", is_flag=True, help="With --again: do not ask (for scripts).")
@json_option
def send(
    issue_id: int,
    list_names: tuple[str, ...],
    segment: str | None,
    send_at: str | None,
    wait: bool,
    again: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Send issue ISSUE_ID to the subscribers of the given lists (each person once).

    An issue goes to a list or segment once: a second `send` is refused, naming the first
    campaign; `--again` sends one more round after a confirmation.
    """
    config = settings()
    if again and not yes:
        _confirm_again(issue_id, list(list_names), segment)
    now = utcnow()
    with transaction() as session:
        campaign = service.create_campaign(
            session,
            issue_id=issue_id,
            list_names=list(list_names),
            segment_name=segment,
            send_at=_iso_time(send_at) if send_at else None,
            again=again,
        )
        recipients = service.schedule_or_start(session, config, campaign, now)
        campaign_id, scheduled_at = campaign.id, campaign.send_at
    if scheduled_at is not None and scheduled_at > now:
        click.echo(
            f"campaign {campaign_id}: {recipients} recipients, scheduled for "
            f"{report.clock_time(scheduled_at, now)}; {report.starter(config)}",
            err=True,
        )
    else:
        click.echo(f"campaign {campaign_id}: {recipients} recipients", err=True)
    drive(campaign_id, wait=wait, show_progress=not as_json)
    with reading() as session:
        emit(
            send_document(report.report(session, campaign_id, utcnow(), config)),
            as_json,
            print_report,
        )


def _confirm_again(issue_id: int, list_names: list[str], segment: str | None) -> None:
    with reading() as session:
        earlier = service.earlier_send(
            session, issue_id=issue_id, list_names=list_names, segment_name=segment
        )
    if earlier is None:
        return  # a first send: nothing to confirm
    question = (
        f"issue {issue_id} went to this audience in campaign {earlier.campaign_id} "
        f"({earlier.status}); {earlier.repeat_recipients} people would receive it a second "
        "time. Send again?"
    )
    if not confirmed(question):
        raise InvalidInput("not sent again: answer y to the question, or pass --yes")


@click.command("test-send")
@click.argument("issue_id", type=int)
@click.option("--to", "addresses", multiple=True, required=True, help="Address (repeatable).")
@click.option(
    "--list", "list_name", help="Whose message to test (needed when there are several lists)."
)
@json_option
def test_send(
    issue_id: int, addresses: tuple[str, ...], list_name: str | None, as_json: bool
) -> None:
    """Send the issue as a list's subscribers get it (signed, "[TEST]" subject), to a few
    addresses, without a campaign or ledger; its unsubscribe link only says it was a test."""
    config = settings()
    transport = sending.new_transport(config)
    try:
        with transaction() as session:
            report = send_test(
                session,
                config,
                issue_id,
                list(addresses),
                transport=transport,
                signer=sending.dkim_signer(config),
                now=utcnow(),
                list_name=list_name,
            )
    finally:
        transport.close()
    emit(report.as_document(), as_json, _print_test_results)


def _print_test_results(document: dict[str, Any]) -> None:
    for result in document["results"]:
        click.echo(f"{result['to']}: {result['result']}")


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--concurrency",
    type=int,
    default=4,
    show_default=True,
    help="Tasks at once in this process (each batch holds one SMTP connection).",
)
@click.option(
    "--pool",
    type=click.Choice(["threads", "prefork"]),
    default="threads",
    show_default=True,
    help="threads: a batch mostly waits on SMTP and the database, so threads in one "
    "process overlap those waits cheaply; run one worker per core.",
)
@click.option("--beat/--no-beat", default=False, help="Also run the scheduler (one per cluster).")
@click.pass_context
def worker(ctx: click.Context, concurrency: int, pool: str, beat: bool) -> None:
    """Run the background work: a Celery worker with a broker, else everything in-process.

    Without NEWSLETTER_BROKER_URL it runs the embedded loop until stopped (Ctrl-C, SIGTERM):
    it starts scheduled campaigns, sends, recovers dead senders' rows, processes stored
    bounces and polls the bounce mailbox. With a broker, extra options go to Celery.
    """
    config = settings()
    if config.broker_url is None:
        _embedded_worker(config)
        return
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "worker",
        "--loglevel=INFO",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "--prefetch-multiplier=1",
        *ctx.args,
    ]
    if beat:
        argv.append("--beat")
    os.execv(sys.executable, argv)


def _embedded_worker(config: Settings) -> None:
    database()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    polling = (
        f"; the bounce mailbox every {config.bounce_poll_seconds} s"
        if config.bounce_mailbox
        else ""
    )
    click.echo(
        "no broker: running every task in this process (scheduled campaigns, sending, "
        f"recovery, stored bounces{polling}); Ctrl-C stops it",
        err=True,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a person stops it
        jobs.run_worker(config, stop)
    click.echo("worker stopped", err=True)


def _iso_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(
            f"--at must be an ISO time like 2026-12-01T08:00+06:00; got {text!r}"
        ) from exc
    if value.tzinfo is None:
        raise InvalidInput("--at needs a time zone, e.g. 2026-12-01T08:00+06:00 or …Z")
    return value.astimezone(dt.UTC)
