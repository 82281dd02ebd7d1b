"""What the send loop is given: settings, connections, the clock, and the bounce stage's ear."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.db import Clock, SessionFactory, utcnow
from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.ledger import Claimed
from newsletter.delivery.message import MessageTemplate
from newsletter.delivery.ratelimit import RateLimiter
from newsletter.delivery.transports import Transport
from newsletter.delivery.verdict import SmtpReply

Progress = Callable[[], None]  # told once per recipient done (sent, failed, bounced, skipped)


class RejectionHandler:
    """Told about every hard, soft and policy reply at send time; the bounce stage supplies one.

    The delivery stage comes before the bounce stage, so it only declares this hook;
    ``bounces.processing.BounceRejections`` applies the bounce policy through it.
    """

    def rejected(self, session: Session, claimed: Claimed, reply: SmtpReply) -> None:
        """Called in the transaction that records the row's outcome."""


@dataclass(frozen=True, slots=True)
class CampaignMessage:
    """Everything per campaign that the loop needs to build one recipient's message."""

    campaign_id: int
    issue_id: int
    template: MessageTemplate


@dataclass(frozen=True, slots=True)
class SendContext:
    settings: Settings
    engine: Engine
    sessions: SessionFactory  # the caller's; the loop commits per claim and per outcome
    transport: Transport
    limiter: RateLimiter
    owner: str  # unique per worker process and batch: "host:pid:nonce"
    templates: Callable[[Session, int], CampaignMessage]
    signer: DkimSigner | None = None
    rejections: RejectionHandler = field(default_factory=RejectionHandler)
    clock: Clock = utcnow
    # Told once per recipient done, as it happens (the embedded progress bar counts them).
    progress: Progress | None = None
