"""Tables of the delivery stage: campaigns, the per-recipient ledger, throttles and send lanes.

The ledger (``deliveries``) is the single source of truth about who got what: one row per
(campaign, subscriber), unique in the database, its status written where the fact happens (a row
is ``sent`` after the relay's reply, never at claim time).
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.db import Base, intpk, utcnow
from newsletter.errors import InvalidTransition
from newsletter.issues.models import Issue
from newsletter.subscribers.models import Segment


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # waits for send_at
    SENDING = "sending"
    PAUSED = "paused"  # by an editor, or automatically (paused_reason says why)
    SENT = "sent"  # nothing pending or deferred any more
    CANCELLED = "cancelled"
    FAILED = "failed"  # could not start (e.g. the issue failed its pre-send check)


CAMPAIGN_TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.DRAFT: frozenset(
        {
            CampaignStatus.SCHEDULED,
            CampaignStatus.SENDING,
            CampaignStatus.CANCELLED,
            CampaignStatus.FAILED,
        }
    ),
    CampaignStatus.SCHEDULED: frozenset(
        {CampaignStatus.SENDING, CampaignStatus.CANCELLED, CampaignStatus.FAILED}
    ),
    CampaignStatus.SENDING: frozenset(
        {
            CampaignStatus.PAUSED,
            CampaignStatus.SENT,
            CampaignStatus.CANCELLED,
            CampaignStatus.FAILED,
        }
    ),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.SENDING, CampaignStatus.CANCELLED}),
    # A finished campaign can be reopened only to resend to the recipients it missed.
    CampaignStatus.SENT: frozenset({CampaignStatus.SENDING}),
    CampaignStatus.CANCELLED: frozenset(),
    CampaignStatus.FAILED: frozenset(),
}


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting to be claimed
    SENDING = "sending"  # claimed by a worker under a lease; see Delivery.in_flight_at
    SENT = "sent"  # the relay accepted it (2xx after DATA)
    DEFERRED = "deferred"  # a 4xx or a dropped connection; retried at next_attempt_at
    FAILED = "failed"  # deferred too often; given up
    BOUNCED = "bounced"  # a 5xx at send time, or a hard bounce reported later
    SKIPPED = "skipped"  # not sent: the subscriber was suppressed before their turn
    # The worker died between handing the message to the relay and writing the outcome:
    # the relay may or may not have it. Never sent again automatically.
    POSSIBLY_SENT = "possibly_sent"


# Statuses that mean "still to do"; the campaign ends when none is left.
OPEN_STATUSES = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED})
# Statuses that mean the message never left: `campaign resend --unsent` may try them again.
UNSENT_STATUSES = frozenset({DeliveryStatus.FAILED, DeliveryStatus.SKIPPED})


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[intpk]
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"))
    status: Mapped[CampaignStatus] = mapped_column(default=CampaignStatus.DRAFT)
    send_at: Mapped[dt.datetime | None]
    # A saved filter over the campaign's (single) list, evaluated when the campaign starts.
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id"))
    # Why the campaign is paused or failed, in words an editor understands.
    status_reason: Mapped[str | None] = mapped_column(Text)
    recipient_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    issue: Mapped[Issue] = relationship(lazy="selectin")
    segment: Mapped[Segment | None] = relationship(lazy="selectin")
    lists: Mapped[list[CampaignList]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def list_ids(self) -> list[int]:
        return [entry.list_id for entry in self.lists]

    def transition(self, new: CampaignStatus, reason: str | None = None) -> None:
        if new not in CAMPAIGN_TRANSITIONS[self.status]:
            raise InvalidTransition(f"campaign {self.id} is {self.status}; it cannot become {new}")
        self.status = new
        self.status_reason = reason


class CampaignList(Base):
    __tablename__ = "campaign_lists"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id"), primary_key=True)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id"),
        # The claim query: one campaign's rows of one status, in id order, read straight off
        # the index whatever the campaign's size.
        Index("ix_deliveries_claim", "campaign_id", "status", "id"),
        # Recovery of dead workers' rows: sending rows whose lease has expired.
        Index("ix_deliveries_lease", "status", "lease_expires_at"),
    )

    id: Mapped[intpk]
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # SET NULL: erasing a subscriber (GDPR) keeps the anonymous fact that a message went out.
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    # The recipient's domain, so that a throttled domain's rows can be left unclaimed.
    domain: Mapped[str] = mapped_column(String(255))
    status: Mapped[DeliveryStatus] = mapped_column(default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None]
    # Set just before the message is handed to the relay, cleared with the outcome; a row
    # found with it set after its lease expired is the one message a dead worker may have sent.
    in_flight_at: Mapped[dt.datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    last_reply: Mapped[str | None] = mapped_column(Text)
    enhanced_status: Mapped[str | None] = mapped_column(String(16))
    queue_id: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DomainThrottle(Base):
    """A recipient domain that answered 421 / 4.7.x: nothing is sent to it before ``until``."""

    __tablename__ = "domain_throttles"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    until: Mapped[dt.datetime]
    # How many back-offs in a row; indexes NEWSLETTER_RETRY_SCHEDULE.
    step: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(Text)


class SendLane(Base):
    """One of NEWSLETTER_MAX_CONNECTIONS slots; a worker holds a lane while its connection is open.

    Lanes cap the number of SMTP connections across every worker on every machine, and make a
    duplicated batch task harmless: the second copy finds its lane taken and ends.
    """

    __tablename__ = "send_lanes"

    lane: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None]
    # The relay refused connections: no lane sends before this time (the campaign waits).
    relay_retry_at: Mapped[dt.datetime | None]
    relay_step: Mapped[int] = mapped_column(default=0)
