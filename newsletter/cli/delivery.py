"""``newsletter send``, ``campaign …``, ``test-send`` and ``worker``: sending campaigns."""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from newsletter import jobs
from newsletter.bounces.report import campaign_bounce_summary
from newsletter.cli.context import emit, json_option, reading, settings, transaction
from newsletter.delivery import service
from newsletter.delivery.models import OPEN_STATUSES
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
    now = jobs.utcnow()
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
        campaign_id = campaign.id
    click.echo(f"campaign {campaign_id}: {recipients} recipients", err=True)
    _drive(campaign_id, wait=wait, show_progress=not as_json)
    with transaction() as session:
        emit(
            _send_document(service.report(session, campaign_id, jobs.utcnow())),
            as_json,
            _print_report,
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
    if not _confirmed(question):
        raise InvalidInput("not sent again: answer y to the question, or pass --yes")


def _confirmed(question: str) -> bool:
    try:
        return click.confirm(question, default=False, err=True)
    except (click.Abort, EOFError, OSError):  # no terminal to ask, or Ctrl-C / Ctrl-D
        return False


@click.group()
def campaign() -> None:
    """Follow and steer campaigns."""


@campaign.command("status")
@click.argument("campaign_id", type=int)
@json_option
def campaign_status(campaign_id: int, as_json: bool) -> None:
    """Counts by status, the current rate and an ETA."""
    with reading() as session:
        document = _report_document(service.report(session, campaign_id, jobs.utcnow()))
        document["bounces"] = campaign_bounce_summary(session, campaign_id)
    emit(document, as_json, _print_report)


@campaign.command("pause")
@click.argument("campaign_id", type=int)
@json_option
def campaign_pause(campaign_id: int, as_json: bool) -> None:
    """Stop sending within two seconds; `resume` goes on where it stopped."""
    with transaction() as session:
        service.pause(session, campaign_id)
    _status_line(campaign_id, as_json)


@campaign.command("resume")
@click.argument("campaign_id", type=int)
@click.option("--wait", is_flag=True, help="Stay until every recipient is done.")
@json_option
def campaign_resume(campaign_id: int, wait: bool, as_json: bool) -> None:
    """Go on sending a paused campaign; release held domains, retry rows held by policy."""
    with transaction() as session:
        resumed = service.resume(session, campaign_id, jobs.utcnow())
        released, requeued = resumed.released, resumed.requeued
    if released or requeued:
        domains = ", ".join(released) or "none"
        click.echo(
            f"campaign {campaign_id}: domains released: {domains}; "
            f"{requeued} recipients held by policy queued again",
            err=True,
        )
    _drive(campaign_id, wait=wait, show_progress=not as_json)
    _status_line(campaign_id, as_json)


@campaign.command("cancel")
@click.argument("campaign_id", type=int)
@json_option
def campaign_cancel(campaign_id: int, as_json: bool) -> None:
    """Stop for good; recipients not yet mailed stay `pending` in the ledger."""
    with transaction() as session:
        service.cancel(session, campaign_id, jobs.utcnow())
    _status_line(campaign_id, as_json)


@campaign.command("resend")
@click.argument("campaign_id", type=int)
@click.option(
    "--unsent",
    is_flag=True,
    required=True,
    help="Only recipients whose message never went out (failed or skipped).",
)
@click.option("--wait", is_flag=True, help="Stay until every recipient is done.")
@json_option
def campaign_resend(campaign_id: int, unsent: bool, wait: bool, as_json: bool) -> None:
    """Queue again the recipients that never got the campaign; nobody gets it twice."""
    with transaction() as session:
        requeued = service.resend_unsent(session, campaign_id, jobs.utcnow())
    click.echo(f"campaign {campaign_id}: {requeued} recipients queued again", err=True)
    _drive(campaign_id, wait=wait, show_progress=not as_json)
    _status_line(campaign_id, as_json)


@click.command("test-send")
@click.argument("issue_id", type=int)
@click.option("--to", "addresses", multiple=True, required=True, help="Address (repeatable).")
@json_option
def test_send(issue_id: int, addresses: tuple[str, ...], as_json: bool) -> None:
    """Send the issue to a few addresses, without a campaign or ledger."""
    config = settings()
    with transaction() as session:
        results = send_test(session, config, issue_id, list(addresses))
    emit({"issue": issue_id, "results": results}, as_json, _print_test_results)


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
    """Start a Celery worker (needs NEWSLETTER_BROKER_URL); extra options go to Celery."""
    if settings().broker_url is None:
        raise InvalidInput(
            "NEWSLETTER_BROKER_URL is not set; without a broker, tasks run "
            "in-process and no worker is needed"
        )
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


def _drive(campaign_id: int, *, wait: bool, show_progress: bool) -> None:
    """Embedded mode sends right here; with workers, --wait follows their progress."""
    config = settings()
    if not config.in_process:
        jobs.kick(config)
        if wait:
            _follow(campaign_id, show_progress)
        return
    if not (wait and show_progress and sys.stderr.isatty()):
        jobs.run_until_idle(config, wait=wait)
        return
    with _progress_bar() as bar:
        task = bar.add_task("sending", total=None)
        jobs.run_until_idle(
            config, wait=True, progress=lambda _result: _advance(bar, task, campaign_id)
        )


def _follow(campaign_id: int, show_progress: bool) -> None:
    import time

    with _progress_bar() if show_progress else _Null() as bar:
        task = bar.add_task("sending", total=None) if bar else None
        while True:
            with transaction() as session:
                report = service.report(session, campaign_id, jobs.utcnow())
            if bar and task is not None:
                done = report.recipients - sum(report.counts[s] for s in OPEN_STATUSES)
                bar.update(task, total=report.recipients, completed=done)
            if report.status not in ("sending", "scheduled"):
                return
            time.sleep(1)


def _advance(bar: Progress, task: Any, campaign_id: int) -> None:
    with transaction() as session:
        report = service.report(session, campaign_id, jobs.utcnow())
    done = report.recipients - sum(report.counts[s] for s in OPEN_STATUSES)
    bar.update(task, total=report.recipients, completed=done)


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        transient=True,
    )


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _status_line(campaign_id: int, as_json: bool) -> None:
    with transaction() as session:
        document = _report_document(service.report(session, campaign_id, jobs.utcnow()))
    emit(document, as_json, _print_report)


