"""Use cases of the delivery stage: create (one send per issue and audience), start, pause, resume,
cancel and resend campaigns; what they are doing is in ``report``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.db import get_or_raise, utcnow
from newsletter.delivery import audience, holds, ledger
from newsletter.delivery.context import CampaignMessage
from newsletter.delivery.message import (
    CampaignHeaders,
    MessageTemplate,
    RecipientValues,
    message_id,
)
from newsletter.delivery.models import (
    Campaign,
    CampaignList,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
)
from newsletter.delivery.sender import finish_if_done
from newsletter.errors import AlreadySent, ConfigError, InvalidInput, InvalidTransition, NotFound
from newsletter.issues.models import IssueStatus
from newsletter.issues.service import get_issue
from newsletter.render import service as render_service
from newsletter.render.models import IssueRendering
from newsletter.subscribers.models import MailingList
from newsletter.subscribers.segments import get_segment
from newsletter.subscribers.service import get_list, list_slug
from newsletter.subscribers.tokens import unsubscribe_mailto, unsubscribe_token, unsubscribe_url

FEEDBACK_TENANT = "nl"


def create_campaign(
    session: Session,
    *,
    issue_id: int,
    list_names: list[str],
    send_at: dt.datetime | None = None,
    segment_name: str | None = None,
    again: bool = False,
) -> Campaign:
    """An issue to one or more lists, or to a segment (a saved filter over one list).

    One send per issue and audience: when the issue went (or is going) to the same lists or
    segment already, ``AlreadySent`` names the earlier campaign, unless ``again`` asks for one
    more round. The database's unique constraint is the guard, not the look-up before it: of
    two sends at the same moment one inserts, the other is refused.
    """
    segment = get_segment(session, segment_name) if segment_name else None
    list_ids = [get_list(session, name).id for name in dict.fromkeys(list_names)]
    if segment is not None:
        if list_ids not in ([], [segment.list_id]):
            raise InvalidInput(f"segment {segment.name!r} is part of one list; give only that one")
        list_ids = [segment.list_id]
    if not list_ids:
        raise InvalidInput("a campaign needs at least one list (--list NAME) or a --segment")
    issue = get_issue(session, issue_id)
    audience_key = audience.key(list_ids, segment.id if segment else None)
    earlier = _last_round(session, issue_id, audience_key)
    if earlier is not None and not again:
        raise _already_sent(session, earlier)
    campaign = Campaign(
        issue=issue,
        send_at=send_at,
        segment=segment,
        lists=[CampaignList(list_id=list_id) for list_id in list_ids],
        audience_key=audience_key,
        audience_round=(earlier.audience_round or 0) + 1 if earlier else 1,
    )
    try:
        with session.begin_nested():
            session.add(campaign)
    except IntegrityError:
        winner = _last_round(session, issue_id, audience_key)
        if winner is None:  # pragma: no cover - the constraint names a row that exists
            raise
        raise _already_sent(session, winner) from None
    return campaign


def _last_round(session: Session, issue_id: int, audience_key: str) -> Campaign | None:
    """The latest campaign of the issue to this audience that holds a round."""
    return session.scalar(
        select(Campaign)
        .where(
            Campaign.issue_id == issue_id,
            Campaign.audience_key == audience_key,
            Campaign.audience_round.is_not(None),
        )
        .order_by(Campaign.audience_round.desc())
        .limit(1)
    )


def _already_sent(session: Session, earlier: Campaign) -> AlreadySent:
    counts = ledger.status_counts(session, earlier.id)
    shown = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    what = "was sent" if earlier.status is CampaignStatus.SENT else "is being sent"
    if earlier.status in (CampaignStatus.SCHEDULED, CampaignStatus.DRAFT):
        what = "is scheduled"
    elif earlier.status is CampaignStatus.CANCELLED:
        what = "was partly sent"
    return AlreadySent(
        f"issue {earlier.issue_id} {what} to this audience by campaign {earlier.id} "
        f"({earlier.status}{': ' + shown if shown else ''}); "
        "`send --again` sends it once more",
        campaign_id=earlier.id,
    )


@dataclass(frozen=True, slots=True)
class EarlierSend:
    """What `send --again` must state before it sends: the last round and who got it."""

    campaign_id: int
    status: str
    counts: dict[str, int]
    repeat_recipients: int  # people who got it (or are getting it) and would get it again


def earlier_send(
    session: Session, *, issue_id: int, list_names: list[str], segment_name: str | None = None
) -> EarlierSend | None:
    """The latest round of the issue to this audience, and how many would get it twice."""
    segment = get_segment(session, segment_name) if segment_name else None
    list_ids = (
        [segment.list_id]
        if segment is not None
        else [get_list(session, name).id for name in dict.fromkeys(list_names)]
    )
    audience_key = audience.key(list_ids, segment.id if segment else None)
    earlier = _last_round(session, issue_id, audience_key)
    if earlier is None:
        return None
    return EarlierSend(
        campaign_id=earlier.id,
        status=str(earlier.status),
        counts=ledger.status_counts(session, earlier.id),
        repeat_recipients=audience.repeat_recipients(session, issue_id, audience_key),
    )


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    return get_or_raise(session, Campaign, campaign_id, f"no campaign with id {campaign_id}")


def created_at(session: Session, campaign_id: int) -> dt.datetime:
    """When the campaign was made: with its id, what tells it from any other row."""
    made = session.scalar(select(Campaign.created_at).where(Campaign.id == campaign_id))
    if made is None:
        raise NotFound(f"no campaign with id {campaign_id}")
    return made


def schedule_or_start(
    session: Session, settings: Settings, campaign: Campaign, now: dt.datetime
) -> int:
    """Start now, or schedule for ``send_at``; either way the issue must pass its check first.

    The issue is rendered here if it changed since its last rendering, once; the check and
    every later step read that rendering.
    """
    if campaign.send_at is not None and campaign.send_at > now:
        check_can_send(session, settings, campaign.issue_id)
        campaign.transition(CampaignStatus.SCHEDULED, at=now)
        return ledger_preview_count(session, campaign)
    return start_campaign(session, settings, campaign.id, now)


def check_can_send(session: Session, settings: Settings, issue_id: int) -> IssueRendering:
    """Render the issue if it changed (the one render of a send), then check that rendering."""
    if not settings.postal_address:
        raise ConfigError("NEWSLETTER_POSTAL_ADDRESS must be set: every message shows it")
    rendering = render_service.render_if_changed(session, settings, issue_id)
    render_service.require_sendable(session, settings, issue_id, rendering)
    return rendering


def start_campaign(session: Session, settings: Settings, campaign_id: int, now: dt.datetime) -> int:
    """Resolve the recipients into ledger rows and open the campaign; return how many."""
    campaign = get_campaign(session, campaign_id)
    check_can_send(session, settings, campaign.issue_id)
    issue = campaign.issue
    if issue.status != IssueStatus.SENT:
        issue.transition(IssueStatus.SENT)  # freezes the rendering the recipients get
    campaign.transition(CampaignStatus.SENDING, at=now)
    campaign.started_at = now
    audience.create_deliveries(session, campaign, now)
    campaign.recipient_count = (
        session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign.id)
        )
        or 0
    )
    session.flush()
    finish_if_done(session, campaign.id, now)  # an empty audience is done at once
    return campaign.recipient_count


def ledger_preview_count(session: Session, campaign: Campaign) -> int:
    """How many would receive it if it started now (stated before a scheduled send)."""
    query = select(func.count()).select_from(audience.audience(campaign).subquery())
    return session.scalar(query) or 0


def start_due_campaigns(session: Session, settings: Settings, now: dt.datetime) -> list[int]:
    """Start every scheduled campaign whose time has come (Celery beat, or any CLI send)."""
    due = list(
        session.scalars(
            select(Campaign.id).where(
                Campaign.status == CampaignStatus.SCHEDULED, Campaign.send_at <= now
            )
        )
    )
    for campaign_id in due:
        start_campaign(session, settings, campaign_id, now)
    return due


def pause(
    session: Session,
    campaign_id: int,
    reason: str = "paused by an editor",
    now: dt.datetime | None = None,
) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    campaign.transition(CampaignStatus.PAUSED, reason, at=now or utcnow())
    return campaign


@dataclass(frozen=True, slots=True)
class Resumed:
    campaign: Campaign
    released: list[str]  # domains the circuit breaker held
    requeued: int  # rows whose last reply was a policy rejection, queued again
    started: int | None = None  # a scheduled campaign started now: its recipients


def resume(
    session: Session, settings: Settings, campaign_id: int, now: dt.datetime | None = None
) -> Resumed:
    """Go on sending: release the domains the breaker held and retry the rows held by policy.

    Works on a paused campaign, on a sending one with held domains, on a finished one whose
    last rows failed on policy rejections, and on a scheduled one, which starts now.
    """
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id)
    if campaign.status is CampaignStatus.SCHEDULED:
        started = start_campaign(session, settings, campaign_id, now)
        return Resumed(campaign, [], 0, started=started)
    if campaign.status is CampaignStatus.CANCELLED:
        raise InvalidTransition(
            f"campaign {campaign_id} is cancelled; `campaign resend {campaign_id} --unsent` "
            "sends the rest as a new run"
        )
    if campaign.status not in (CampaignStatus.PAUSED, CampaignStatus.SENDING, CampaignStatus.SENT):
        campaign.transition(CampaignStatus.SENDING)  # raises InvalidTransition, says why
    released = holds.release_holds(session, campaign_id)
    requeued = ledger.requeue_policy_held(session, campaign_id, now)
    if campaign.status is CampaignStatus.PAUSED or (
        campaign.status is CampaignStatus.SENT and requeued
    ):
        campaign.transition(CampaignStatus.SENDING, at=now)
        campaign.finished_at = None
    elif not (released or requeued):
        raise InvalidTransition(f"campaign {campaign_id} is {campaign.status}: nothing to resume")
    return Resumed(campaign, released, requeued)


def cancel(session: Session, campaign_id: int, now: dt.datetime) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    never_started = campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
    campaign.transition(CampaignStatus.CANCELLED, "cancelled by an editor", at=now)
    campaign.finished_at = now
    if never_started:
        campaign.audience_round = None  # nobody was mailed: the audience is free again
    return campaign


@dataclass(frozen=True, slots=True)
class Resent:
    requeued: int  # rows queued again by this command
    pending: int  # every row now waiting to be sent (a cancelled campaign's rest included)
    claimed: int  # rows a worker holds: they are sent, or recovered when its lease lapses
    claimed_until: dt.datetime | None  # the latest lease among them


def resend_unsent(session: Session, campaign_id: int, now: dt.datetime) -> Resent:
    """Queue again the rows that never left (failed, skipped); never a sent or bounced one.

    On a cancelled campaign this is a new run: the rows it never reached are sent too.
    """
    campaign = get_campaign(session, campaign_id)
    if campaign.status is CampaignStatus.SCHEDULED:
        raise InvalidTransition(f"campaign {campaign_id} has not started: nothing to resend")
    requeued = ledger.requeue_unsent(session, campaign_id, now)
    return _reopen(session, campaign, requeued, now)


def resend_possibly_sent(session: Session, campaign_id: int, now: dt.datetime) -> Resent:
    """Queue again the rows a dead worker left in doubt: the operator checked the relay's log."""
    campaign = get_campaign(session, campaign_id)
    requeued = ledger.requeue_possibly_sent(session, campaign_id, now)
    return _reopen(session, campaign, requeued, now)


