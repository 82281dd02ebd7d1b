"""The delivery stage's statuses, with their transition tables. Pure.

Kept apart from the tables (``models``) so that the pure modules that decide on statuses (the
send-time policy above all) import no SQLAlchemy, not even through ``models``: the import-linter
contract "Pure modules do no I/O, indirect imports included" checks it. ``models`` re-exports
every name here for the code that already works with the tables.
"""

from __future__ import annotations

import enum


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
    # A finished campaign can be reopened only to resend to the recipients it missed, and a
    # cancelled one only by `campaign resend --unsent`: a new run for the rest of its ledger.
    CampaignStatus.SENT: frozenset({CampaignStatus.SENDING}),
    CampaignStatus.CANCELLED: frozenset({CampaignStatus.SENDING}),
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


# Every change of a delivery's status, in one table: the ledger's UPDATEs take their guards
# from it (``may_become``), so a statement can only move rows along an edge listed here.
DELIVERY_TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.PENDING: frozenset({DeliveryStatus.SENDING, DeliveryStatus.SKIPPED}),
    DeliveryStatus.SENDING: frozenset(
        {
            DeliveryStatus.PENDING,  # given back: not in flight, or the batch stopped
            DeliveryStatus.SENT,
            DeliveryStatus.DEFERRED,
            DeliveryStatus.FAILED,
            DeliveryStatus.BOUNCED,
            DeliveryStatus.SKIPPED,  # suppressed between the claim and the in-flight mark
            DeliveryStatus.POSSIBLY_SENT,
        }
    ),
    DeliveryStatus.DEFERRED: frozenset(
        {
            DeliveryStatus.SENDING,
            DeliveryStatus.SKIPPED,
            DeliveryStatus.PENDING,  # `campaign resume` retries rows held by policy at once
        }
    ),
    # The worker that held the row may still write what the relay said (better knowledge than
    # recovery's guess), or "possibly sent" again when it knows no more; a DSN may bounce it.
    DeliveryStatus.POSSIBLY_SENT: frozenset(
        {
            # `campaign resend --possibly-sent`: the operator checked the relay's log and found
            # nothing; their call, never automatic.
            DeliveryStatus.PENDING,
            DeliveryStatus.SENT,
            DeliveryStatus.DEFERRED,
            DeliveryStatus.FAILED,
            DeliveryStatus.BOUNCED,
            DeliveryStatus.POSSIBLY_SENT,
        }
    ),
    DeliveryStatus.SENT: frozenset({DeliveryStatus.BOUNCED}),  # a DSN that came back later
    DeliveryStatus.FAILED: frozenset({DeliveryStatus.PENDING}),  # resend --unsent, resume
    DeliveryStatus.SKIPPED: frozenset({DeliveryStatus.PENDING}),  # resend --unsent
    DeliveryStatus.BOUNCED: frozenset(),
}


def may_become(*targets: DeliveryStatus) -> list[DeliveryStatus]:
    """The statuses from which a row may move to every one of ``targets``, in a stable order."""
    return [
        status
        for status, allowed in DELIVERY_TRANSITIONS.items()
        if all(target in allowed for target in targets)
    ]


# Statuses that mean "still to do"; the campaign ends when none is left.
OPEN_STATUSES = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED})
# Statuses that mean the message never left: `campaign resend --unsent` may try them again.
UNSENT_STATUSES = frozenset({DeliveryStatus.FAILED, DeliveryStatus.SKIPPED})
# What the relay took responsibility for: a DSN about one of these may bounce it.
ACCEPTED_STATUSES = frozenset({DeliveryStatus.SENT, DeliveryStatus.POSSIBLY_SENT})
