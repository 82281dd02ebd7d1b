"""Tables of the delivery stage: campaigns, the per-recipient ledger, throttles and send lanes.

The ledger (``deliveries``) is the single source of truth about who got what: one row per
(campaign, subscriber), unique in the database, its status written where the fact happens (a row
is ``sent`` after the relay's reply, never at claim time).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.db import Base, intpk, utcnow

# The statuses live in ``statuses`` (pure); re-exported here, where the table code and the
# later stages (bounces, the edges) have always found them.
from newsletter.delivery.statuses import ACCEPTED_STATUSES as ACCEPTED_STATUSES
from newsletter.delivery.statuses import CAMPAIGN_TRANSITIONS as CAMPAIGN_TRANSITIONS
from newsletter.delivery.statuses import DELIVERY_TRANSITIONS as DELIVERY_TRANSITIONS
from newsletter.delivery.statuses import OPEN_STATUSES as OPEN_STATUSES
from newsletter.delivery.statuses import UNSENT_STATUSES as UNSENT_STATUSES
from newsletter.delivery.statuses import CampaignStatus as CampaignStatus
from newsletter.delivery.statuses import DeliveryStatus as DeliveryStatus
from newsletter.delivery.statuses import may_become as may_become
from newsletter.delivery.verdict import Verdict
from newsletter.errors import InvalidTransition
from newsletter.issues.models import Issue
from newsletter.subscribers.models import Segment


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        # One send per issue and audience, held by the database (two `send` at the same moment
        # cannot both insert round 1); `send --again` takes the next round. A round of NULL
        # holds nothing: a campaign cancelled before it started, or one that failed to start.
        UniqueConstraint("issue_id", "audience_key", "audience_round"),
    )

    id: Mapped[intpk]
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"))
    # Who it is for, as one comparable value: "lists:1,3" or "segment:5" (``audience.key``).
    audience_key: Mapped[str] = mapped_column(Text, default="", server_default="")
    audience_round: Mapped[int | None]
    status: Mapped[CampaignStatus] = mapped_column(default=CampaignStatus.DRAFT)
    send_at: Mapped[dt.datetime | None]
    # A saved filter over the campaign's (single) list, evaluated when the campaign starts.
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id"))
    # Why the campaign is paused or failed, in words an editor understands; the relay's reply
    # that caused it (an automatic pause) and since when.
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_reply: Mapped[str | None] = mapped_column(Text)
    status_since: Mapped[dt.datetime | None]
    # The circuit breaker's view of the last NEWSLETTER_CAMPAIGN_POLICY_WINDOW attempts, one bit
    # each (1: a policy rejection), newest last; see ``delivery.breaker.AttemptWindow``.
    policy_window: Mapped[bytes | None] = mapped_column(LargeBinary)
    policy_window_size: Mapped[int] = mapped_column(default=0, server_default=text("0"))
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

    def transition(
        self,
        new: CampaignStatus,
        reason: str | None = None,
        *,
        reply: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        if new not in CAMPAIGN_TRANSITIONS[self.status]:
            raise InvalidTransition(f"campaign {self.id} is {self.status}; it cannot become {new}")
        self.status = new
        self.status_reason = reason
        self.status_reply = reply
        self.status_since = at


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
        # A provider webhook names the message by the relay's queue id. Partial: a row enters
        # the index once, when the relay's reply is written, not also at its in-flight mark.
        Index(
            "ix_deliveries_queue_id",
            "queue_id",
            postgresql_where=text("queue_id IS NOT NULL"),
            sqlite_where=text("queue_id IS NOT NULL"),
        ),
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
    # What the last reply meant (``delivery.verdict``): `campaign resume` retries the rows
    # whose last word was a policy rejection.
    verdict: Mapped[Verdict | None]
    queue_id: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DomainThrottle(Base):
    """A recipient domain that asked us to slow down: nothing is sent to it before ``until``.

    A 421 backs the domain off at once. A 4.7.x "slow down" is counted in ``signals`` instead,
    once per recipient in a row, and backs it off only when NEWSLETTER_DOMAIN_THROTTLE_AFTER
    different recipients said it (one bad mailbox must not hold its whole domain). Any
    accepted message deletes the row: the next back-off starts from the first step.
    """

    __tablename__ = "domain_throttles"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    until: Mapped[dt.datetime]
    # How many back-offs in a row; indexes NEWSLETTER_RETRY_SCHEDULE.
    step: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(Text)
    # Throttling replies from different recipients since the last back-off or success; the
    # last one's delivery, so that one recipient retried again and again counts once.
    signals: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    signal_delivery_id: Mapped[int | None]


class DomainHold(Base):
    """The circuit breaker of one recipient domain within one campaign.

    Every policy rejection (block list, reputation, authentication: ``Verdict.POLICY``) adds one
    to ``policy_streak``; a delivery the domain accepts resets it. When the streak reaches
    NEWSLETTER_DOMAIN_POLICY_PAUSE_AFTER the domain is held: ``held_since`` is set and no row of
    that domain is claimed for the campaign until `campaign resume` deletes the hold.
    """

    __tablename__ = "domain_holds"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    policy_streak: Mapped[int] = mapped_column(default=0)
    held_since: Mapped[dt.datetime | None]
    reply: Mapped[str | None] = mapped_column(
        Text
    )  # the last policy rejection, as the relay said it


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
    # What the relay did, in words, while ``relay_retry_at`` is set: "relay 127.0.0.1:1
    # refused the connection" (`campaign status` says what it waits for, and until when).
    relay_error: Mapped[str | None] = mapped_column(Text)
