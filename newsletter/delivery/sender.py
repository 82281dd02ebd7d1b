"""The send loop: claim a batch → personalise → send → record each outcome → re-read status.

``send_batch`` is one unit of work (one Celery task, or one turn of the in-process loop). It
holds a send lane (one SMTP connection), claims up to NEWSLETTER_BATCH_SIZE due rows of a
sending campaign and sends them over one reused connection. Each message's outcome is written
in the same small transaction that marks the next message in flight, so the ledger is never
more than one message behind the relay (see ``ledger``'s docstring for what a crash leaves).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from newsletter.config import Settings
from newsletter.delivery import lanes, ledger
from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.ledger import Claimed, Outcome
from newsletter.delivery.message import MessageTemplate, RecipientValues, message_id
from newsletter.delivery.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.delivery.policy import Decision, decide
from newsletter.delivery.ratelimit import RateLimiter
from newsletter.delivery.throttles import clear_throttle, throttle_domain
from newsletter.delivery.transports import Transport
from newsletter.delivery.verp import verp_address
from newsletter.errors import DeliveryError, RelayUnreachableError
from newsletter.subscribers.tokens import unsubscribe_mailto, unsubscribe_token, unsubscribe_url

CONTROL_INTERVAL_SECONDS = 1.0  # pause/cancel take effect within this (plus one message)


class RejectionHandler:
    """Told about every synchronous 5xx; the bounce stage supplies one that applies its policy."""

    def rejected(self, session: Session, claimed: Claimed, outcome: Outcome) -> None:
        """Called in the transaction that records the ``bounced`` row."""


@dataclass(frozen=True, slots=True)
class SendContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    transport: Transport
    limiter: RateLimiter
    owner: str  # unique per worker process and batch: "host:pid:nonce"
    templates: Callable[[Session, int], CampaignMessage]
    signer: DkimSigner | None = None
    rejections: RejectionHandler = field(default_factory=RejectionHandler)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class CampaignMessage:
    """Everything per campaign that the loop needs to build one recipient's message."""

    campaign_id: int
    issue_id: int
    template: MessageTemplate


@dataclass(frozen=True, slots=True)
class BatchResult:
    campaign_id: int | None
    sent: int = 0
    claimed: int = 0
    stopped: str | None = None  # why the batch ended early (paused, relay down, lease lost)
    next_due_at: dt.datetime | None = None  # when there is more to do (None: nothing)


def send_batch(ctx: SendContext, lane: int) -> BatchResult:
    """Send one batch on ``lane``; return what happened and when more work is due."""
    now = ctx.clock()
    with ctx.session_factory.begin() as session:
        lanes.ensure_lanes(session, ctx.settings.max_connections)
        if not lanes.acquire_lane(
            session, lane, owner=ctx.owner, now=now, lease_seconds=ctx.settings.lease_seconds
        ):
            return BatchResult(
                None, stopped="lane busy", next_due_at=lanes.lane_free_at(session, lane, now)
            )
        campaign_id = _next_campaign(session, now)
        if campaign_id is None:
            lanes.release_lane(session, lane, owner=ctx.owner)
            return BatchResult(None, next_due_at=_next_due(session, now))
        claimed = ledger.claim_batch(
            session,
            campaign_id,
            owner=ctx.owner,
            now=now,
            lease_seconds=ctx.settings.lease_seconds,
            limit=ctx.settings.batch_size,
        )
        throttled = set(ledger.throttled_domains(session, now))
        message = ctx.templates(session, campaign_id)
    try:
        result = _send_claimed(ctx, lane, message, claimed, throttled)
    finally:
        with ctx.session_factory.begin() as session:
            lanes.release_lane(session, lane, owner=ctx.owner)
    with ctx.session_factory.begin() as session:
        finish_if_done(session, campaign_id, ctx.clock())
        next_due = _next_due(session, ctx.clock())
    return dataclasses.replace(result, next_due_at=next_due)


