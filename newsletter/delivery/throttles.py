"""Per-domain back-off: a domain that answers 421 or 4.7.x waits; others go on."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.orm import Session

from newsletter.delivery.models import DomainThrottle
from newsletter.delivery.policy import backoff_until


def throttle_domain(
    session: Session,
    domain: str,
    *,
    schedule: tuple[int, ...],
    now: dt.datetime,
    reason: str | None,
) -> dt.datetime:
    """Start (or lengthen) the domain's back-off along the retry schedule; return its end."""
    record = session.get(DomainThrottle, domain, with_for_update=True)
    if record is None:
        record = DomainThrottle(domain=domain, until=now, step=0)
        session.add(record)
    elif record.until > now:
        return record.until  # another worker already backed it off for this round
    record.until = backoff_until(record.step, schedule, now)
    record.step += 1
    record.reason = reason
    session.flush()
    return record.until


def clear_throttle(session: Session, domain: str) -> None:
    """The domain accepted a message again: its next back-off starts from the first step."""
    session.execute(delete(DomainThrottle).where(DomainThrottle.domain == domain))
