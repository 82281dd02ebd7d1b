"""``newsletter campaign …``: list, follow and steer campaigns, and say who got what."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import click

from newsletter.bounces.report import campaign_bounce_summary
from newsletter.cli.context import emit, json_option, reading, settings, transaction
from newsletter.cli.progress import document, drive, print_report
from newsletter.db import utcnow
from newsletter.delivery import report, service
from newsletter.delivery.models import CampaignStatus, DeliveryStatus
from newsletter.errors import InvalidInput
from newsletter.subscribers.csvfile import neutralise

RECIPIENT_FIELDS = ("email", "name", "status", "attempts", "last_reply", "sent_at", "updated_at")


@click.group()
def campaign() -> None:
    """Follow and steer campaigns."""


@campaign.command("ls")
@click.option(
    "--status",
    "status",
    type=click.Choice([s.value for s in CampaignStatus]),
    help="Only campaigns in this status.",
)
@json_option
def campaign_ls(status: str | None, as_json: bool) -> None:
    """Every campaign, newest first: issue, audience, status and how many were sent."""
    with reading() as session:
        found = report.list_campaigns(session, CampaignStatus(status) if status else None)
        documents = [
            {
                "campaign": c.campaign_id,
                "issue": c.issue_id,
                "subject": c.subject,
                "audience": c.audience,
                "status": c.status,
                "recipients": c.recipients,
                "sent": c.sent,
                "created_at": c.created_at.isoformat(),
                "started_at": c.started_at.isoformat() if c.started_at else None,
                "finished_at": c.finished_at.isoformat() if c.finished_at else None,
            }
            for c in found
        ]
    emit(documents, as_json, _print_campaigns)


def _print_campaigns(documents: list[dict[str, Any]]) -> None:
    if not documents:
        click.echo("no campaigns")
    for d in documents:
        click.echo(
            f"{d['campaign']:>5}  {d['status']:<9}  issue {d['issue']} to "
            f"{', '.join(d['audience'])}: {d['sent']}/{d['recipients']} sent  ({d['subject']})"
        )


@campaign.command("status")
@click.argument("campaign_id", type=int)
@json_option
def campaign_status(campaign_id: int, as_json: bool) -> None:
    """Counts by status, the current rate, an ETA, and what the campaign waits for."""
    with reading() as session:
        shown = document(report.report(session, campaign_id, utcnow(), settings()))
        shown["bounces"] = campaign_bounce_summary(session, campaign_id)
    emit(shown, as_json, print_report)


@campaign.command("recipients")
@click.argument("campaign_id", type=int)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in DeliveryStatus]),
    help="Only recipients in this status (repeatable), e.g. possibly_sent.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV (a header line, then one per row).")
@json_option
def campaign_recipients(
    campaign_id: int, statuses: tuple[str, ...], as_csv: bool, as_json: bool
) -> None:
    """Who the campaign is for and how each fared: status, attempts, the relay's last reply."""
    if as_csv and as_json:
        raise InvalidInput("give --csv or --json, not both")
    wanted = [DeliveryStatus(s) for s in statuses]
    with reading() as session:
        rows = report.recipients(session, campaign_id, wanted)
        if as_csv:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(RECIPIENT_FIELDS)
            for row in rows:
                writer.writerow([neutralise("" if v is None else str(v)) for v in _values(row)])
            return
        if as_json:
            listed = [dict(zip(RECIPIENT_FIELDS, _values(r), strict=True)) for r in rows]
            click.echo(json.dumps(listed, ensure_ascii=False))
            return
        for row in rows:
            reply = f"  ({row.last_reply})" if row.last_reply else ""
            click.echo(f"{row.email or '(erased)'}  {row.status}  attempts {row.attempts}{reply}")


def _values(row: report.Recipient) -> list[Any]:
    return [
        row.email,
        row.name,
        row.status,
        row.attempts,
        row.last_reply,
        row.sent_at.isoformat() if row.sent_at else None,
        row.updated_at.isoformat(),
    ]


@campaign.command("pause")
@click.argument("campaign_id", type=int)
@json_option
def campaign_pause(campaign_id: int, as_json: bool) -> None:
    """Stop sending within a second or so; `resume` goes on where it stopped."""
    with transaction() as session:
        service.pause(session, campaign_id)
    status_line(campaign_id, as_json)


