"""Writing the send loop's outcomes one message late, together with the next in-flight mark.

The recorder keeps one connection for the whole batch. What matters is the order of the
writes: a message's outcome is written before (or with) the next message's in-flight mark, and
the mark before the message goes out. On SQLite the writes of one step share a transaction.
On PostgreSQL the common step is one statement (``fence.record_and_mark``), so the connection
runs in autocommit with ``synchronous_commit = off``: one round trip per message, applied in
order by the server; a dead *worker* loses nothing, and only a crash of the database server
itself could lose the last fraction of a second (docs/delivery.md).

An outcome that touches more than its own row (a domain's back-off or breaker, a report to the
bounce stage) takes the slower path: its writes are separate statements, each safe on its own.
The recorder also remembers, for the batch, which domains wait (backed off or held) and which
have bookkeeping a success must reset, and collects the attempts for the campaign's breaker.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.delivery import fence, holds, ledger, throttles
from newsletter.delivery.context import SendContext
from newsletter.delivery.fence import Fence
from newsletter.delivery.ledger import Claimed
from newsletter.delivery.models import Delivery, DeliveryStatus
from newsletter.delivery.policy import Decision, DomainEffect, Outcome, decide, decide_accepted
from newsletter.delivery.transports import SendResult
from newsletter.delivery.verdict import SmtpReply, Verdict
from newsletter.errors import DeliveryError


@dataclasses.dataclass
class DomainState:
    """What the batch knows about recipient domains (refreshed on every status check)."""

    waiting: set[str]  # backed off or held: their rows go back unsent
    watched: set[str]  # a throttle row exists: a success clears it
    streaking: set[str]  # a breaker row exists for the campaign: a success resets it


@dataclasses.dataclass
class AttemptBits:
    """Attempts not yet added to the campaign's breaker window (``holds.push_attempts``)."""

    bits: int = 0
    count: int = 0
    rejections: int = 0  # policy rejections among them: push at once, do not wait a second
    last_reply: str | None = None

    def add(self, decision: Decision) -> None:
        policy = decision.verdict is Verdict.POLICY
        self.bits = (self.bits << 1) | int(policy)
        self.count += 1
        if policy:
            self.rejections += 1
            self.last_reply = decision.outcome.reply

    def take(self) -> AttemptBits:
        taken = dataclasses.replace(self)
        self.bits, self.count, self.rejections, self.last_reply = 0, 0, 0, None
        return taken


