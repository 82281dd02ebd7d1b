"""Use cases of the subscriber stage: lists, looking subscribers up, who may be mailed, GDPR.

Every function takes the caller's ``Session`` first and never commits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.errors import AlreadyExists, InvalidInput, NotFound
from newsletter.subscribers.address import (
    check_name,
    control_character,
    erasure_hash,
    normalise_email,
)
from newsletter.subscribers.csvfile import export_header, export_row
from newsletter.subscribers.models import (
    ConsentEvent,
    ConsentText,
    MailingList,
    Subscriber,
    SubscriberImport,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)

EXPORT_FETCH_ROWS = 2_000  # rows per round trip while streaming an export
# Of a list or a segment: their String(200) columns (a test keeps the two in step).
MAX_NAME_CHARS = 200


@dataclass(frozen=True, slots=True)
class ListSummary:
    id: int
    name: str
    description: str
    double_opt_in: bool
    subscriptions: dict[str, int]  # subscription status -> count

    def as_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "double_opt_in": self.double_opt_in,
            "subscriptions": self.subscriptions,
        }


def create_list(
    session: Session, name: str, *, double_opt_in: bool = False, description: str = ""
) -> MailingList:
    name = checked_name(name, "list")
    if control_character(description) is not None:
        raise InvalidInput("the description contains a control character")
    if session.scalar(sa.select(MailingList.id).where(MailingList.name == name)) is not None:
        raise AlreadyExists(f"a list named {name!r} exists already")
    mailing_list = MailingList(name=name, double_opt_in=double_opt_in, description=description)
    add_named(session, mailing_list, f"a list named {name!r} exists already")
    return mailing_list


def checked_name(name: str, what: str) -> str:
    """``name`` with its runs of spaces folded, if it may name a list or a segment."""
    name = " ".join(name.split())
    if not name:
        raise InvalidInput(f"a {what} needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"a {what} name has at most {MAX_NAME_CHARS} characters")
    try:
        return check_name(name)
    except InvalidInput:
        raise InvalidInput(f"the {what} name contains a control character") from None


def add_named(session: Session, row: object, taken: str) -> None:
    """Insert ``row``, whose name the caller found free: ``AlreadyExists`` (``taken``) when a
    concurrent command committed the same name since. The savepoint keeps the caller's
    transaction usable."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise AlreadyExists(taken) from exc


