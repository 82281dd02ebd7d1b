"""The subscriber stage's statuses and value types, with their transition tables. Pure.

Kept apart from the tables (``models``) so that the pure modules that decide on statuses
(``csvfile``, ``optin``, the importer's row planning, the bounce policy) import no SQLAlchemy,
not even through ``models``: the import-linter contract "Pure modules do no I/O, indirect
imports included" checks it. ``models`` re-exports every name here for the code that already
works with the tables.
"""

from __future__ import annotations

import enum

from newsletter.errors import InvalidTransition


class SubscriberStatus(enum.StrEnum):
    ACTIVE = "active"  # the only status that is ever mailed
    UNSUBSCRIBED = "unsubscribed"  # opted out of every list
    BOUNCED = "bounced"  # the bounce policy gave up on the address
    COMPLAINED = "complained"  # marked a message as spam
    BLOCKED = "blocked"  # an administrator stopped all mail to the address


# Which status may follow which; everything else raises InvalidTransition. Every suppression
# may be lifted to ACTIVE, but only by an explicit act (an import with --reactivate-suppressed,
# an administrator); a complaint is never downgraded to a mere unsubscribe or bounce.
SUBSCRIBER_TRANSITIONS: dict[SubscriberStatus, frozenset[SubscriberStatus]] = {
    SubscriberStatus.ACTIVE: frozenset(
        {
            SubscriberStatus.UNSUBSCRIBED,
            SubscriberStatus.BOUNCED,
            SubscriberStatus.COMPLAINED,
            SubscriberStatus.BLOCKED,
        }
    ),
    SubscriberStatus.UNSUBSCRIBED: frozenset(
        {SubscriberStatus.ACTIVE, SubscriberStatus.COMPLAINED, SubscriberStatus.BLOCKED}
    ),
    SubscriberStatus.BOUNCED: frozenset(
        {
            SubscriberStatus.ACTIVE,
            SubscriberStatus.UNSUBSCRIBED,
            SubscriberStatus.COMPLAINED,
            SubscriberStatus.BLOCKED,
        }
    ),
    SubscriberStatus.COMPLAINED: frozenset({SubscriberStatus.ACTIVE, SubscriberStatus.BLOCKED}),
    SubscriberStatus.BLOCKED: frozenset({SubscriberStatus.ACTIVE}),
}


def check_subscriber_transition(
    subscriber_id: int, old: SubscriberStatus, new: SubscriberStatus
) -> None:
    """Raise ``InvalidTransition`` for a change ``SUBSCRIBER_TRANSITIONS`` does not allow."""
    if new not in SUBSCRIBER_TRANSITIONS[old]:
        raise InvalidTransition(f"subscriber {subscriber_id} is {old}; it cannot become {new}")


class SubscriptionStatus(enum.StrEnum):
    UNCONFIRMED = "unconfirmed"  # double opt-in list, confirmation mail not yet clicked
    CONFIRMED = "confirmed"  # mailable (if the subscriber is active)
    UNSUBSCRIBED = "unsubscribed"  # left this list


SUBSCRIPTION_TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    SubscriptionStatus.UNCONFIRMED: frozenset(
        {SubscriptionStatus.CONFIRMED, SubscriptionStatus.UNSUBSCRIBED}
    ),
    SubscriptionStatus.CONFIRMED: frozenset({SubscriptionStatus.UNSUBSCRIBED}),
    SubscriptionStatus.UNSUBSCRIBED: frozenset(
        {SubscriptionStatus.UNCONFIRMED, SubscriptionStatus.CONFIRMED}
    ),
}


class ConsentAction(enum.StrEnum):
    SUBSCRIBE = "subscribe"
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"


class ConsentSource(enum.StrEnum):
    IMPORT = "import"
    FORM = "form"
    API = "api"
    ADMIN = "admin"
    EMAIL = "email"  # List-Unsubscribe one-click or mailto


