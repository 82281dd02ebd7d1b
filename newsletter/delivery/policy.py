"""What a relay's answer means for a recipient and its domain. Pure: the reply in, a decision out.

Each reply is judged once, by ``verdict.classify`` (the table shared with the bounce stage);
this module turns the verdict into what the ledger writes (``Outcome``) and what the domain's
bookkeeping does (``DomainEffect``):

- accepted (2xx after DATA): sent; the domain's throttle and breaker streaks reset.
- hard (5.1.x, "no such user"): bounced now, and handed to the bounce policy (BNC-05).
- soft (mailbox full, message too big): deferred along NEWSLETTER_RETRY_SCHEDULE, failed after
  the last step; handed to the bounce policy, which counts it.
- policy (5.7.x, block lists): not the subscriber's fault, so never bounced: deferred along the
  schedule, and a strike for the domain's circuit breaker (``breaker``); reported.
- throttled (4.7.x): deferred along the schedule, attempt counted; a signal that backs the
  domain off only when several different recipients give it (AUTH-07).
- closing (421): the domain backs off along the schedule at once; the recipient is not charged.
- any other 4xx, or a connection dropped before the message was complete: the recipient is
  deferred along the schedule and fails after the last step; the domain is not touched.
- a connection dropped after the whole message went out: the relay may have queued it, so the
  row is ``possibly_sent`` and never retried automatically.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from dataclasses import dataclass

from newsletter.delivery.statuses import DeliveryStatus
from newsletter.delivery.verdict import SmtpReply, Verdict
from newsletter.errors import DeliveryError, RelayUnavailableError


class DomainEffect(enum.StrEnum):
    """What one reply does to the bookkeeping of the recipient's domain."""

    NONE = "none"
    SUCCESS = "success"  # the domain took a message: its throttle and breaker streaks reset
    BACK_OFF = "back off"  # 421: the whole domain waits along the retry schedule, now
    THROTTLE_SIGNAL = "throttle signal"  # one recipient was told to slow down
    POLICY_STRIKE = "policy strike"  # one more policy rejection for the circuit breaker


# Verdicts the bounce stage is told about, through the same policy as a DSN (BNC-05).
REPORTED_VERDICTS = frozenset({Verdict.HARD, Verdict.SOFT, Verdict.POLICY})
_EFFECTS = {
    Verdict.ACCEPTED: DomainEffect.SUCCESS,
    Verdict.CLOSING: DomainEffect.BACK_OFF,
    Verdict.THROTTLED: DomainEffect.THROTTLE_SIGNAL,
    Verdict.POLICY: DomainEffect.POLICY_STRIKE,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the ledger writes about one message."""

    status: DeliveryStatus
    verdict: Verdict | None = None
    reply: str | None = None
    enhanced_status: str | None = None
    queue_id: str | None = None
    next_attempt_at: dt.datetime | None = None
    counts_as_attempt: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    domain: DomainEffect = DomainEffect.NONE
    reply: SmtpReply | None = None  # the relay's reply as fields, for the bounce stage
    reconnect: bool = False  # the connection is gone; open a new one for the next message

    @property
    def verdict(self) -> Verdict | None:
        return self.outcome.verdict

    @property
    def reported(self) -> bool:
        """The bounce stage must hear of it (its policy decides what it means for the person)."""
        return self.reply is not None and self.outcome.verdict in REPORTED_VERDICTS

    def with_retry_at(self, when: dt.datetime) -> Decision:
        return dataclasses.replace(
            self, outcome=dataclasses.replace(self.outcome, next_attempt_at=when)
        )


def decide_accepted(reply: SmtpReply, queue_id: str | None) -> Decision:
    """The relay took the message (2xx after DATA)."""
    return Decision(
        Outcome(DeliveryStatus.SENT, Verdict.ACCEPTED, reply.text, reply.enhanced_status, queue_id),
        DomainEffect.SUCCESS,
    )


def decide(
    error: DeliveryError,
    *,
    attempts: int,
    schedule: tuple[int, ...],
    now: dt.datetime,
) -> Decision:
    """The decision for one failed send; ``attempts`` counts the attempts before this one."""
    reply = SmtpReply(error.code, error.enhanced_status, str(error))
    dropped = isinstance(error, RelayUnavailableError)
    if isinstance(error, RelayUnavailableError) and error.maybe_delivered:
        return Decision(
            Outcome(
                DeliveryStatus.POSSIBLY_SENT, Verdict.UNKNOWN, reply.text, reply.enhanced_status
            ),
            reconnect=True,
        )
    verdict = reply.verdict
    effect = _EFFECTS.get(verdict, DomainEffect.NONE)
    if verdict is Verdict.HARD:
        outcome = Outcome(DeliveryStatus.BOUNCED, verdict, reply.text, reply.enhanced_status)
    elif verdict is Verdict.CLOSING:
        # About the connection, not the recipient: not charged; the ledger gives the row the
        # domain's back-off as its retry time.
        outcome = Outcome(
            DeliveryStatus.DEFERRED,
            verdict,
            reply.text,
            reply.enhanced_status,
            next_attempt_at=now,
            counts_as_attempt=False,
        )
    else:
        outcome = _retry_or_fail(verdict, reply, attempts, schedule, now)
    return Decision(outcome, effect, reply, reconnect=dropped)


def _retry_or_fail(
    verdict: Verdict, reply: SmtpReply, attempts: int, schedule: tuple[int, ...], now: dt.datetime
) -> Outcome:
    if attempts >= len(schedule):
        return Outcome(DeliveryStatus.FAILED, verdict, reply.text, reply.enhanced_status)
    return Outcome(
        DeliveryStatus.DEFERRED,
        verdict,
        reply.text,
        reply.enhanced_status,
        next_attempt_at=now + dt.timedelta(seconds=schedule[attempts]),
    )


def backoff_until(step: int, schedule: tuple[int, ...], now: dt.datetime) -> dt.datetime:
    """The end of back-off number ``step`` (0-based); the last step repeats, never longer."""
    return now + dt.timedelta(seconds=schedule[min(step, len(schedule) - 1)])