def _reopen(session: Session, campaign: Campaign, requeued: int, now: dt.datetime) -> Resent:
    counts = ledger.status_counts(session, campaign.id)
    pending = counts[DeliveryStatus.PENDING] + counts[DeliveryStatus.DEFERRED]
    if pending and campaign.status in (CampaignStatus.SENT, CampaignStatus.CANCELLED):
        reason = "a new run: resending" if campaign.status is CampaignStatus.CANCELLED else None
        campaign.transition(CampaignStatus.SENDING, reason, at=now)
        campaign.finished_at = None
    claimed_until = session.scalar(
        select(func.max(Delivery.lease_expires_at)).where(
            Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.SENDING
        )
    )
    return Resent(requeued, pending, counts[DeliveryStatus.SENDING], claimed_until)


def campaign_message(session: Session, settings: Settings, campaign_id: int) -> CampaignMessage:
    """The campaign's MIME template, built from the issue's stored rendering.

    Raises ``UserError`` when no recipient's message could be built (a setting, a list name or
    the issue is at fault): the send loop pauses the campaign with that reason instead of
    failing recipients one by one. It renders one sample recipient to find out.
    """
    campaign = get_campaign(session, campaign_id)
    rendering = render_service.stored_rendering(session, campaign.issue_id)
    first_list = session.get(MailingList, campaign.list_ids[0])
    assert first_list is not None
    headers = campaign_headers(settings, campaign.issue.subject, first_list, campaign.id)
    template = MessageTemplate.build(headers, rendering.html, rendering.text)
    template.render(_sample_recipient(settings, campaign), date=utcnow(), eight_bit=False)
    return CampaignMessage(campaign_id=campaign.id, issue_id=campaign.issue_id, template=template)


