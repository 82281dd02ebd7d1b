"""What a campaign is doing, in an operator's words: counts, rate, ETA, and what it waits for.

Read-only: every function takes a ``Session`` and writes nothing, so `campaign status`, `ls`
and `recipients` work on a database the command may only read.

"Waiting" is the answer to "why is nothing moving?": a relay that refuses connections and when
a lane tries it again, rows claimed by a worker and until when its lease holds them (a dead
worker's rows are taken over when it lapses), domains that asked us to slow down, retries not
due yet, a schedule, a pause and its reason.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.db import get_or_raise
from newsletter.delivery import holds, lanes, ledger
from newsletter.delivery.holds import Hold
from newsletter.delivery.models import (
    OPEN_STATUSES,
    Campaign,
    CampaignList,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    DomainThrottle,
)
from newsletter.subscribers.models import MailingList, Subscriber

RATE_WINDOW_SECONDS = 30  # the ETA follows the last half-minute, not the whole run


class WaitKind(enum.StrEnum):
    SCHEDULE = "schedule"  # a scheduled campaign: when, and which process starts it
    PAUSE = "pause"  # paused: by whom or why
    RELAY = "relay"  # the relay refused us: when a lane tries again
    LEASE = "lease"  # rows claimed by a worker: until when its lease holds them
    DOMAIN = "domain"  # a recipient domain backed off
    RETRY = "retry"  # deferred rows: the next retry


@dataclass(frozen=True, slots=True)
class Waiting:
    kind: WaitKind
    reason: str  # one line, e.g. "relay 127.0.0.1:1 refused the connection; retrying at 10:42:05"
    until: dt.datetime | None
    recipients: int | None = None  # how many rows it holds, when that is known


@dataclass(frozen=True, slots=True)
class Throttle:
    domain: str
    until: dt.datetime
    reason: str | None
    waiting: int  # the campaign's open rows at that domain


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign_id: int
    issue_id: int
    status: str
    reason: str | None
    reply: str | None  # the relay's reply behind an automatic pause
    since: dt.datetime | None  # when the campaign entered its status, if known
    holds: list[Hold]  # domains the circuit breaker holds for this campaign
    throttles: list[Throttle]  # domains backed off that rows of this campaign wait for
    waiting: list[Waiting]
    recipients: int
    counts: dict[str, int]
    rate_per_second: float  # messages accepted by the relay over the last RATE_WINDOW_SECONDS
    eta_seconds: float | None  # None unless sending and moving

    @property
    def done(self) -> int:
        return self.recipients - sum(self.counts[s] for s in OPEN_STATUSES)


def report(
    session: Session, campaign_id: int, now: dt.datetime, settings: Settings | None = None
) -> CampaignReport:
    campaign = _campaign(session, campaign_id)
    counts = ledger.status_counts(session, campaign_id)
    sending = campaign.status is CampaignStatus.SENDING
    rate = _rate(session, campaign_id, now) if sending else 0.0
    open_rows = sum(counts[s] for s in OPEN_STATUSES)
    throttles = _throttles(session, campaign_id, now) if sending else []
    return CampaignReport(
        campaign_id=campaign.id,
        issue_id=campaign.issue_id,
        status=str(campaign.status),
        reason=campaign.status_reason,
        reply=campaign.status_reply,
        since=campaign.status_since,
        holds=holds.holds_of(session, campaign_id),
        throttles=throttles,
        waiting=list(_waiting(session, campaign, throttles, now, settings)),
        recipients=campaign.recipient_count,
        counts=counts,
        rate_per_second=rate,
        eta_seconds=open_rows / rate if sending and rate > 0 and open_rows else None,
    )


def _campaign(session: Session, campaign_id: int) -> Campaign:
    return get_or_raise(session, Campaign, campaign_id, f"no campaign with id {campaign_id}")


def _rate(session: Session, campaign_id: int, now: dt.datetime) -> float:
    window = dt.timedelta(seconds=RATE_WINDOW_SECONDS)
    recent = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.campaign_id == campaign_id, Delivery.sent_at >= now - window)
    )
    return (recent or 0) / RATE_WINDOW_SECONDS


def _throttles(session: Session, campaign_id: int, now: dt.datetime) -> list[Throttle]:
    waiting = (
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.domain == DomainThrottle.domain,
            Delivery.status.in_(OPEN_STATUSES),
        )
        .correlate(DomainThrottle)
        .scalar_subquery()
    )
    rows = session.execute(
        select(DomainThrottle.domain, DomainThrottle.until, DomainThrottle.reason, waiting)
        .where(DomainThrottle.until > now)
        .order_by(DomainThrottle.until)
    )
    return [Throttle(d, until, reason, count) for d, until, reason, count in rows if count]


def _waiting(
    session: Session,
    campaign: Campaign,
    throttles: list[Throttle],
    now: dt.datetime,
    settings: Settings | None,
) -> Iterator[Waiting]:
    if campaign.status is CampaignStatus.SCHEDULED and campaign.send_at is not None:
        yield Waiting(
            WaitKind.SCHEDULE,
            f"starts at {clock_time(campaign.send_at, now)}"
            + (f", {starter(settings)}" if settings else ""),
            campaign.send_at,
        )
    if campaign.status is CampaignStatus.PAUSED:
        yield Waiting(WaitKind.PAUSE, campaign.status_reason or "paused", None)
    if campaign.status is not CampaignStatus.SENDING:
        return
    relay = lanes.relay_waits(session, now)
    if relay is not None:
        error, retry_at = relay
        yield Waiting(WaitKind.RELAY, f"{error}; retrying at {clock_time(retry_at, now)}", retry_at)
    claimed = session.execute(
        select(Delivery.lease_owner, func.count(), func.max(Delivery.lease_expires_at))
        .where(Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.SENDING)
        .group_by(Delivery.lease_owner)
    )
    for owner, count, until in claimed:
        if until is None:
            continue
        if until > now:
            reason = (
                f"{count} recipients claimed by worker {owner}, its lease until "
                f"{clock_time(until, now)}"
            )
        else:
            reason = (
                f"{count} recipients claimed by worker {owner}, whose lease ran out at "
                f"{clock_time(until, now)}: the next tick gives them to another worker"
            )
        yield Waiting(WaitKind.LEASE, reason, until, count)
    for throttle in throttles:
        yield Waiting(
            WaitKind.DOMAIN,
            f"{throttle.domain} asked us to slow down; {throttle.waiting} recipients wait until "
            f"{clock_time(throttle.until, now)}"
            + (f" ({throttle.reason})" if throttle.reason else ""),
            throttle.until,
            throttle.waiting,
        )
    deferred, next_retry = session.execute(
        select(func.count(), func.min(Delivery.next_attempt_at)).where(
            Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.DEFERRED
        )
    ).one()
    if deferred and next_retry is not None:
        yield Waiting(
            WaitKind.RETRY,
            f"{deferred} recipients deferred; the next retry at {clock_time(next_retry, now)}",
            next_retry,
            deferred,
        )


def starter(settings: Settings) -> str:
    """Which process starts a scheduled campaign, in this deployment."""
    if settings.in_process:
        return "started by `newsletter worker` (or any `newsletter send`) running then"
    return "started by Celery beat (`newsletter worker --beat`)"


def clock_time(when: dt.datetime, now: dt.datetime) -> str:
    """10:42:05 today, 2026-12-02 08:00:00 otherwise; in the machine's time zone."""
    local, today = when.astimezone(), now.astimezone()
    return f"{local:%H:%M:%S}" if local.date() == today.date() else f"{local:%Y-%m-%d %H:%M:%S}"


