"""Tables of the subscriber stage: lists, subscribers, subscriptions, consent, suppressions,
segments, and import jobs (with their uploaded files and row errors).

Only an ``active`` subscriber with a ``confirmed`` subscription is ever mailed (see
``newsletter.subscribers.service.mailable_subscribers``); every other status is a suppression.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.db import Base, intpk, utcnow
from newsletter.errors import InvalidTransition
from newsletter.subscribers.address import EMAIL_MAX_CHARS

# The statuses live in ``statuses`` (pure); re-exported here, where the table code and the
# later stages (delivery) have always found them.
from newsletter.subscribers.statuses import IMPORT_JOB_TRANSITIONS as IMPORT_JOB_TRANSITIONS
from newsletter.subscribers.statuses import SUBSCRIBER_TRANSITIONS as SUBSCRIBER_TRANSITIONS
from newsletter.subscribers.statuses import SUBSCRIPTION_TRANSITIONS as SUBSCRIPTION_TRANSITIONS
from newsletter.subscribers.statuses import ConsentAction as ConsentAction
from newsletter.subscribers.statuses import ConsentSource as ConsentSource
from newsletter.subscribers.statuses import ImportFailure as ImportFailure
from newsletter.subscribers.statuses import ImportJobStatus as ImportJobStatus
from newsletter.subscribers.statuses import ImportNoteKind as ImportNoteKind
from newsletter.subscribers.statuses import LegalBasis as LegalBasis
from newsletter.subscribers.statuses import StatusChangeSource as StatusChangeSource
from newsletter.subscribers.statuses import SubscriberStatus as SubscriberStatus
from newsletter.subscribers.statuses import SubscriptionStatus as SubscriptionStatus
from newsletter.subscribers.statuses import SuppressionReason as SuppressionReason
from newsletter.subscribers.statuses import check_subscriber_transition


class MailingList(Base):
    __tablename__ = "mailing_lists"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Double opt-in: new subscriptions start unconfirmed and are not mailed until confirmed.
    double_opt_in: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[intpk]
    # email-validator's normalised form, lower-cased: the case-insensitive unique key.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_CHARS), unique=True)
    name: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[SubscriberStatus] = mapped_column(default=SubscriberStatus.ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def transition(self, new: SubscriberStatus) -> None:
        """Only ``audit.change_status`` calls this: every change has its audit row."""
        check_subscriber_transition(self.id, self.status, new)
        self.status = new


class SubscriberStatusChange(Base):
    """Audit trail: who or what changed a subscriber's status, from what, and why.

    Written by ``audit`` for every change, whichever stage makes it (consent, the importer,
    the bounce stage); deleted with the subscriber (erasure).
    """

    __tablename__ = "subscriber_status_changes"

    id: Mapped[intpk]
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    old: Mapped[SubscriberStatus]
    new: Mapped[SubscriberStatus]
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[StatusChangeSource]
    # The person for an administrative change, e.g. the CLI user; None for the policy.
    by: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    __tablename__ = "subscriptions"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("mailing_lists.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    status: Mapped[SubscriptionStatus] = mapped_column(default=SubscriptionStatus.CONFIRMED)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # When the status last changed: a confirmation token issued before it is stale.
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The consent that created this subscription (LAW-04), written once with the row and never
    # updated: how, when, from where, and for an import which run (file name and SHA-256).
    # None for a subscription created without consent (a suppression carried by a file).
    # Every later change (confirm, unsubscribe, re-subscribe) is a ``ConsentEvent``.
    consent_source: Mapped[ConsentSource | None]
    consented_at: Mapped[dt.datetime | None]
    consent_ip: Mapped[str | None] = mapped_column(String(45))
    # No foreign key: an import run is never deleted, and the check would cost every row of
    # an import its own lookup (docs/subscribers.md, "The consent proof (LAW-04)").
    import_id: Mapped[int | None]
    # Written with the row like the consent above: `consent` for our forms, what the import
    # stated (--legal-basis) for an import; None only for rows older than this column.
    legal_basis: Mapped[LegalBasis | None]

    def transition(self, new: SubscriptionStatus, now: dt.datetime) -> None:
        if new not in SUBSCRIPTION_TRANSITIONS[self.status]:
            raise InvalidTransition(
                f"subscription of subscriber {self.subscriber_id} to list {self.list_id} is "
                f"{self.status}; it cannot become {new}"
            )
        self.status = new
        self.updated_at = now


class ConsentEvent(Base):
    """Append-only proof of consent and its withdrawal (GDPR Art. 7(1)); never updated."""

    __tablename__ = "consent_events"

    id: Mapped[intpk]
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    # None: the action concerned every list (an unsubscribe from all).
    list_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    action: Mapped[ConsentAction]
    source: Mapped[ConsentSource]
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # A sign-up on a form (LAW-04): the page it was given on and the version of the sentence
    # the person agreed to (the text itself is kept in ``consent_texts``).
    form_url: Mapped[str | None] = mapped_column(Text)
    consent_text_version: Mapped[str | None] = mapped_column(
        ForeignKey("consent_texts.version"), default=None
    )


class ConsentText(Base):
    """Every consent sentence a form has shown, by version (a hash of the text): the evidence of
    what a subscriber agreed to, kept even after the form's wording changes. Append-only."""

    __tablename__ = "consent_texts"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    first_used_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SubscriberImport(Base):
    """One run of the CSV importer: the proof, with ``Subscription.consent_*``, of the consent
    of every subscription it created (LAW-04). Append-only, never deleted."""

    __tablename__ = "subscriber_imports"

    id: Mapped[intpk]
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the file's bytes; None: no file
    source: Mapped[ConsentSource]
    legal_basis: Mapped[LegalBasis | None]  # what the import stated for all its rows
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """An address that must never be added again, kept only as a peppered hash (LAW-06)."""

    __tablename__ = "suppressions"

    id: Mapped[intpk]
    # HMAC-SHA256 (key: the secret key) of the normalised address, hex.
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[SuppressionReason]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Segment(Base):
    """A saved filter over one list, evaluated at send time (never a frozen id list)."""

    __tablename__ = "segments"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    expression: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ImportJob(Base):
    """One ``subscribers import`` as any process sees it: options, progress, outcome.

    With a broker the file's bytes wait in ``import_chunks`` until the job is over, so the
    worker needs no access to the file; the counts, the first ``MAX_ERRORS_KEPT`` row errors
    and the first ``MAX_WARNINGS_KEPT`` row warnings stay here (``import_job_errors``, told
    apart by their ``kind``) for ``subscribers import-status``.
    """

    __tablename__ = "import_jobs"

    id: Mapped[intpk]
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)  # a file may pass 2 GiB
    # Of the uploaded bytes; None for a job that reads the file where it is (no broker).
    sha256: Mapped[str | None] = mapped_column(String(64))
    upsert: Mapped[bool]
    reactivate_suppressed: Mapped[bool]
    check_deliverability: Mapped[bool]
    legal_basis: Mapped[LegalBasis] = mapped_column(default=LegalBasis.CONSENT)
    status: Mapped[ImportJobStatus] = mapped_column(default=ImportJobStatus.QUEUED)
    rows_done: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    # Rows imported all the same that the operator should look at (revision 0010).
    warning_count: Mapped[int] = mapped_column(default=0, server_default="0")
    failure: Mapped[ImportFailure | None]
    error: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    # Written at every committed batch: a job "running" whose updated_at is old lost its worker.
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def transition(self, new: ImportJobStatus, now: dt.datetime) -> None:
        if new not in IMPORT_JOB_TRANSITIONS[self.status]:
            raise InvalidTransition(
                f"import job {self.id} is {self.status}; it cannot become {new}"
            )
        self.status = new
        self.updated_at = now


class ImportJobError(Base):
    """A line the job reports: a row it refused (``kind`` error) or one it imported with a
    warning; ``error`` holds the message of either."""

    __tablename__ = "import_job_errors"

    id: Mapped[intpk]
    job_id: Mapped[int] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="CASCADE"), index=True
    )
    # Rows stored before revision 0010 were all errors.
    kind: Mapped[ImportNoteKind] = mapped_column(
        default=ImportNoteKind.ERROR, server_default=ImportNoteKind.ERROR.value
    )
    line: Mapped[int]
    error: Mapped[str] = mapped_column(Text)


class ImportChunk(Base):
    """A piece of an uploaded file, in order; all of them are deleted when the job is over."""

    __tablename__ = "import_chunks"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
