"""The circuit breaker's state: domains held for a campaign, and the campaign's attempt window.

The rules are in ``breaker`` (pure); this module reads and writes ``domain_holds`` and the
campaign's ``policy_window``. The streak updates are single statements, safe on the send loop's
autocommit connection; ``push_attempts`` needs its own transaction (it locks the campaign row).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from newsletter.db import affected_rows, insert_ignoring_duplicates
from newsletter.delivery.breaker import AttemptWindow, BreakerSettings, domain_held, pause_reason
from newsletter.delivery.models import (
    OPEN_STATUSES,
    Campaign,
    CampaignStatus,
    Delivery,
    DomainHold,
)


@dataclass(frozen=True, slots=True)
class Hold:
    """One held domain, as `campaign status` shows it."""

    domain: str
    since: dt.datetime
    reply: str | None
    waiting: int  # rows of the campaign at that domain still to send


def count_policy_rejection(
    session: Session,
    campaign_id: int,
    domain: str,
    reply: str | None,
    settings: BreakerSettings,
    now: dt.datetime,
) -> bool:
    """One more policy rejection from ``domain``; True if that holds the domain now."""
    session.execute(
        insert_ignoring_duplicates(session, DomainHold),
        {"campaign_id": campaign_id, "domain": domain, "policy_streak": 0},
    )
    streak = session.scalar(
        update(DomainHold)
        .where(DomainHold.campaign_id == campaign_id, DomainHold.domain == domain)
        .values(policy_streak=DomainHold.policy_streak + 1, reply=reply)
        .returning(DomainHold.policy_streak)
        .execution_options(synchronize_session=False)
    )
    if streak is None or not domain_held(streak, settings):
        return False
    held = session.execute(
        update(DomainHold)
        .where(
            DomainHold.campaign_id == campaign_id,
            DomainHold.domain == domain,
            DomainHold.held_since.is_(None),
        )
        .values(held_since=now)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(held) == 1


def reset_streak(session: Session, campaign_id: int, domain: str) -> None:
    """The domain accepted a message: its policy rejections are no longer "in a row"."""
    session.execute(
        update(DomainHold)
        .where(
            DomainHold.campaign_id == campaign_id,
            DomainHold.domain == domain,
            DomainHold.held_since.is_(None),
        )
        .values(policy_streak=0)
        .execution_options(synchronize_session=False)
    )


def streaking_domains(session: Session, campaign_id: int) -> set[str]:
    """Domains of the campaign with a breaker row (a streak under way, or held)."""
    return set(
        session.scalars(select(DomainHold.domain).where(DomainHold.campaign_id == campaign_id))
    )


def push_attempts(
    session: Session,
    campaign_id: int,
    bits: int,
    count: int,
    *,
    last_reply: str | None,
    settings: BreakerSettings,
    now: dt.datetime,
) -> str | None:
    """Add a worker's latest attempts to the campaign's window; pause it if the rate is reached.

    Returns the pause reason when this call paused the campaign.
    """
    if count == 0:
        return None
    stored = session.execute(
        select(Campaign.policy_window, Campaign.policy_window_size)
        .where(Campaign.id == campaign_id)
        .with_for_update()  # workers of one campaign take turns: no attempt is lost
    ).one_or_none()
    if stored is None:
        return None
    window = AttemptWindow.from_bytes(*stored).push(bits, count, settings.campaign_policy_window)
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(policy_window=window.to_bytes(), policy_window_size=window.size)
        .execution_options(synchronize_session=False)
    )
    reason = pause_reason(window, settings)
    campaign = session.get(Campaign, campaign_id) if reason is not None else None
    if reason is None or campaign is None or campaign.status is not CampaignStatus.SENDING:
        return None
    campaign.transition(CampaignStatus.PAUSED, reason, reply=last_reply, at=now)
    return reason


def release_holds(session: Session, campaign_id: int) -> list[str]:
    """`campaign resume`: forget the campaign's holds and its window; return the held domains."""
    held = sorted(
        session.scalars(
            select(DomainHold.domain).where(
                DomainHold.campaign_id == campaign_id, DomainHold.held_since.is_not(None)
            )
        )
    )
    session.execute(delete(DomainHold).where(DomainHold.campaign_id == campaign_id))
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(policy_window=None, policy_window_size=0)
        .execution_options(synchronize_session=False)
    )
    return held


def holds_of(session: Session, campaign_id: int) -> list[Hold]:
    """The campaign's held domains, oldest first, with how many rows wait for each."""
    waiting = (
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.domain == DomainHold.domain,
            Delivery.status.in_(OPEN_STATUSES),
        )
        .correlate(DomainHold)
        .scalar_subquery()
    )
    rows = session.execute(
        select(DomainHold.domain, DomainHold.held_since, DomainHold.reply, waiting)
        .where(DomainHold.campaign_id == campaign_id, DomainHold.held_since.is_not(None))
        .order_by(DomainHold.held_since, DomainHold.domain)
    )
    return [Hold(domain, since, reply, count or 0) for domain, since, reply, count in rows]


def pause_if_only_held(session: Session, campaign: Campaign, now: dt.datetime) -> bool:
    """Pause a sending campaign whose every open row waits for a held domain.

    Nothing is left that a worker could send, so the campaign says so and waits for an
    editor's `campaign resume` instead of looking busy forever.
    """
    held = select(DomainHold.domain).where(
        DomainHold.campaign_id == campaign.id, DomainHold.held_since.is_not(None)
    )
    open_rows = (Delivery.campaign_id == campaign.id) & Delivery.status.in_(OPEN_STATUSES)
    if session.scalar(select(exists().where(open_rows, Delivery.domain.not_in(held)))):
        return False
    holds = holds_of(session, campaign.id)
    if not holds:
        return False
    names = ", ".join(hold.domain for hold in holds)
    campaign.transition(
        CampaignStatus.PAUSED,
        f"paused automatically: {sum(h.waiting for h in holds)} recipients wait at domains "
        f"held after repeated policy rejections ({names}); `campaign resume` retries them",
        reply=holds[0].reply,
        at=now,
    )
    return True