def _send_claimed(
    ctx: SendContext,
    lane: int,
    message: CampaignMessage,
    claimed: list[Claimed],
    throttled: set[str],
) -> BatchResult:
    settings = ctx.settings
    recorder = _Recorder(ctx, throttled)
    remaining = list(claimed)
    unsent: list[Claimed] = []
    sent = 0
    stopped: str | None = None
    next_control = time.monotonic() + CONTROL_INTERVAL_SECONDS
    try:
        while remaining:
            row = remaining[0]
            if time.monotonic() >= next_control:
                stopped = _control(ctx, message.campaign_id)
                if stopped:
                    break
                next_control = time.monotonic() + CONTROL_INTERVAL_SECONDS
            if row.domain in recorder.throttled_now:
                unsent.append(remaining.pop(0))  # waits for the domain's back-off
                continue
            ctx.limiter.acquire("global", settings.rate_limit)
            ctx.limiter.acquire(f"domain:{row.domain}", settings.domain_rate_limit)
            mid = message_id(
                row.delivery_id, row.campaign_id, settings.sending_domain, settings.secret_key
            )
            verdict = recorder.flush_and_mark(row, mid)
            if verdict == "lease lost":
                stopped = verdict
                remaining = []
                break
            remaining.pop(0)
            if verdict == "suppressed":
                recorder.skip(row)
                continue
            try:
                reply = ctx.transport.send(
                    verp_address(row.delivery_id, settings.bounce_address, settings.secret_key),
                    row.email,
                    _build(ctx, message, row, mid),
                )
            except RelayUnreachableError:
                # Nothing left us: the row was never handed over. Wait for the relay instead
                # of burning this recipient's retries.
                recorder.unmark(row)
                remaining.insert(0, row)
                with ctx.session_factory.begin() as session:
                    lanes.relay_down(
                        session, lane, schedule=settings.retry_schedule, now=ctx.clock()
                    )
                stopped = "relay unreachable"
                break
            except DeliveryError as error:
                recorder.failed(row, error)
            else:
                recorder.sent(row, reply.reply, reply.enhanced_status, reply.queue_id)
                sent += 1
    finally:
        # Whatever was not sent (stopped early, or a domain began to throttle) goes back to
        # pending for a later batch; a throttled domain's rows are not claimed until it ends.
        recorder.close([r.delivery_id for r in unsent + remaining])
    if sent:
        with ctx.session_factory.begin() as session:
            lanes.relay_up(session, lane)
    return BatchResult(message.campaign_id, sent=sent, claimed=len(claimed), stopped=stopped)


class _Recorder:
    """Writes outcomes one message late, together with the next message's in-flight mark.

    It keeps one connection for the whole batch. What matters is the order of the writes: a
    message's outcome is written before (or with) the next message's in-flight mark, and the
    mark before the message goes out. On SQLite the writes of one step share a transaction.
    On PostgreSQL the common step is one statement (``ledger.record_and_mark``), so the
    connection runs in autocommit with ``synchronous_commit = off``: one round trip per
    message, applied in order by the server; a dead *worker* loses nothing, and only a crash of
    the database server itself could lose the last fraction of a second (docs/delivery.md).
    """

    def __init__(self, ctx: SendContext, throttled: set[str]) -> None:
        self.ctx = ctx
        self._connection = ctx.engine.connect()
        if self._connection.dialect.name == "postgresql":
            self._connection = self._connection.execution_options(isolation_level="AUTOCOMMIT")
            self._connection.exec_driver_sql("SET synchronous_commit TO OFF")
        self._session = Session(bind=self._connection, expire_on_commit=False)
        self.throttled_before = throttled  # domains that had a back-off when the batch began
        self.throttled_now: set[str] = set()
        self._pending: list[tuple[Claimed, Decision]] = []
        self._skipped: list[int] = []
        self._in_flight: Claimed | None = None
        self._last_renewal = time.monotonic()

    def sent(self, row: Claimed, reply: str, enhanced: str | None, queue_id: str | None) -> None:
        outcome = Outcome(DeliveryStatus.SENT, reply, enhanced, queue_id)
        self._pending.append((row, Decision(outcome)))
        self._in_flight = None

    def failed(self, row: Claimed, error: DeliveryError) -> None:
        decision = decide(
            error,
            attempts=row.attempts,
            schedule=self.ctx.settings.retry_schedule,
            now=self.ctx.clock(),
        )
        if decision.throttle_domain:
            self.throttled_now.add(row.domain)
        if decision.reconnect:
            self.ctx.transport.close()
        self._pending.append((row, decision))
        self._in_flight = None

    def skip(self, row: Claimed) -> None:
        self._skipped.append(row.delivery_id)

    def unmark(self, row: Claimed) -> None:
        """The message in flight never left: give the row back as if it had not been marked."""
        with self._transaction() as session:
            self._flush(session)
            ledger.unmark_in_flight(session, row.delivery_id, owner=self.ctx.owner)
        self._in_flight = None

    def flush_and_mark(self, row: Claimed, mid: str) -> str:
        """Record earlier outcomes and mark ``row`` in flight, in one transaction."""
        now = self.ctx.clock()
        with self._transaction() as session:
            self._renew(session, now)
            if self._one_plain_outcome() and self._connection.dialect.name == "postgresql":
                previous, decision = self._pending.pop()
                marked = ledger.record_and_mark(
                    session,
                    (previous.delivery_id, decision.outcome),
                    row.delivery_id,
                    owner=self.ctx.owner,
                    message_id=mid,
                    now=now,
                )
            else:
                self._flush(session)
                marked = ledger.mark_in_flight(
                    session, row.delivery_id, owner=self.ctx.owner, message_id=mid, now=now
                )
            if marked:
                self._in_flight = row
                return "ok"
            owner = session.scalar(
                select(Delivery.lease_owner).where(Delivery.id == row.delivery_id)
            )
            return "suppressed" if owner == self.ctx.owner else "lease lost"

    def _one_plain_outcome(self) -> bool:
        """One outcome waits, and writing it needs nothing but its row (the common case)."""
        if len(self._pending) != 1 or self._skipped:
            return False
        row, decision = self._pending[0]
        return not (
            decision.throttle_domain
            or decision.outcome.status == DeliveryStatus.BOUNCED
            or row.domain in self.throttled_before
        )

    def close(self, unsent: list[int]) -> None:
        with self._transaction() as session:
            self._flush(session)
            if self._in_flight is not None:
                # An unexpected exception while the message was with the relay: we cannot
                # know whether it was accepted, and must never send it twice.
                ledger.record_outcome(
                    session,
                    self._in_flight.delivery_id,
                    owner=self.ctx.owner,
                    outcome=Outcome(DeliveryStatus.POSSIBLY_SENT, "worker error while sending"),
                    now=self.ctx.clock(),
                )
            ledger.release(session, unsent, owner=self.ctx.owner, now=self.ctx.clock())
        self._session.close()
        if self._connection.dialect.name == "postgresql":
            self._connection.exec_driver_sql("RESET synchronous_commit")
        self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._session.begin():
            yield self._session

    def _flush(self, session: Session) -> None:
        now = self.ctx.clock()
        for row, decision in self._pending:
            outcome = decision.outcome
            if decision.throttle_domain:
                until = throttle_domain(
                    session,
                    row.domain,
                    schedule=self.ctx.settings.retry_schedule,
                    now=now,
                    reason=outcome.reply,
                )
                outcome = dataclasses.replace(outcome, next_attempt_at=until)
            elif outcome.status == DeliveryStatus.SENT and row.domain in self.throttled_before:
                clear_throttle(session, row.domain)
                self.throttled_before.discard(row.domain)
            ledger.record_outcome(
                session, row.delivery_id, owner=self.ctx.owner, outcome=outcome, now=now
            )
            if outcome.status == DeliveryStatus.BOUNCED:
                self.ctx.rejections.rejected(session, row, outcome)
        self._pending.clear()
        if self._skipped:
            ledger.release(
                session, self._skipped, owner=self.ctx.owner, now=now, status=DeliveryStatus.SKIPPED
            )
            self._skipped.clear()

    def _renew(self, session: Session, now: dt.datetime) -> None:
        lease = self.ctx.settings.lease_seconds
        if time.monotonic() - self._last_renewal < lease / 3:
            return
        ledger.renew_lease(session, owner=self.ctx.owner, now=now, lease_seconds=lease)
        self._last_renewal = time.monotonic()