@campaign.command("resume")
@click.argument("campaign_id", type=int)
@click.option("--wait", is_flag=True, help="Stay until every recipient is done.")
@json_option
def campaign_resume(campaign_id: int, wait: bool, as_json: bool) -> None:
    """Go on sending a paused campaign, or start a scheduled one now; release held domains and
    retry rows held by policy."""
    with transaction() as session:
        resumed = service.resume(session, settings(), campaign_id, utcnow())
        released, requeued, started = resumed.released, resumed.requeued, resumed.started
    if started is not None:
        click.echo(f"campaign {campaign_id}: started now, {started} recipients", err=True)
    elif released or requeued:
        domains = ", ".join(released) or "none"
        click.echo(
            f"campaign {campaign_id}: domains released: {domains}; "
            f"{requeued} recipients held by policy queued again",
            err=True,
        )
    drive(campaign_id, wait=wait, show_progress=not as_json)
    status_line(campaign_id, as_json)


@campaign.command("cancel")
@click.argument("campaign_id", type=int)
@json_option
def campaign_cancel(campaign_id: int, as_json: bool) -> None:
    """Stop for good; recipients not yet mailed stay `pending` (`resend --unsent` sends them)."""
    with transaction() as session:
        service.cancel(session, campaign_id, utcnow())
    status_line(campaign_id, as_json)


@campaign.command("resend")
@click.argument("campaign_id", type=int)
@click.option(
    "--unsent",
    is_flag=True,
    help="Recipients whose message never went out (failed, skipped, and after a cancel the "
    "ones never reached).",
)
@click.option(
    "--possibly-sent",
    "possibly_sent",
    is_flag=True,
    help="Recipients a dead worker left in doubt; check the relay's log first (asks).",
)
@click.option("--yes", is_flag=True, help="With --possibly-sent: do not ask (for scripts).")
@click.option("--wait", is_flag=True, help="Stay until every recipient is done.")
@json_option
def campaign_resend(
    campaign_id: int, unsent: bool, possibly_sent: bool, yes: bool, wait: bool, as_json: bool
) -> None:
    """Queue again the recipients that did not get the campaign; nobody gets it twice."""
    if unsent == possibly_sent:
        raise InvalidInput("give one of --unsent and --possibly-sent")
    if possibly_sent and not yes:
        _confirm_possibly_sent(campaign_id)
    with transaction() as session:
        now = utcnow()
        if unsent:
            resent = service.resend_unsent(session, campaign_id, now)
        else:
            resent = service.resend_possibly_sent(session, campaign_id, now)
    click.echo(
        f"campaign {campaign_id}: {resent.requeued} recipients queued again, "
        f"{resent.pending} to send",
        err=True,
    )
    if resent.claimed and resent.claimed_until is not None:
        click.echo(
            f"campaign {campaign_id}: {resent.claimed} recipients are claimed by a worker until "
            f"{report.clock_time(resent.claimed_until, now)}; if it died, they go back to the "
            "queue then",
            err=True,
        )
    drive(campaign_id, wait=wait, show_progress=not as_json)
    status_line(campaign_id, as_json)


def _confirm_possibly_sent(campaign_id: int) -> None:
    with reading() as session:
        doubtful = report.report(session, campaign_id, utcnow()).counts["possibly_sent"]
    if not doubtful:
        return
    question = (
        f"campaign {campaign_id}: {doubtful} recipients may have it already (a worker died "
        "while the relay had their message); they get it again if the relay did deliver it. "
        "Queue them again?"
    )
    if not confirmed(question):
        raise InvalidInput("not queued again: answer y to the question, or pass --yes")


def confirmed(question: str) -> bool:
    """Ask on the terminal; no terminal (or Ctrl-C, Ctrl-D) is a no."""
    try:
        return click.confirm(question, default=False, err=True)
    except (click.Abort, EOFError, OSError):
        return False


def status_line(campaign_id: int, as_json: bool) -> None:
    with reading() as session:
        shown = document(report.report(session, campaign_id, utcnow(), settings()))
    emit(shown, as_json, print_report)
