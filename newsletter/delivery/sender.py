"""The send loop: claim → fence → build → send → record → check status.

``send_batch`` is one unit of work (one Celery task, or one turn of the in-process loop). It
holds a send lane (one SMTP connection), claims up to NEWSLETTER_BATCH_SIZE due rows of a
sending campaign and sends them over one reused connection; ``send_claimed`` is the loop
itself, one named step per line. Each message's outcome is written in the same small
transaction that marks the next message in flight (``recorder``), so the ledger is never more
than one message behind the relay (see ``ledger``'s docstring for what a crash leaves).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.delivery import holds, lanes, ledger, throttles
from newsletter.delivery.context import CampaignMessage, SendContext
from newsletter.delivery.fence import Fence
from newsletter.delivery.heartbeat import Heartbeat
from newsletter.delivery.ledger import Claimed
from newsletter.delivery.message import RecipientValues, message_id
from newsletter.delivery.models import Campaign, CampaignStatus
from newsletter.delivery.recipient import wire_address
from newsletter.delivery.recorder import DomainState, Recorder
from newsletter.delivery.transports import SendResult
from newsletter.delivery.verp import verp_address
from newsletter.errors import (
    ConfigError,
    DeliveryError,
    InvalidInput,
    RelayUnreachableError,
    UndeliverableAddress,
    UserError,
)
from newsletter.subscribers.tokens import unsubscribe_mailto, unsubscribe_token, unsubscribe_url

CONTROL_INTERVAL = dt.timedelta(seconds=1)  # pause/cancel take effect within this (+ 1 message)


class StopReason(enum.StrEnum):
    """Why a batch ended before its last row."""

    LANE_BUSY = "lane busy"  # another worker holds the lane: this batch did nothing
    CAMPAIGN_STOPPED = "campaign stopped"  # paused or cancelled: by an editor, or automatically
    RELAY_UNREACHABLE = "relay unreachable"  # no connection: the lane waits along the schedule
    LEASE_LOST = "lease lost"  # another worker took our rows over (we were too slow)


@dataclass(frozen=True, slots=True)
class BatchResult:
    campaign_id: int | None
    sent: int = 0
    claimed: int = 0
    stopped: StopReason | None = None
    next_due_at: dt.datetime | None = None  # when there is more to do (None: nothing)


@dataclass(frozen=True, slots=True)
class Batch:
    message: CampaignMessage
    rows: list[Claimed]
    domains: DomainState


def send_batch(ctx: SendContext, lane: int) -> BatchResult:
    """Send one batch on ``lane``; return what happened and when more work is due."""
    now = ctx.clock()
    with ctx.sessions() as session:
        if not hold_lane(ctx, session, lane, now):
            free_at = lanes.lane_free_at(session, lane, now)
            return BatchResult(None, stopped=StopReason.LANE_BUSY, next_due_at=free_at)
        batch = claim(ctx, session, now)
        if batch is None:
            lanes.release_lane(session, lane, owner=ctx.owner)
            return BatchResult(None, next_due_at=next_due(session, now))
    try:
        with Heartbeat(ctx, lane) as heartbeat:
            result = send_claimed(ctx, lane, batch, heartbeat)
    finally:
        # The connection closes before the lane is free: the cap counts open connections.
        ctx.transport.close()
        with ctx.sessions() as session:
            lanes.release_lane(session, lane, owner=ctx.owner)
    with ctx.sessions() as session:
        finish_if_done(session, batch.message.campaign_id, ctx.clock())
        due = next_due(session, ctx.clock())
    return dataclasses.replace(result, next_due_at=due)


def send_claimed(ctx: SendContext, lane: int, batch: Batch, heartbeat: Heartbeat) -> BatchResult:
    """The loop. Per row: build → fence → send → record; the campaign's status every second.

    Everything that can make a message unbuildable (its address, its values) is found before
    the fence: such a row fails with the reason and the loop goes on; it is never in flight.
    """
    recorder = Recorder(ctx, batch.message.campaign_id, batch.domains)
    rows = deque(batch.rows)
    unsent: list[Claimed] = []  # rows of a domain that began to wait: back to pending
    sent = 0
    stopped: StopReason | None = None
    next_check = ctx.clock() + CONTROL_INTERVAL
    try:
        while rows:
            if ctx.clock() >= next_check or recorder.attempts.rejections:
                stopped = check_status(ctx, recorder, heartbeat)
                if stopped is not None:
                    break
                next_check = ctx.clock() + CONTROL_INTERVAL
            row = rows.popleft()
            if row.domain in batch.domains.waiting:
                unsent.append(row)
                continue
            mid = message_id_of(ctx, row)
            try:
                outgoing = build(ctx, batch.message, row, mid)
            except (UndeliverableAddress, InvalidInput) as error:
                recorder.undeliverable(row, error)
                done(ctx)
                continue
            except (RelayUnreachableError, ConfigError) as error:
                rows.appendleft(row)
                stopped = cannot_connect(ctx, lane, recorder.campaign_id, error)
                break
            take_tokens(ctx, row)
            fenced = recorder.fence(row, mid)
            if fenced is Fence.LEASE_LOST:
                stopped = StopReason.LEASE_LOST
                rows.clear()  # none of them is ours any more
                break
            if fenced is Fence.DOMAIN_WAITS:
                unsent.append(row)
                continue
            if fenced is Fence.SUPPRESSED:
                done(ctx)
                continue
            try:
                result = hand_over(ctx, row, outgoing)
            except (RelayUnreachableError, ConfigError) as error:
                # Nothing left us: the row was never handed over. Wait for the relay (or for
                # an operator) instead of burning this recipient's retries.
                recorder.unmark(row)
                rows.appendleft(row)
                stopped = cannot_connect(ctx, lane, recorder.campaign_id, error)
                break
            except DeliveryError as error:
                recorder.failed(row, error)
            else:
                recorder.sent(row, result)
                sent += 1
            done(ctx)
    finally:
        recorder.close([r.delivery_id for r in (*unsent, *rows)])
        push_attempts(ctx, recorder)
    if sent:
        with ctx.sessions() as session:
            lanes.relay_up(session, lane)
    claimed = len(batch.rows)
    return BatchResult(batch.message.campaign_id, sent=sent, claimed=claimed, stopped=stopped)


# --- the steps ----------------------------------------------------------------------------


def hold_lane(ctx: SendContext, session: Session, lane: int, now: dt.datetime) -> bool:
    lanes.ensure_lanes(session, ctx.settings.max_connections)
    return lanes.acquire_lane(
        session, lane, owner=ctx.owner, now=now, lease_seconds=ctx.settings.lease_seconds
    )


def claim(ctx: SendContext, session: Session, now: dt.datetime) -> Batch | None:
    """The oldest sending campaign with work due: its next rows, and its domains' state.

    A campaign whose message cannot be built (a setting, a list name, the issue) pauses itself
    with the reason, and the next campaign is served: one bad campaign never holds the others.
    """
    for campaign_id in _due_campaigns(session, now):
        try:
            message = ctx.templates(session, campaign_id)
        except UserError as error:
            pause_for(session, campaign_id, f"the message cannot be built: {error}", now)
            continue
        settings = ctx.settings
        rows = ledger.claim_batch(
            session,
            campaign_id,
            owner=ctx.owner,
            now=now,
            lease_seconds=settings.lease_seconds,
            limit=settings.batch_size,
        )
        domains = DomainState(
            waiting=ledger.waiting_domains(session, campaign_id, now),
            watched=throttles.watched_domains(session),
            streaking=holds.streaking_domains(session, campaign_id),
        )
        return Batch(message, rows, domains)
    return None


def pause_for(session: Session, campaign_id: int, problem: str, now: dt.datetime) -> None:
    """Pause a sending campaign that cannot go on until someone fixes ``problem``."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.status is not CampaignStatus.SENDING:
        return
    campaign.transition(
        CampaignStatus.PAUSED,
        f"paused automatically: {problem}; fix it, then `campaign resume {campaign_id}`",
        at=now,
    )