# --- listings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    campaign_id: int
    issue_id: int
    subject: str
    audience: list[str]  # list names, or "segment NAME"
    status: str
    recipients: int
    sent: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


def list_campaigns(session: Session, status: CampaignStatus | None = None) -> list[CampaignSummary]:
    """Every campaign (or those in ``status``), newest first."""
    query = select(Campaign).order_by(Campaign.id.desc())
    if status is not None:
        query = query.where(Campaign.status == status)
    campaigns = session.scalars(query).all()
    ids = [c.id for c in campaigns]
    sent = {
        campaign_id: count
        for campaign_id, count in session.execute(
            select(Delivery.campaign_id, func.count())
            .where(Delivery.campaign_id.in_(ids), Delivery.status == DeliveryStatus.SENT)
            .group_by(Delivery.campaign_id)
        )
    }
    names: dict[int, list[str]] = {}
    for campaign_id, name in session.execute(
        select(CampaignList.campaign_id, MailingList.name)
        .join(MailingList, MailingList.id == CampaignList.list_id)
        .where(CampaignList.campaign_id.in_(ids))
        .order_by(MailingList.name)
    ):
        names.setdefault(campaign_id, []).append(name)
    return [
        CampaignSummary(
            campaign_id=c.id,
            issue_id=c.issue_id,
            subject=c.issue.subject,
            audience=[f"segment {c.segment.name}"] if c.segment else names.get(c.id, []),
            status=str(c.status),
            recipients=c.recipient_count,
            sent=sent.get(c.id, 0),
            created_at=c.created_at,
            started_at=c.started_at,
            finished_at=c.finished_at,
        )
        for c in campaigns
    ]


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str | None  # None: the subscriber was erased since (the row stays, anonymous)
    name: str | None
    status: str
    attempts: int
    last_reply: str | None
    sent_at: dt.datetime | None
    updated_at: dt.datetime


def recipients(
    session: Session, campaign_id: int, statuses: list[DeliveryStatus] | None = None
) -> Iterator[Recipient]:
    """Who the campaign mails and how each fared, in ledger order; streamed, not loaded."""
    _campaign(session, campaign_id)
    query = (
        select(
            Subscriber.email,
            Subscriber.name,
            Delivery.status,
            Delivery.attempts,
            Delivery.last_reply,
            Delivery.sent_at,
            Delivery.updated_at,
        )
        .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.campaign_id == campaign_id)
        .order_by(Delivery.id)
    )
    if statuses:
        query = query.where(Delivery.status.in_(statuses))
    for email, name, status, attempts, reply, sent_at, updated_at in session.execute(
        query.execution_options(yield_per=1000)
    ):
        yield Recipient(email, name, str(status), attempts, reply, sent_at, updated_at)
