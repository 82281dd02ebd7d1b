"""The bounce policy: what one event does to a subscriber, and when a campaign must pause.

Pure: ``decide(history, event, settings, now) -> Decision`` reads only its arguments;
``processing.apply`` gathers the history and carries the decision out in one transaction. The rules
(BNC-03, BNC-04, BNC-07, BNC-09 in docs/standards.md; why these, in docs/bounces.md,
"Decisions"):

* hard → the subscriber is ``bounced`` at once;
* soft → counted; the subscriber is ``bounced`` when NEWSLETTER_SOFT_BOUNCE_LIMIT soft bounces
  from distinct sends span at least NEWSLETTER_SOFT_BOUNCE_DAYS, counting only those newer than
  NEWSLETTER_SOFT_BOUNCE_STALE_DAYS (Mailman's stale window) and newer than the last successful
  delivery or reinstatement (a success resets the count);
* policy (5.7.x, 4.7.x, blocklists) → never suppresses: it is about us, not the address;
* complaint → ``complained`` and unsubscribed from every list at once;
* auto-reply, unknown, unparseable → nothing;
* and, before all of these, an event no evidence ties to a message we sent (``matching``)
  changes nobody: ``unverified`` records it for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from newsletter.bounces.event import BounceEvent, BounceKind
from newsletter.subscribers.statuses import SubscriberStatus

# A campaign is not paused on its first bounces: with 10 sent, one hard bounce is 10%. Below
# this many accepted messages the rates say nothing yet (0.3% of 100 is a third of a complaint,
# so the complaint guard effectively starts at 1 complaint per 100-333 sent).
MIN_SENT_FOR_PAUSE = 100


class BounceAction(enum.StrEnum):
    """What the policy did with one event (the ``action`` of ``bounces process --json``)."""

    SUBSCRIBER_BOUNCED = "subscriber bounced"
    COUNTED = "counted"
    UNSUBSCRIBED = "unsubscribed"
    NONE = "none"


class PolicySettings(Protocol):
    """The settings the policy reads; ``newsletter.config.Settings`` has them all."""

    @property
    def soft_bounce_limit(self) -> int: ...
    @property
    def soft_bounce_days(self) -> int: ...
    @property
    def soft_bounce_stale_days(self) -> int: ...
    @property
    def hard_bounce_pause_rate(self) -> float: ...
    @property
    def complaint_pause_rate(self) -> float: ...


@dataclass(frozen=True, slots=True)
class PastBounce:
    """An earlier soft bounce of the same subscriber."""

    kind: BounceKind
    at: dt.datetime
    campaign_id: int | None


@dataclass(frozen=True, slots=True)
class History:
    """What the policy knows about the subscriber an event was matched to."""

    status: SubscriberStatus
    bounces: Sequence[PastBounce]  # earlier events, oldest first, any age
    # The later of the last delivery the subscriber got without a bounce and the last time they
    # were made active again: soft bounces before it no longer count.
    reset_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    action: BounceAction
    reason: str  # in words for the audit trail and the report
    new_status: SubscriberStatus | None = None
    unsubscribe_all: bool = False
    delivery_bounced: bool = False  # mark the delivery row bounced
    flag_domain: bool = False  # a policy rejection: alert about the domain


# The kinds that would change a subscriber; without evidence they wait for a person.
ACTIONABLE_KINDS = frozenset({BounceKind.HARD, BounceKind.SOFT, BounceKind.COMPLAINT})


def unverified(event: BounceEvent) -> Decision | None:
    """The decision for an event nothing ties to a message we sent, or None when it has none.

    Anyone can mail us a DSN or an abuse report naming any address, so such an event is only
    stored (and counted, and listed by ``bounces review``) until a person applies it.
    """
    if event.kind not in ACTIONABLE_KINDS:
        return None  # nothing would be done anyway: the ordinary decision says why
    code = f" {event.status}" if event.status else ""
    named = f" naming {event.recipient}" if event.recipient else ""
    return Decision(
        BounceAction.NONE,
        f"unverified {event.kind.value}{code}{named}: no VERP token, Message-ID or webhook "
        "ties it to a message we sent (`newsletter bounces review`)",
    )


def decide(
    history: History | None,
    event: BounceEvent,
    settings: PolicySettings,
    now: dt.datetime,
    *,
    campaign_id: int | None = None,
) -> Decision:
    """The decision for ``event``; ``history`` is None when no subscriber was matched."""
    where = f" on campaign {campaign_id}" if campaign_id is not None else ""
    code = f" {event.status}" if event.status else ""
    kind = event.kind
    if kind is BounceKind.POLICY:
        # Never the address's fault (BNC-03): keep the subscriber, tell a person.
        return Decision(BounceAction.NONE, f"policy rejection{code}{where}", flag_domain=True)
    if kind not in (BounceKind.HARD, BounceKind.SOFT, BounceKind.COMPLAINT):
        return Decision(BounceAction.NONE, f"{kind.value}{where}: no action")
    if history is None:
        return Decision(BounceAction.NONE, f"{kind.value}{code}{where}: no matching subscriber")
    if kind is BounceKind.COMPLAINT:
        return _complaint(history, where)
    if kind is BounceKind.HARD:
        return _suppress(history, f"hard bounce{code}{where}")
    return _soft(history, event, settings, now, campaign_id, code, where)


def _complaint(history: History, where: str) -> Decision:
    reason = f"spam complaint{where}"
    if history.status in (SubscriberStatus.COMPLAINED, SubscriberStatus.BLOCKED):
        return Decision(BounceAction.NONE, f"{reason}: already {history.status.value}")
    return Decision(
        BounceAction.UNSUBSCRIBED,
        reason,
        new_status=SubscriberStatus.COMPLAINED,
        unsubscribe_all=True,
    )


def _suppress(history: History, reason: str) -> Decision:
    if history.status is not SubscriberStatus.ACTIVE:
        # Already suppressed (bounced, unsubscribed...): the delivery row still records it.
        return Decision(
            BounceAction.NONE,
            f"{reason}: subscriber already {history.status.value}",
            delivery_bounced=True,
        )
    return Decision(
        BounceAction.SUBSCRIBER_BOUNCED,
        reason,
        new_status=SubscriberStatus.BOUNCED,
        delivery_bounced=True,
    )


def _soft(
    history: History,
    event: BounceEvent,
    settings: PolicySettings,
    now: dt.datetime,
    campaign_id: int | None,
    code: str,
    where: str,
) -> Decision:
    counted = counted_soft_bounces(
        [*history.bounces, PastBounce(BounceKind.SOFT, now, campaign_id)],
        settings,
        now,
        history.reset_at,
    )
    sends = len(counted)
    span = counted[-1] - counted[0] if counted else dt.timedelta(0)
    limit, days = settings.soft_bounce_limit, settings.soft_bounce_days
    if sends >= limit and span >= dt.timedelta(days=days):
        return _suppress(history, f"{sends} soft bounces over {span.days} days (last{code}{where})")
    return Decision(
        BounceAction.COUNTED if history.status is SubscriberStatus.ACTIVE else BounceAction.NONE,
        f"soft bounce{code}{where}: {sends} of {limit} sends over {span.days} of {days} days",
    )


def counted_soft_bounces(
    bounces: Sequence[PastBounce],
    settings: PolicySettings,
    now: dt.datetime,
    reset_at: dt.datetime | None,
) -> list[dt.datetime]:
    """The time of the first counted soft bounce of each distinct send, oldest first.

    A send is a campaign; a bounce we could not tie to a campaign counts once per day instead
    (Mailman's daily de-duplication), so a flood of retries from one MTA is one strike.
    """
    stale_before = now - dt.timedelta(days=settings.soft_bounce_stale_days)
    first_seen: dict[tuple[str, object], dt.datetime] = {}
    for bounce in sorted(bounces, key=lambda b: b.at):
        if bounce.kind is not BounceKind.SOFT or bounce.at < stale_before:
            continue
        if reset_at is not None and bounce.at <= reset_at:
            continue
        key: tuple[str, object] = (
            ("campaign", bounce.campaign_id)
            if bounce.campaign_id is not None
            else ("day", bounce.at.date())
        )
        first_seen.setdefault(key, bounce.at)
    return sorted(first_seen.values())


@dataclass(frozen=True, slots=True)
class CampaignRates:
    sent: int  # messages the relay accepted (sent, later bounced, or possibly sent)
    hard_bounces: int
    complaints: int

    @property
    def hard_bounce_rate(self) -> float:
        return self.hard_bounces / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0


def pause_reason(rates: CampaignRates, settings: PolicySettings) -> str | None:
    """Why the campaign must pause now (AUTH-05: at ≥ 0.3% complaints), or None."""
    if rates.sent < MIN_SENT_FOR_PAUSE:
        return None
    if rates.complaint_rate >= settings.complaint_pause_rate:
        return (
            f"complaint rate {rates.complaint_rate:.2%} ({rates.complaints} of {rates.sent} sent)"
            f" reached the {settings.complaint_pause_rate:.2%} limit"
        )
    if rates.hard_bounce_rate >= settings.hard_bounce_pause_rate:
        return (
            f"hard-bounce rate {rates.hard_bounce_rate:.2%} ({rates.hard_bounces} of"
            f" {rates.sent} sent) reached the {settings.hard_bounce_pause_rate:.2%} limit"
        )
    return None
