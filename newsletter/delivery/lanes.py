"""Send lanes: the cap on concurrent SMTP connections, shared by every worker through the database.

A worker must hold a lane (a leased row in ``send_lanes``) while it sends. There are
NEWSLETTER_MAX_CONNECTIONS lanes, so there are never more connections than that, and a batch
task that Celery delivers twice finds its lane taken and ends without sending anything.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from newsletter.db import affected_rows, insert_ignoring_duplicates
from newsletter.delivery.models import SendLane
from newsletter.delivery.policy import backoff_until


def ensure_lanes(session: Session, count: int) -> None:
    """Create the lane rows that do not exist yet (several workers may try at once)."""
    existing = set(session.scalars(select(SendLane.lane)))
    missing = [{"lane": n, "relay_step": 0} for n in range(count) if n not in existing]
    if missing:
        session.execute(insert_ignoring_duplicates(session, SendLane), missing)


def acquire_lane(
    session: Session, lane: int, *, owner: str, now: dt.datetime, lease_seconds: int
) -> bool:
    """Take (or renew) ``lane`` for ``owner``; False if another live worker holds it."""
    result = session.execute(
        update(SendLane)
        .where(
            SendLane.lane == lane,
            or_(SendLane.owner.is_(None), SendLane.owner == owner, SendLane.lease_expires_at < now),
            or_(SendLane.relay_retry_at.is_(None), SendLane.relay_retry_at <= now),
        )
        .values(owner=owner, lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result) == 1


def renew_lane(
    session: Session, lane: int, *, owner: str, now: dt.datetime, lease_seconds: int
) -> bool:
    """Extend ``owner``'s lease on ``lane`` (the heartbeat); False if the lane is not theirs."""
    result = session.execute(
        update(SendLane)
        .where(SendLane.lane == lane, SendLane.owner == owner)
        .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result) == 1


def lane_free_at(session: Session, lane: int, now: dt.datetime) -> dt.datetime:
    """When ``lane`` can next be taken: its holder's lease or the relay's back-off ends."""
    record = session.get(SendLane, lane)
    if record is None:
        return now
    ends = [t for t in (record.lease_expires_at, record.relay_retry_at) if t is not None]
    return max([now, *ends])


def release_lane(session: Session, lane: int, *, owner: str) -> None:
    session.execute(
        update(SendLane)
        .where(SendLane.lane == lane, SendLane.owner == owner)
        .values(owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


def relay_waits(session: Session, now: dt.datetime) -> tuple[str, dt.datetime] | None:
    """What the relay did, and when a lane tries it again, while a lane waits for it."""
    record = session.scalars(
        select(SendLane)
        .where(SendLane.relay_retry_at > now)
        .order_by(SendLane.relay_retry_at)
        .limit(1)
    ).first()
    if record is None or record.relay_retry_at is None:
        return None
    return record.relay_error or "the relay could not be reached", record.relay_retry_at


def free_lanes(session: Session, count: int, now: dt.datetime) -> list[int]:
    """Lanes no live worker holds and that are not waiting for the relay to come back."""
    return list(
        session.scalars(
            select(SendLane.lane)
            .where(
                SendLane.lane < count,
                or_(SendLane.owner.is_(None), SendLane.lease_expires_at < now),
                or_(SendLane.relay_retry_at.is_(None), SendLane.relay_retry_at <= now),
            )
            .order_by(SendLane.lane)
        )
    )


def relay_down(
    session: Session, lane: int, *, schedule: tuple[int, ...], now: dt.datetime, error: str
) -> dt.datetime:
    """The relay refused us: this lane waits along the retry schedule instead of burning retries.

    ``error`` says what happened, in words (`campaign status` shows it with the retry time).
    """
    record = session.get(SendLane, lane)
    assert record is not None
    record.relay_retry_at = backoff_until(record.relay_step, schedule, now)
    record.relay_step += 1
    record.relay_error = error
    record.owner, record.lease_expires_at = None, None
    session.flush()
    return record.relay_retry_at


def relay_up(session: Session, lane: int) -> None:
    session.execute(
        update(SendLane)
        .where(SendLane.lane == lane, SendLane.relay_step > 0)
        .values(relay_step=0, relay_retry_at=None, relay_error=None)
        .execution_options(synchronize_session=False)
    )