class StatusChangeSource(enum.StrEnum):
    """Who or what changed a subscriber's status: the ``source`` of its audit row.

    The bounce stage's values are where the bounce came from (``bounces.event.BounceSource``,
    mapped in ``bounces.event.STATUS_CHANGE_SOURCE``); the subscriber stage's are where the
    consent came from (``ConsentSource``, mapped in ``CONSENT_CHANGE_SOURCE``).
    """

    SMTP = "smtp"  # a bounce to our own receiver
    IMAP = "imap"
    POP3 = "pop3"
    FILE = "file"  # ``bounces process FILE``
    WEBHOOK = "webhook"
    SYNC = "sync"  # the relay's reply while sending
    ADMIN = "admin"  # a person (``subscriber reinstate``, ``bounces apply``)
    IMPORT = "import"  # ``subscribers import --reactivate-suppressed``
    FORM = "form"  # a confirmation link followed: their own new consent
    API = "api"
    EMAIL = "email"  # List-Unsubscribe, one-click or mailto


CONSENT_CHANGE_SOURCE: dict[ConsentSource, StatusChangeSource] = {
    ConsentSource.IMPORT: StatusChangeSource.IMPORT,
    ConsentSource.FORM: StatusChangeSource.FORM,
    ConsentSource.API: StatusChangeSource.API,
    ConsentSource.ADMIN: StatusChangeSource.ADMIN,
    ConsentSource.EMAIL: StatusChangeSource.EMAIL,
}


class LegalBasis(enum.StrEnum):
    """Why we may mail a subscriber (GDPR Art. 6(1), LAW-07), stated per subscription."""

    CONSENT = "consent"  # (a): a sign-up form of ours, or consent an import vouches for
    CONTRACT = "contract"  # (b): the bulletin is part of what the reader signed up to pay for
    # (f) with the ePrivacy Art. 13(2) "soft opt-in": existing customers, opt-out in every mail
    LEGITIMATE_INTEREST = "legitimate_interest"


class SuppressionReason(enum.StrEnum):
    ERASED = "erased"  # GDPR Art. 17: only the peppered hash of the address remains


class ImportJobStatus(enum.StrEnum):
    QUEUED = "queued"  # the file's bytes are stored; waiting for a worker
    RUNNING = "running"
    DONE = "done"  # the counts and the row errors are on the job
    FAILED = "failed"  # the whole file was refused (or a fault stopped it): ``error`` says why


# RUNNING → RUNNING: the broker delivers the job again after a worker died in it; the import
# is idempotent, so it runs once more from the start (the rows already written are unchanged).
IMPORT_JOB_TRANSITIONS: dict[ImportJobStatus, frozenset[ImportJobStatus]] = {
    ImportJobStatus.QUEUED: frozenset({ImportJobStatus.RUNNING, ImportJobStatus.FAILED}),
    ImportJobStatus.RUNNING: frozenset(
        {ImportJobStatus.RUNNING, ImportJobStatus.DONE, ImportJobStatus.FAILED}
    ),
    ImportJobStatus.DONE: frozenset(),
    ImportJobStatus.FAILED: frozenset(),
}


class ImportFailure(enum.StrEnum):
    """Why a job failed, for the exit code of whoever reports it."""

    INPUT = "input"  # the file or an option (a UserError): the operator fixes the file
    FAULT = "fault"  # the database, a bug: the worker's log has the details
    # Ctrl-C where it ran without a broker (no broker hands it to anyone again). A worker's
    # job is never marked so: the broker gives it to another worker, which finishes it.
    INTERRUPTED = "interrupted"


class ImportNoteKind(enum.StrEnum):
    """What a line an import job reports is: refused, or imported with something to look at."""

    ERROR = "error"  # the row was not imported (``csvfile.RowError``, or erased, suppressed)
    WARNING = "warning"  # imported all the same (``csvfile.RowWarning``: needs SMTPUTF8)