class Recorder:
    def __init__(self, ctx: SendContext, campaign_id: int, domains: DomainState) -> None:
        self.ctx = ctx
        self.campaign_id = campaign_id
        self.domains = domains
        self.attempts = AttemptBits()
        self._connection = ctx.engine.connect()
        self._postgresql = self._connection.dialect.name == "postgresql"
        self._driver: Any = None  # PostgreSQL: the psycopg connection the fast path runs on
        if self._postgresql:
            self._connection = self._connection.execution_options(isolation_level="AUTOCOMMIT")
            self._connection.exec_driver_sql("SET synchronous_commit TO OFF")
            self._driver = self._connection.connection.driver_connection
        self._session = Session(bind=self._connection, expire_on_commit=False)
        self._pending: list[tuple[Claimed, Decision]] = []
        self._skipped: list[int] = []
        self._in_flight: Claimed | None = None

    # --- what the loop tells the recorder -------------------------------------------------

    def sent(self, row: Claimed, result: SendResult) -> None:
        reply = SmtpReply(result.code, result.enhanced_status, result.reply)
        self._add(row, decide_accepted(reply, result.queue_id))

    def failed(self, row: Claimed, error: DeliveryError) -> None:
        settings = self.ctx.settings
        decision = decide(
            error, attempts=row.attempts, schedule=settings.retry_schedule, now=self.ctx.clock()
        )
        if decision.reconnect:
            self.ctx.transport.close()
        self._add(row, decision)

    def undeliverable(self, row: Claimed, error: Exception) -> None:
        """The message could not be addressed or built: the row fails, never in flight.

        No SMTP attempt was made, so neither the row's attempts nor the breaker count it.
        """
        outcome = Outcome(DeliveryStatus.FAILED, reply=str(error), counts_as_attempt=False)
        self._pending.append((row, Decision(outcome)))

    def fence(self, row: Claimed, mid: str) -> Fence:
        """Record earlier outcomes and mark ``row`` in flight, in one transaction.

        On PostgreSQL the common case is one statement on the autocommit connection, with no
        session transaction around it.
        """
        now = self.ctx.clock()
        if self._driver is not None and self._one_plain_outcome():
            previous, decision = self._pending.pop()
            marked = fence.record_and_mark_on(
                self._driver,
                (previous.delivery_id, decision.outcome),
                row.delivery_id,
                owner=self.ctx.owner,
                message_id=mid,
                now=now,
            )
        else:
            with self._transaction() as session:
                self._flush(session)
                if row.domain in self.domains.waiting:
                    # The outcome just written backed this row's domain off or held it: the
                    # row goes back unsent, so "ten in a row" means ten, not eleven.
                    return Fence.DOMAIN_WAITS
                marked = fence.mark_in_flight(
                    session, row.delivery_id, owner=self.ctx.owner, message_id=mid, now=now
                )
        if marked:
            self._in_flight = row
            return Fence.MARKED
        with self._transaction() as session:
            owner = session.scalar(
                select(Delivery.lease_owner).where(Delivery.id == row.delivery_id)
            )
        if owner != self.ctx.owner:
            return Fence.LEASE_LOST
        self._skipped.append(row.delivery_id)  # still ours: the subscriber was suppressed
        return Fence.SUPPRESSED

    def unmark(self, row: Claimed) -> None:
        """The message in flight never left: give the row back as if it had not been marked."""
        with self._transaction() as session:
            self._flush(session)
            fence.unmark_in_flight(session, row.delivery_id, owner=self.ctx.owner)
        self._in_flight = None

    def close(self, unsent: list[int]) -> None:
        with self._transaction() as session:
            self._flush(session)
            if self._in_flight is not None:
                # An unexpected exception while the message was with the relay: we cannot
                # know whether it was accepted, and must never send it twice.
                fence.record_outcome(
                    session,
                    self._in_flight.delivery_id,
                    owner=self.ctx.owner,
                    outcome=Outcome(
                        DeliveryStatus.POSSIBLY_SENT, reply="worker error while sending"
                    ),
                    now=self.ctx.clock(),
                )
            ledger.release(session, unsent, owner=self.ctx.owner, now=self.ctx.clock())
        self._session.close()
        if self._postgresql:
            self._connection.exec_driver_sql("RESET synchronous_commit")
        self._connection.close()

    # --- writing ----------------------------------------------------------------------------

    def _add(self, row: Claimed, decision: Decision) -> None:
        self._pending.append((row, decision))
        self.attempts.add(decision)
        self._in_flight = None

    def _one_plain_outcome(self) -> bool:
        """One outcome waits, and writing it needs nothing but its row (the common case)."""
        if len(self._pending) != 1 or self._skipped:
            return False
        row, decision = self._pending[0]
        if decision.reported:
            return False
        if decision.domain is DomainEffect.SUCCESS:
            domains = self.domains
            return row.domain not in domains.watched and row.domain not in domains.streaking
        return decision.domain is DomainEffect.NONE

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._session.begin():
            yield self._session

    def _flush(self, session: Session) -> None:
        now = self.ctx.clock()
        for row, decision in self._pending:
            decision = self._apply_domain_effect(session, row, decision, now)
            fence.record_outcome(
                session, row.delivery_id, owner=self.ctx.owner, outcome=decision.outcome, now=now
            )
            if decision.reported and decision.reply is not None:
                self.ctx.rejections.rejected(session, row, decision.reply)
        self._pending.clear()
        if self._skipped:
            ledger.release(
                session, self._skipped, owner=self.ctx.owner, now=now, status=DeliveryStatus.SKIPPED
            )
            self._skipped.clear()

    def _apply_domain_effect(
        self, session: Session, row: Claimed, decision: Decision, now: dt.datetime
    ) -> Decision:
        """The domain's side of one reply: back-off, throttle signal, breaker strike or reset."""
        settings, domain, domains = self.ctx.settings, row.domain, self.domains
        reason = decision.outcome.reply
        if decision.domain is DomainEffect.BACK_OFF:
            until = throttles.throttle_domain(
                session, domain, schedule=settings.retry_schedule, now=now, reason=reason
            )
            domains.waiting.add(domain)
            domains.watched.add(domain)
            return decision.with_retry_at(until)
        if decision.domain is DomainEffect.THROTTLE_SIGNAL:
            domains.watched.add(domain)
            if throttles.count_throttle_signal(
                session,
                domain,
                row.delivery_id,
                after=settings.domain_throttle_after,
                schedule=settings.retry_schedule,
                now=now,
                reason=reason,
            ):
                domains.waiting.add(domain)
        elif decision.domain is DomainEffect.POLICY_STRIKE:
            domains.streaking.add(domain)
            if holds.count_policy_rejection(
                session, self.campaign_id, domain, reason, settings, now
            ):
                domains.waiting.add(domain)
        elif decision.domain is DomainEffect.SUCCESS:
            if domain in domains.watched:
                throttles.clear_throttle(session, domain)
                domains.watched.discard(domain)
            if domain in domains.streaking:
                holds.reset_streak(session, self.campaign_id, domain)
                domains.streaking.discard(domain)
        return decision
