"""What a relay's answer means for a recipient. Pure: the error and the schedule in, a decision out.

- 2xx: sent.
- 5xx on RCPT or DATA: bounced now (a synchronous hard bounce, BNC-05), handed to the bounce
  policy.
- 421, or any 4.7.x (rate or reputation, AUTH-07): the recipient's *domain* backs off along
  NEWSLETTER_RETRY_SCHEDULE; the recipient is not charged an attempt.
- Any other 4xx, or a connection dropped before the message was complete: the recipient is
  deferred along the same schedule, and fails after the last step.
- A connection dropped after the whole message went out: the relay may have queued it, so the
  row is ``possibly_sent`` and never retried automatically.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.delivery.ledger import Outcome
from newsletter.delivery.models import DeliveryStatus
from newsletter.errors import DeliveryError, PermanentDeliveryError, RelayUnavailableError


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    throttle_domain: bool = False  # back the recipient's domain off
    reconnect: bool = False  # the connection is gone; open a new one for the next message


def is_domain_throttle(error: DeliveryError) -> bool:
    return error.code == 421 or (error.enhanced_status or "").startswith("4.7.")


def decide(
    error: DeliveryError,
    *,
    attempts: int,
    schedule: tuple[int, ...],
    now: dt.datetime,
    throttle_until: dt.datetime | None = None,
) -> Decision:
    """The outcome of one failed send; ``attempts`` counts the attempts before this one."""
    reply = _reply(error)
    if isinstance(error, PermanentDeliveryError):
        return Decision(Outcome(DeliveryStatus.BOUNCED, reply, error.enhanced_status))
    dropped = isinstance(error, RelayUnavailableError)
    if isinstance(error, RelayUnavailableError) and error.maybe_delivered:
        return Decision(
            Outcome(DeliveryStatus.POSSIBLY_SENT, reply, error.enhanced_status), reconnect=True
        )
    if is_domain_throttle(error):
        return Decision(
            Outcome(
                DeliveryStatus.DEFERRED,
                reply,
                error.enhanced_status,
                next_attempt_at=throttle_until or now,
                counts_as_attempt=False,
            ),
            throttle_domain=True,
            reconnect=dropped,
        )
    if attempts >= len(schedule):
        return Decision(
            Outcome(DeliveryStatus.FAILED, reply, error.enhanced_status), reconnect=dropped
        )
    return Decision(
        Outcome(
            DeliveryStatus.DEFERRED,
            reply,
            error.enhanced_status,
            next_attempt_at=now + dt.timedelta(seconds=schedule[attempts]),
        ),
        reconnect=dropped,
    )


def backoff_until(step: int, schedule: tuple[int, ...], now: dt.datetime) -> dt.datetime:
    """The end of back-off number ``step`` (0-based); the last step repeats."""
    return now + dt.timedelta(seconds=schedule[min(step, len(schedule) - 1)])


def _reply(error: DeliveryError) -> str:
    return f"{error.code} {error}" if error.code else str(error)