def cannot_connect(
    ctx: SendContext, lane: int, campaign_id: int, error: RelayUnreachableError | ConfigError
) -> StopReason:
    """No connection: the lane waits for the relay, or (our settings) the campaign pauses."""
    with ctx.sessions() as session:
        if isinstance(error, ConfigError):
            pause_for(session, campaign_id, f"the relay cannot be used: {error}", ctx.clock())
            return StopReason.CAMPAIGN_STOPPED
        lanes.relay_down(
            session, lane, schedule=ctx.settings.retry_schedule, now=ctx.clock(), error=str(error)
        )
    return StopReason.RELAY_UNREACHABLE


def done(ctx: SendContext) -> None:
    """One more recipient dealt with: tell whoever shows progress."""
    if ctx.progress is not None:
        ctx.progress()


def take_tokens(ctx: SendContext, row: Claimed) -> None:
    """Wait for the global and the recipient domain's rate limits."""
    ctx.limiter.acquire("global", ctx.settings.rate_limit)
    ctx.limiter.acquire(f"domain:{row.domain}", ctx.settings.domain_rate_limit)


def message_id_of(ctx: SendContext, row: Claimed) -> str:
    """The delivery's signed Message-ID: the same on every retry (``message.message_id``)."""
    settings = ctx.settings
    return message_id(
        row.delivery_id, row.campaign_id, settings.sending_domain, settings.secret_key
    )