def _sample_recipient(settings: Settings, campaign: Campaign) -> RecipientValues:
    """A recipient with nothing unusual: whatever fails for them fails for everyone."""
    token = unsubscribe_token(settings.secret_key, 0, campaign.list_ids[0])
    return RecipientValues(
        email="sample@example.org",
        name="Sample Reader",
        message_id=message_id(0, campaign.id, settings.sending_domain, settings.secret_key),
        unsubscribe_url=unsubscribe_url(settings, token),
        unsubscribe_mailto=unsubscribe_mailto(settings, token),
        view_url=f"{settings.base_url}/issues/{campaign.issue_id}",
    )


def campaign_headers(
    settings: Settings, subject: str, mailing_list: MailingList, campaign_id: int
) -> CampaignHeaders:
    return CampaignHeaders(
        from_address=settings.from_address,
        reply_to=settings.reply_to,
        subject=subject,
        list_id=f"{list_slug(mailing_list.name)}.{settings.sending_domain}",
        list_name=mailing_list.name,
        feedback_id=f"c{campaign_id}:l{mailing_list.id}:{FEEDBACK_TENANT}:"
        f"{settings.feedback_id_sender}",
    )


def sending_campaign_ids(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(Campaign.id)
            .where(Campaign.status == CampaignStatus.SENDING)
            .order_by(Campaign.id)
        )
    )