def _build(ctx: SendContext, message: CampaignMessage, row: Claimed, mid: str) -> bytes:
    settings = ctx.settings
    token = unsubscribe_token(settings.secret_key, row.subscriber_id, row.list_id)
    values = RecipientValues(
        email=row.email,
        name=row.name,
        message_id=mid,
        unsubscribe_url=unsubscribe_url(settings, token),
        unsubscribe_mailto=unsubscribe_mailto(settings, token),
        view_url=f"{settings.base_url}/issues/{message.issue_id}",
    )
    # A signed message stays 7-bit: a later hop that converts 8bit to quoted-printable would
    # change the body and break the DKIM body hash.
    eight_bit = ctx.transport.eight_bit and ctx.signer is None
    raw = message.template.render(values, date=ctx.clock(), eight_bit=eight_bit)
    return ctx.signer.sign(raw) if ctx.signer else raw


def _control(ctx: SendContext, campaign_id: int) -> str | None:
    """Re-read the campaign's status between messages: a pause or cancel stops the batch."""
    with ctx.session_factory.begin() as session:
        status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    return None if status == CampaignStatus.SENDING else f"campaign {status}"


def _next_campaign(session: Session, now: dt.datetime) -> int | None:
    """The oldest sending campaign with a row due now."""
    for campaign_id in session.scalars(
        select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING).order_by(Campaign.id)
    ):
        due = ledger.next_due_at(session, campaign_id, now)
        if due is not None and due <= now:
            return campaign_id
    return None


def _next_due(session: Session, now: dt.datetime) -> dt.datetime | None:
    dues = [
        ledger.next_due_at(session, campaign_id, now)
        for campaign_id in session.scalars(
            select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING)
        )
    ]
    present = [due for due in dues if due is not None]
    return min(present) if present else None


def finish_if_done(session: Session, campaign_id: int, now: dt.datetime) -> bool:
    """Mark a sending campaign sent once no row is pending, sending or deferred."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != CampaignStatus.SENDING:
        return False
    if ledger.has_open_rows(session, campaign_id):
        return False
    campaign.transition(CampaignStatus.SENT)
    campaign.finished_at = now
    return True
