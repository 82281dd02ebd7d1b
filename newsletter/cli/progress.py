"""How a sending command follows its campaign: sends it here (embedded) or watches the workers.

Embedded mode sends in the command's own process, and the progress bar counts each recipient
as the send loop deals with it. With workers, ``--wait`` follows the ledger once a second.
Either way, when nothing is moving the command says what it waits for and until when, on a
line of its own each time that changes ("relay 127.0.0.1:1 refused the connection; retrying at
10:42:05").
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from newsletter import jobs
from newsletter.cli.context import reading, settings
from newsletter.db import utcnow
from newsletter.delivery import report
from newsletter.delivery.context import Progress as OnEachRecipient
from newsletter.delivery.models import CampaignStatus

FOLLOW_SECONDS = 1.0
STILL_GOING = (str(CampaignStatus.SENDING), str(CampaignStatus.SCHEDULED))


def drive(campaign_id: int, *, wait: bool, show_progress: bool) -> None:
    """Embedded mode sends right here; with workers, --wait follows their progress."""
    config = settings()
    if not config.in_process:
        jobs.kick(config)
        if wait:
            follow(campaign_id, show_progress)
        return
    said = _Said()
    with bar_for(campaign_id, show_progress and wait and sys.stderr.isatty()) as advance:
        jobs.run_until_idle(
            config,
            wait=wait,
            progress=advance,
            idle=lambda _due: said.waiting(campaign_id),
        )


def follow(campaign_id: int, show_progress: bool) -> None:
    said = _Said()
    with _bar(show_progress) as bar:
        task = bar.add_task("sending", total=None) if bar else None
        while True:
            with reading() as session:
                current = report.report(session, campaign_id, utcnow(), settings())
            if bar is not None and task is not None:
                bar.update(task, total=current.recipients, completed=current.done)
            if current.status not in STILL_GOING:
                return
            if not current.rate_per_second:
                said.lines(current)
            time.sleep(FOLLOW_SECONDS)


@contextmanager
def bar_for(campaign_id: int, shown: bool) -> Iterator[OnEachRecipient | None]:
    """A bar that starts at what the ledger shows done and advances once per recipient."""
    if not shown:
        yield None
        return
    with reading() as session:
        current = report.report(session, campaign_id, utcnow())
    with _bar(True) as bar:
        assert bar is not None
        task = bar.add_task("sending", total=current.recipients, completed=current.done)
        yield lambda: _advance(bar, task)


def _advance(bar: Progress, task: TaskID) -> None:
    bar.advance(task)


@contextmanager
def _bar(shown: bool) -> Iterator[Progress | None]:
    if not shown:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        transient=True,
    )
    with bar:
        yield bar


class _Said:
    """The waiting lines already printed: each is said once, when it first applies."""

    def __init__(self) -> None:
        self._last: list[str] = []

    def waiting(self, campaign_id: int) -> None:
        with reading() as session:
            self.lines(report.report(session, campaign_id, utcnow(), settings()))

    def lines(self, current: report.CampaignReport) -> None:
        reasons = [w.reason for w in current.waiting]
        if reasons and reasons != self._last:
            for reason in reasons:
                click.echo(f"campaign {current.campaign_id}: waiting: {reason}", err=True)
        self._last = reasons


def document(current: report.CampaignReport) -> dict[str, Any]:
    """`campaign status --json`: counts, rate, ETA, pause reason, held and throttled domains,
    and what the campaign waits for."""
    return {
        "campaign": current.campaign_id,
        "issue": current.issue_id,
        "status": current.status,
        "reason": current.reason,
        "reply": current.reply,
        "since": current.since.isoformat() if current.since else None,
        "held_domains": [
            {
                "domain": hold.domain,
                "reply": hold.reply,
                "since": hold.since.isoformat(),
                "waiting": hold.waiting,
            }
            for hold in current.holds
        ],
        "throttled_domains": [
            {
                "domain": t.domain,
                "until": t.until.isoformat(),
                "reason": t.reason,
                "waiting": t.waiting,
            }
            for t in current.throttles
        ],
        "waiting": [
            {
                "for": w.kind.value,
                "reason": w.reason,
                "until": w.until.isoformat() if w.until else None,
                "recipients": w.recipients,
            }
            for w in current.waiting
        ],
        "recipients": current.recipients,
        "counts": current.counts,
        "rate_per_second": round(current.rate_per_second, 1),
        "eta_seconds": round(current.eta_seconds) if current.eta_seconds is not None else None,
    }


def send_document(current: report.CampaignReport) -> dict[str, Any]:
    counts = current.counts
    return {
        "campaign": current.campaign_id,
        "status": current.status,
        "recipients": current.recipients,
        "sent": counts["sent"],
        "deferred": counts["deferred"],
        "failed": counts["failed"],
        "bounced": counts["bounced"],
        "skipped": counts["skipped"],
        "possibly_sent": counts["possibly_sent"],
        "pending": counts["pending"] + counts["sending"],
        "waiting": [w.reason for w in current.waiting],
    }


def print_report(document: dict[str, Any]) -> None:
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
    click.echo("  " + (", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nobody"))
    bounces = document.get("bounces")
    if bounces:
        click.echo(
            "  bounces: "
            + ", ".join(f"{k} {v}" for k, v in bounces.items() if not isinstance(v, dict) and v)
        )
    for waiting in document.get("waiting", []):
        reason = waiting["reason"] if isinstance(waiting, dict) else waiting
        click.echo(f"  waiting: {reason}")
    if document.get("eta_seconds") is not None:
        click.echo(f"  {document['rate_per_second']}/s, about {document['eta_seconds']} s to go")
