"""Per-domain back-off: a domain that asks us to slow down waits; others go on (AUTH-07).

Only domain-wide signals back a domain off: a 421 at once, or a 4.7.x "slow down" from
NEWSLETTER_DOMAIN_THROTTLE_AFTER different recipients in a row. One recipient that answers 4xx
forever is deferred on its own (``policy``) and never holds the others of its domain. A back-off
lasts one step of NEWSLETTER_RETRY_SCHEDULE, never more than its last step.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from newsletter.db import insert_ignoring_duplicates
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
    record = session.get(DomainThrottle, domain, with_for_update=True, populate_existing=True)
    if record is None:
        record = DomainThrottle(domain=domain, until=now, step=0, signals=0)
        session.add(record)
    elif record.until > now:
        return record.until  # another worker already backed it off for this round
    record.until = backoff_until(record.step, schedule, now)
    record.step += 1
    record.signals, record.signal_delivery_id = 0, None
    record.reason = reason
    session.flush()
    return record.until


def count_throttle_signal(
    session: Session,
    domain: str,
    delivery_id: int,
    *,
    after: int,
    schedule: tuple[int, ...],
    now: dt.datetime,
    reason: str | None,
) -> dt.datetime | None:
    """One recipient was told to slow down; back the domain off once ``after`` different ones were.

    Returns the end of the back-off when this signal started one.
    """
    session.execute(
        insert_ignoring_duplicates(session, DomainThrottle),
        {"domain": domain, "until": now, "step": 0, "signals": 0},
    )
    signals = session.scalar(
        update(DomainThrottle)
        .where(
            DomainThrottle.domain == domain,
            # The same recipient again (its own retries) is not a second recipient.
            or_(
                DomainThrottle.signal_delivery_id.is_(None),
                DomainThrottle.signal_delivery_id != delivery_id,
            ),
        )
        .values(signals=DomainThrottle.signals + 1, signal_delivery_id=delivery_id)
        .returning(DomainThrottle.signals)
        .execution_options(synchronize_session=False)
    )
    if signals is None or signals < after:
        return None
    return throttle_domain(session, domain, schedule=schedule, now=now, reason=reason)


def clear_throttle(session: Session, domain: str) -> None:
    """The domain accepted a message again: its next back-off starts from the first step."""
    session.execute(delete(DomainThrottle).where(DomainThrottle.domain == domain))


def watched_domains(session: Session) -> set[str]:
    """Domains with a throttle row (backed off, or counting signals): a success clears them."""
    return set(session.scalars(select(DomainThrottle.domain)))