@dataclass(frozen=True, slots=True)
class Outgoing:
    recipient: str  # the address on the wire: IDNA domain, UTF-8 local part only with SMTPUTF8
    raw: bytes


def build(ctx: SendContext, message: CampaignMessage, row: Claimed, mid: str) -> Outgoing:
    """One recipient's message: the campaign's template with their values, DKIM-signed.

    Raises ``UndeliverableAddress`` or ``InvalidInput`` for this recipient alone (the row
    fails), ``RelayUnreachableError`` or ``ConfigError`` when asking the relay what it takes
    fails (nothing is sent).
    """
    settings, transport = ctx.settings, ctx.transport
    recipient = wire_address(row.email, smtputf8=not row.email.isascii() and transport.smtputf8)
    token = unsubscribe_token(settings.secret_key, row.subscriber_id, row.list_id)
    values = RecipientValues(
        email=recipient,
        name=row.name,
        message_id=mid,
        unsubscribe_url=unsubscribe_url(settings, token),
        unsubscribe_mailto=unsubscribe_mailto(settings, token),
        view_url=f"{settings.base_url}/issues/{message.issue_id}",
    )
    # A signed message stays 7-bit: a later hop that converts 8bit to quoted-printable would
    # change the body and break the DKIM body hash.
    eight_bit = transport.eight_bit and ctx.signer is None
    raw = message.template.render(values, date=ctx.clock(), eight_bit=eight_bit)
    return Outgoing(recipient, ctx.signer.sign(raw) if ctx.signer else raw)


def hand_over(ctx: SendContext, row: Claimed, outgoing: Outgoing) -> SendResult:
    """Give the message to the relay, from the delivery's own VERP envelope sender."""
    settings = ctx.settings
    sender = verp_address(row.delivery_id, settings.bounce_address, settings.secret_key)
    return ctx.transport.send(sender, outgoing.recipient, outgoing.raw)


def check_status(ctx: SendContext, recorder: Recorder, heartbeat: Heartbeat) -> StopReason | None:
    """Between messages: feed the breaker, re-read the campaign's status and waiting domains.

    A pause or cancel (an editor's, the breaker's, the bounce rates') stops the batch; a domain
    another worker backed off or held is not sent to any more; a lane the heartbeat lost stops
    it too.
    """
    if heartbeat.lost.is_set():
        return StopReason.LEASE_LOST
    campaign_id = recorder.campaign_id
    now = ctx.clock()
    with ctx.sessions() as session:
        _push(ctx, session, recorder, now)
        status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        recorder.domains.waiting |= ledger.waiting_domains(session, campaign_id, now)
    return None if status is CampaignStatus.SENDING else StopReason.CAMPAIGN_STOPPED


def push_attempts(ctx: SendContext, recorder: Recorder) -> None:
    """At the end of a batch: the attempts the breaker has not seen yet."""
    if recorder.attempts.count:
        with ctx.sessions() as session:
            _push(ctx, session, recorder, ctx.clock())


def _push(ctx: SendContext, session: Session, recorder: Recorder, now: dt.datetime) -> None:
    attempts = recorder.attempts.take()
    holds.push_attempts(
        session,
        recorder.campaign_id,
        attempts.bits,
        attempts.count,
        last_reply=attempts.last_reply,
        settings=ctx.settings,
        now=now,
    )


def _due_campaigns(session: Session, now: dt.datetime) -> Iterator[int]:
    """The sending campaigns with a row due now, oldest first."""
    sending = session.scalars(
        select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING).order_by(Campaign.id)
    ).all()
    for campaign_id in sending:
        due = ledger.next_due_at(session, campaign_id, now)
        if due is not None and due <= now:
            yield campaign_id


def next_due(session: Session, now: dt.datetime) -> dt.datetime | None:
    dues = [
        ledger.next_due_at(session, campaign_id, now)
        for campaign_id in session.scalars(
            select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING)
        )
    ]
    present = [due for due in dues if due is not None]
    return min(present) if present else None


def finish_if_done(session: Session, campaign_id: int, now: dt.datetime) -> bool:
    """Mark a sending campaign sent once no row is pending, sending or deferred.

    When the only open rows wait for domains the breaker holds, pause it instead (``holds``).
    """
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != CampaignStatus.SENDING:
        return False
    if ledger.has_open_rows(session, campaign_id):
        holds.pause_if_only_held(session, campaign, now)
        return False
    campaign.transition(CampaignStatus.SENT, at=now)
    campaign.finished_at = now
    return True
