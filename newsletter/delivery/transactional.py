"""Transactional mail: the confirmation message of a double opt-in sign-up (LAW-05).

``queue_confirmation`` writes an outbox row in the caller's transaction (the sign-up's);
``send_queued`` sends one queued message through the same ``Transport`` and DKIM signer as the
campaigns, in three steps that never hold a transaction open across SMTP: claim and build,
send, record. The message is built when it is sent, so its link is fresh (a confirmation link
is good for 48 hours from then) and a person who confirmed, left or was erased meanwhile is
not mailed at all.

The message is plain text, carries no marketing and, being an answer to the person's own
request rather than a list message, no List-Unsubscribe; ``Auto-Submitted: auto-generated``
(RFC 3834) tells auto-responders not to answer it.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import secrets
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.db import SessionFactory
from newsletter.delivery import outbox
from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.outbox import OutboxKind, OutboxMessage
from newsletter.delivery.transports import Transport, check_recipient
from newsletter.errors import DeliveryError, PermanentDeliveryError
from newsletter.render.service import PUBLICATION
from newsletter.subscribers.models import (
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from newsletter.subscribers.tokens import CONFIRM_TOKEN_SECONDS, confirm_token

WRAP_COLUMNS = 72
# Headers are folded and bodies encoded for SMTP (CRLF, 7-bit safe: the DKIM body hash must
# survive any relay).
SMTP_POLICY = email.policy.SMTP.clone(cte_type="7bit")


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What the confirmation message says; every value already checked by its stage."""

    to: str
    list_name: str
    confirm_url: str
    message_id: str
    date: dt.datetime


@dataclass(frozen=True, slots=True)
class SendOutcome:
    message_id: int
    result: str  # "sent", "retry", "failed", "cancelled" or "not due"

    def as_document(self) -> dict[str, object]:
        return {"message": self.message_id, "result": self.result}


def queue_confirmation(session: Session, subscriber_id: int, list_id: int, now: dt.datetime) -> int:
    """Queue the confirmation mail of an unconfirmed subscription; the outbox row's id."""
    return outbox.queue(session, OutboxKind.CONFIRMATION, subscriber_id, list_id, now)


def confirm_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/confirm/{token}"


def send_queued(
    sessions: SessionFactory,
    settings: Settings,
    transport: Transport,
    message_id: int,
    *,
    signer: DkimSigner | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> SendOutcome:
    """Claim, build, send and record one outbox message; safe to call for any id, any time."""
    with sessions() as session:
        message = outbox.claim(session, message_id, clock(), settings.lease_seconds)
        if message is None:
            return SendOutcome(message_id, "not due")
        recipient = _recipient(session, message)
        if recipient is None:
            outbox.cancel(session, message, "the subscription is no longer waiting for it")
            return SendOutcome(message_id, "cancelled")
        try:
            check_recipient(recipient.email)
        except PermanentDeliveryError as error:
            _record_failure(session, settings, message, error, clock())
            return SendOutcome(message_id, "failed")
        raw = _build(settings, message, recipient, clock())
    if signer is not None:
        raw = signer.sign(raw)
    try:
        transport.send(str(settings.bounce_address.addr_spec), recipient.email, raw)
    except DeliveryError as error:
        with sessions() as session:
            message = session.get(OutboxMessage, message_id)
            if message is None:  # erased while we were sending: nothing left to record
                return SendOutcome(message_id, "cancelled")
            return SendOutcome(
                message_id, _record_failure(session, settings, message, error, clock())
            )
    with sessions() as session:
        message = session.get(OutboxMessage, message_id)
        if message is not None:
            outbox.record_sent(session, message, clock())
    return SendOutcome(message_id, "sent")


def confirmation_message(settings: Settings, confirmation: Confirmation) -> bytes:
    """The confirmation mail as CRLF bytes ready for SMTP (and for signing)."""
    publication = settings.from_address.display_name or PUBLICATION
    hours = CONFIRM_TOKEN_SECONDS // 3600
    paragraphs = [
        f"Someone, hopefully you, asked to receive {confirmation.list_name} from "
        f"{publication} at this address.",
        f"To confirm, open this link and press the button on the page. It works for {hours} hours:",
        confirmation.confirm_url,
        "If you did not ask for this, ignore this message: you will get nothing more from us, "
        "and the request is forgotten after a while.",
    ]
    if settings.postal_address:
        paragraphs.append(f"{publication}, {settings.postal_address}")
    body = "\n\n".join(
        p if p.startswith(("http://", "https://")) else textwrap.fill(p, WRAP_COLUMNS)
        for p in paragraphs
    )
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = settings.from_address
    if settings.reply_to is not None:
        message["Reply-To"] = settings.reply_to
    message["To"] = confirmation.to
    message["Subject"] = f"Confirm your subscription to {confirmation.list_name}"
    message["Date"] = format_datetime(confirmation.date)
    message["Message-ID"] = confirmation.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body + "\n")
    return message.as_bytes(policy=SMTP_POLICY)


@dataclass(frozen=True, slots=True)
class _Recipient:
    subscriber_id: int
    email: str
    list_id: int
    list_name: str


def _recipient(session: Session, message: OutboxMessage) -> _Recipient | None:
    """Whom to mail, or None when the subscription no longer waits for a confirmation."""
    subscription = session.get(Subscription, (message.subscriber_id, message.list_id))
    subscriber = session.get(Subscriber, message.subscriber_id)
    mailing_list = session.get(MailingList, message.list_id)
    if (
        subscription is None
        or subscriber is None
        or mailing_list is None
        or subscription.status is not SubscriptionStatus.UNCONFIRMED
    ):
        return None
    return _Recipient(subscriber.id, subscriber.email, mailing_list.id, mailing_list.name)


def _build(
    settings: Settings, message: OutboxMessage, recipient: _Recipient, now: dt.datetime
) -> bytes:
    token = confirm_token(settings.secret_key, recipient.subscriber_id, recipient.list_id, now)
    return confirmation_message(
        settings,
        Confirmation(
            to=recipient.email,
            list_name=recipient.list_name,
            confirm_url=confirm_url(settings, token),
            message_id=f"<confirm.{message.id}.{secrets.token_hex(6)}@{settings.sending_domain}>",
            date=now,
        ),
    )


def _record_failure(
    session: Session,
    settings: Settings,
    message: OutboxMessage,
    error: DeliveryError,
    now: dt.datetime,
) -> str:
    outbox.record_failure(
        session,
        message,
        str(error),
        permanent=isinstance(error, PermanentDeliveryError),
        schedule=settings.retry_schedule,
        now=now,
    )
    return "failed" if message.status is outbox.OutboxStatus.FAILED else "retry"