def _report_document(report: service.CampaignReport) -> dict[str, Any]:
    return {
        "campaign": report.campaign_id,
        "issue": report.issue_id,
        "status": report.status,
        "reason": report.reason,
        "reply": report.reply,
        "since": report.since.isoformat() if report.since else None,
        "held_domains": [
            {
                "domain": hold.domain,
                "reply": hold.reply,
                "since": hold.since.isoformat(),
                "waiting": hold.waiting,
            }
            for hold in report.holds
        ],
        "recipients": report.recipients,
        "counts": report.counts,
        "rate_per_second": round(report.rate_per_second, 1),
        "eta_seconds": round(report.eta_seconds) if report.eta_seconds is not None else None,
    }


def _send_document(report: service.CampaignReport) -> dict[str, Any]:
    counts = report.counts
    return {
        "campaign": report.campaign_id,
        "status": report.status,
        "recipients": report.recipients,
        "sent": counts["sent"],
        "deferred": counts["deferred"],
        "failed": counts["failed"],
        "bounced": counts["bounced"],
        "skipped": counts["skipped"],
        "possibly_sent": counts["possibly_sent"],
        "pending": counts["pending"] + counts["sending"],
    }


def _print_report(document: dict[str, Any]) -> None:
    counts = document.get("counts") or {
        k: document[k]
        for k in ("sent", "deferred", "failed", "bounced", "skipped", "possibly_sent", "pending")
    }
    click.echo(
        f"campaign {document['campaign']}: {document['status']}"
        + (f" since {document['since']}" if document.get("since") else "")
        + (f" ({document['reason']})" if document.get("reason") else "")
        + f", {document['recipients']} recipients"
    )
    if document.get("reply"):
        click.echo(f"  relay said: {document['reply']}")
    for hold in document.get("held_domains", []):
        click.echo(
            f"  held: {hold['domain']} since {hold['since']}, {hold['waiting']} waiting; "
            f"relay said: {hold['reply']}"
        )
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    bounces = document.get("bounces")
    if bounces:
        click.echo(
            "  bounces: "
            + ", ".join(f"{k} {v}" for k, v in bounces.items() if not isinstance(v, dict) and v)
        )
    if document.get("eta_seconds") is not None:
        click.echo(f"  {document['rate_per_second']}/s, about {document['eta_seconds']} s to go")


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