def list_slug(name: str) -> str:
    """A list's name as a URL and List-Id label: "Weekly Digest" → "weekly-digest"."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "list"


def find_list(session: Session, name_or_slug: str) -> MailingList:
    """The list named ``name_or_slug`` exactly, else the one list with that slug; ``NotFound``.

    Two lists whose names share a slug ("A B", "a-b") are reachable by slug as neither: a
    sign-up must never land on a list the visitor did not mean.
    """
    exact = session.scalar(sa.select(MailingList).where(MailingList.name == name_or_slug))
    if exact is not None:
        return exact
    wanted = name_or_slug.strip().lower()
    matches = [m for m in session.scalars(sa.select(MailingList)) if list_slug(m.name) == wanted]
    if len(matches) != 1:
        raise NotFound(f"no list {name_or_slug!r}")
    return matches[0]


def get_list(session: Session, name: str) -> MailingList:
    mailing_list = session.scalar(sa.select(MailingList).where(MailingList.name == name))
    if mailing_list is None:
        raise NotFound(f"no list named {name!r}")
    return mailing_list


def list_lists(session: Session) -> list[ListSummary]:
    counts: dict[int, dict[str, int]] = {}
    for list_id, status, count in session.execute(
        sa.select(Subscription.list_id, Subscription.status, sa.func.count()).group_by(
            Subscription.list_id, Subscription.status
        )
    ):
        counts.setdefault(list_id, {})[status.value] = count
    return [
        ListSummary(
            m.id,
            m.name,
            m.description,
            m.double_opt_in,
            {s.value: counts.get(m.id, {}).get(s.value, 0) for s in SubscriptionStatus},
        )
        for m in session.scalars(sa.select(MailingList).order_by(MailingList.name))
    ]


def find_subscriber(session: Session, email: str) -> Subscriber:
    """The subscriber with ``email`` in any spelling (case, IDN), or ``NotFound``."""
    normalised = normalise_email(email)
    subscriber = session.scalar(sa.select(Subscriber).where(Subscriber.email == normalised))
    if subscriber is None:
        raise NotFound(f"no subscriber {normalised}")
    return subscriber


def subscriber_lists(session: Session, subscriber_id: int) -> dict[str, SubscriptionStatus]:
    rows = session.execute(
        sa.select(MailingList.name, Subscription.status)
        .join(Subscription, Subscription.list_id == MailingList.id)
        .where(Subscription.subscriber_id == subscriber_id)
        .order_by(MailingList.name)
    )
    return {name: status for name, status in rows}


def mailable_subscribers(list_ids: Iterable[int]) -> sa.Select[int]:
    """Ids of the subscribers to mail for ``list_ids``: each once, only if active and confirmed.

    The delivery stage re-runs this condition when it sends each batch (MSG-13), so an
    unsubscribe committed after the audience was built still stops the message.
    """
    return sa.select(Subscriber.id).where(
        Subscriber.status == SubscriberStatus.ACTIVE,
        sa.exists().where(
            Subscription.subscriber_id == Subscriber.id,
            Subscription.list_id.in_(list(list_ids)),
            Subscription.status == SubscriptionStatus.CONFIRMED,
        ),
    )


def erase_subscriber(session: Session, pepper: str, email: str) -> None:
    """GDPR Art. 17: delete the subscriber, their subscriptions and consent records.

    Only the peppered hash of the address is kept, in ``suppressions``, so that no import
    can add the address again (LAW-06). ``pepper`` is the secret key.
    """
    subscriber = find_subscriber(session, email)
    digest = erasure_hash(pepper, subscriber.email)
    # Explicit deletes rather than relying on ON DELETE CASCADE: SQLite enforces foreign keys
    # only when the connection turned them on.
    session.execute(sa.delete(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id))
    session.execute(sa.delete(Subscription).where(Subscription.subscriber_id == subscriber.id))
    session.execute(sa.delete(Subscriber).where(Subscriber.id == subscriber.id))
    session.expunge(subscriber)
    if session.scalar(sa.select(Suppression.id).where(Suppression.email_hash == digest)) is None:
        session.add(Suppression(email_hash=digest, reason=SuppressionReason.ERASED))
    session.flush()


def is_erased(session: Session, pepper: str, email: str) -> bool:
    digest = erasure_hash(pepper, normalise_email(email))
    return (
        session.scalar(sa.select(Suppression.id).where(Suppression.email_hash == digest))
        is not None
    )


def subscriber_data(session: Session, email: str) -> dict[str, Any]:
    """Everything held about one subscriber (GDPR Art. 15 access, Art. 20 portability)."""
    subscriber = find_subscriber(session, email)
    subscriptions = session.execute(
        sa.select(MailingList.name, Subscription)
        .join(Subscription, Subscription.list_id == MailingList.id)
        .where(Subscription.subscriber_id == subscriber.id)
        .order_by(MailingList.name)
    ).all()
    list_names = {i: n for i, n in session.execute(sa.select(MailingList.id, MailingList.name))}
    import_ids = {s.import_id for _, s in subscriptions if s.import_id is not None}
    imports = (
        {
            i.id: i
            for i in session.scalars(
                sa.select(SubscriberImport).where(SubscriberImport.id.in_(import_ids))
            )
        }
        if import_ids
        else {}
    )
    events = list(
        session.scalars(
            sa.select(ConsentEvent)
            .where(ConsentEvent.subscriber_id == subscriber.id)
            .order_by(ConsentEvent.at, ConsentEvent.id)
        )
    )
    versions = {e.consent_text_version for e in events if e.consent_text_version}
    texts = {
        version: text
        for version, text in session.execute(
            sa.select(ConsentText.version, ConsentText.text).where(
                ConsentText.version.in_(versions)
            )
        )
    }
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "attributes": subscriber.attributes,
        "status": subscriber.status.value,
        "created_at": _iso(subscriber.created_at),
        "updated_at": _iso(subscriber.updated_at),
        "subscriptions": [
            {
                "list": name,
                "status": s.status.value,
                "created_at": _iso(s.created_at),
                "updated_at": _iso(s.updated_at),
                "consent": _consent(s, imports),
            }
            for name, s in subscriptions
        ],
        "consent_events": [
            {
                "list": None if e.list_id is None else list_names.get(e.list_id),
                "action": e.action.value,
                "source": e.source.value,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "at": _iso(e.at),
                "form_url": e.form_url,
                "consent_text": None
                if e.consent_text_version is None
                else {"version": e.consent_text_version, "text": texts.get(e.consent_text_version)},
            }
            for e in events
        ],
    }


def export_list(session: Session, list_id: int) -> Iterator[list[str]]:
    """The header, then one CSV row per subscription of the list, streamed from the database.

    Every subscription is exported, suppressed ones included, with their statuses: importing
    the file elsewhere keeps them suppressed (see ``csvfile``).
    """
    yield export_header()
    rows = session.execute(
        sa.select(
            Subscriber.email,
            Subscriber.name,
            Subscriber.status,
            Subscription.status,
            Subscriber.attributes,
        )
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.list_id == list_id)
        .order_by(Subscriber.id)
        .execution_options(yield_per=EXPORT_FETCH_ROWS)
    )
    for email, name, status, subscription_status, attributes in rows:
        yield export_row(email, name, status.value, subscription_status.value, attributes)


def _consent(
    subscription: Subscription, imports: dict[int, SubscriberImport]
) -> dict[str, Any] | None:
    """The consent that created ``subscription`` (LAW-04): how, when, from where, which import."""
    if subscription.consented_at is None or subscription.consent_source is None:
        return None
    run = None if subscription.import_id is None else imports.get(subscription.import_id)
    return {
        "source": subscription.consent_source.value,
        "at": _iso(subscription.consented_at),
        "ip": subscription.consent_ip,
        "legal_basis": None if subscription.legal_basis is None else subscription.legal_basis.value,
        "import": None
        if run is None
        else {
            "file_name": run.file_name,
            "sha256": run.sha256,
            "source": run.source.value,
            "legal_basis": None if run.legal_basis is None else run.legal_basis.value,
            "started_at": _iso(run.started_at),
        },
    }


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()
