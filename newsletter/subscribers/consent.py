"""Giving and withdrawing consent: subscribe, confirm (double opt-in), unsubscribe.

Each change writes an append-only ``ConsentEvent`` beside the status it changes (LAW-04), and
a change of the subscriber's own status goes through ``audit`` like every other; a
new subscription also carries the consent that created it (``Subscription.consent_*``), which
is the only record of it for a subscription created by an import (see ``importer``).
The caller commits; an unsubscribe takes effect at that commit, and the delivery stage checks
``mailable_subscribers`` again for every batch it sends (MSG-13).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.db import get_or_raise
from newsletter.errors import InvalidInput, LinkExpired
from newsletter.subscribers.address import check_name, erasure_hash, normalise_email
from newsletter.subscribers.audit import change_status
from newsletter.subscribers.importer import ERASED_ERROR
from newsletter.subscribers.models import (
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    LegalBasis,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from newsletter.subscribers.statuses import CONSENT_CHANGE_SOURCE
from newsletter.subscribers.tokens import read_confirm_token, read_unsubscribe_token

USER_AGENT_MAX_CHARS = 512  # a browser's is ~150; anything longer is noise, not evidence


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where and how a consent was given, recorded with it (LAW-04); all optional."""

    ip: str | None = None
    user_agent: str | None = None
    form_url: str | None = None  # the page of the form, never with a token in it
    consent_text_version: str | None = None  # a ``ConsentText.version``


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    subscriber_id: int
    list_id: int
    list_name: str


def subscribe(
    session: Session,
    pepper: str,
    list_id: int,
    email: str,
    *,
    name: str = "",
    source: ConsentSource,
    now: dt.datetime,
    ip: str | None = None,
    user_agent: str | None = None,
    evidence: Evidence | None = None,
    initial: SubscriptionStatus | None = None,
    legal_basis: LegalBasis = LegalBasis.CONSENT,
) -> Subscription:
    """Subscribe one address (a form, the API, an administrator).

    On a double opt-in list the subscription is ``unconfirmed`` until ``confirm``; the caller
    then mails a ``tokens.confirm_token``. ``initial`` overrides the list's rule (a sign-up
    that must be confirmed on a single opt-in list, see ``optin``). A suppressed subscriber is
    not re-activated here (a bounced address stays bounced), but an explicit new subscribe to
    a list they had left is their own new consent and re-subscribes them to it.
    """
    if evidence is None:
        evidence = Evidence(ip=ip, user_agent=user_agent)
    mailing_list = get_or_raise(session, MailingList, list_id, f"no list with id {list_id}")
    address = normalise_email(email)
    digest = erasure_hash(pepper, address)
    if session.scalar(sa.select(Suppression.id).where(Suppression.email_hash == digest)):
        raise InvalidInput(ERASED_ERROR)
    subscriber = session.scalar(sa.select(Subscriber).where(Subscriber.email == address))
    if subscriber is None:
        subscriber = Subscriber(email=address, name=check_name(name), attributes={})
        session.add(subscriber)
        session.flush()
    if initial is None:
        initial = (
            SubscriptionStatus.UNCONFIRMED
            if mailing_list.double_opt_in
            else SubscriptionStatus.CONFIRMED
        )
    subscription = session.get(Subscription, (subscriber.id, list_id))
    if subscription is None:
        subscription = Subscription(
            subscriber_id=subscriber.id,
            list_id=list_id,
            status=initial,
            created_at=now,
            updated_at=now,
            consent_source=source,
            consented_at=now,
            consent_ip=evidence.ip,
            legal_basis=legal_basis,
        )
        session.add(subscription)
    elif subscription.status is SubscriptionStatus.UNSUBSCRIBED:
        subscription.transition(initial, now)
    else:
        return subscription  # already subscribed: nothing to record
    record_event(session, subscriber.id, list_id, ConsentAction.SUBSCRIBE, source, now, evidence)
    session.flush()
    return subscription


def pending_confirmation(
    session: Session, secret: str, token: str, *, now: dt.datetime
) -> PendingConfirmation:
    """What a confirmation link would confirm, changing nothing (the page before the button).

    ``InvalidInput`` for a forged token; ``LinkExpired`` for one that is too old or used up:
    a link is good only while the subscription is unconfirmed and has not changed since it
    was issued.
    """
    claim = read_confirm_token(secret, token, now)
    subscription = session.get(Subscription, (claim.subscriber_id, claim.list_id))
    mailing_list = session.get(MailingList, claim.list_id)
    # updated_at has microseconds, the token whole seconds: compare at second precision.
    if (
        subscription is None
        or mailing_list is None
        or subscription.status is not SubscriptionStatus.UNCONFIRMED
        or subscription.updated_at.replace(microsecond=0) > claim.issued_at
    ):
        raise LinkExpired("the confirmation link has been used already or is no longer valid")
    return PendingConfirmation(claim.subscriber_id, claim.list_id, mailing_list.name)


def confirm(
    session: Session,
    secret: str,
    token: str,
    *,
    now: dt.datetime,
    ip: str | None = None,
    user_agent: str | None = None,
) -> Subscription:
    """Confirm a double opt-in subscription with the token from the confirmation mail.

    Raises like ``pending_confirmation``. Someone who had left every list and now confirms a
    new sign-up is active again: the confirmed link is their own new consent (LAW-05).
    """
    pending = pending_confirmation(session, secret, token, now=now)
    subscription = session.get(Subscription, (pending.subscriber_id, pending.list_id))
    subscriber = session.get(Subscriber, pending.subscriber_id)
    assert subscription is not None
    assert subscriber is not None
    subscription.transition(SubscriptionStatus.CONFIRMED, now)
    if subscriber.status is SubscriberStatus.UNSUBSCRIBED:
        change_status(
            session,
            subscriber,
            SubscriberStatus.ACTIVE,
            reason=f"confirmed a subscription to list {pending.list_id}: their own new consent",
            source=CONSENT_CHANGE_SOURCE[ConsentSource.FORM],
            now=now,
        )
    record_event(
        session,
        pending.subscriber_id,
        pending.list_id,
        ConsentAction.CONFIRM,
        ConsentSource.FORM,
        now,
        Evidence(ip=ip, user_agent=user_agent),
    )
    session.flush()
    return subscription


def unsubscribe(
    session: Session,
    subscriber_id: int,
    *,
    list_id: int | None = None,
    source: ConsentSource,
    now: dt.datetime,
    ip: str | None = None,
    user_agent: str | None = None,
) -> bool:
    """Unsubscribe from one list, or from every list (``list_id`` None); True if it changed.

    Idempotent: unsubscribing again changes nothing and records nothing. From every list, the
    subscriber becomes ``unsubscribed`` as a whole, so no later import or new list mails them.
    """
    subscriber = get_or_raise(
        session, Subscriber, subscriber_id, f"no subscriber with id {subscriber_id}"
    )
    query = sa.select(Subscription).where(
        Subscription.subscriber_id == subscriber_id,
        Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
    )
    if list_id is not None:
        get_or_raise(session, MailingList, list_id, f"no list with id {list_id}")
        query = query.where(Subscription.list_id == list_id)
    changed = False
    for subscription in session.scalars(query):
        subscription.transition(SubscriptionStatus.UNSUBSCRIBED, now)
        changed = True
    if list_id is None and subscriber.status is SubscriberStatus.ACTIVE:
        change_status(
            session,
            subscriber,
            SubscriberStatus.UNSUBSCRIBED,
            reason="unsubscribed from every list",
            source=CONSENT_CHANGE_SOURCE[source],
            now=now,
        )
        changed = True
    if changed:
        record_event(
            session,
            subscriber_id,
            list_id,
            ConsentAction.UNSUBSCRIBE,
            source,
            now,
            Evidence(ip=ip, user_agent=user_agent),
        )
        session.flush()
    return changed


def unsubscribe_by_token(
    session: Session,
    secret: str,
    token: str,
    *,
    now: dt.datetime,
    source: ConsentSource = ConsentSource.EMAIL,
    ip: str | None = None,
    user_agent: str | None = None,
) -> bool:
    """``unsubscribe`` with the token of a List-Unsubscribe link; tokens never expire.

    A token for a subscriber who has since been erased changes nothing (and is not an error:
    the person is not mailed anyway).
    """
    claim = read_unsubscribe_token(secret, token)
    if session.get(Subscriber, claim.subscriber_id) is None:
        return False
    if claim.list_id is not None and session.get(MailingList, claim.list_id) is None:
        claim_list = None  # the list was deleted: unsubscribing from everything is the safe side
    else:
        claim_list = claim.list_id
    return unsubscribe(
        session,
        claim.subscriber_id,
        list_id=claim_list,
        source=source,
        now=now,
        ip=ip,
        user_agent=user_agent,
    )


def purge_unconfirmed(session: Session, *, older_than: dt.timedelta, now: dt.datetime) -> int:
    """Delete double opt-in subscriptions left unconfirmed for longer than ``older_than`` (LAW-05).

    A subscriber left with no subscription at all never confirmed anything: they are deleted
    too, with their consent records. Returns the number of subscriptions deleted.
    """
    cutoff = now - older_than
    stale = sa.select(Subscription.subscriber_id).where(
        Subscription.status == SubscriptionStatus.UNCONFIRMED, Subscription.updated_at < cutoff
    )
    candidates = list(session.scalars(stale.distinct()))
    deleted = cast(
        sa.CursorResult[Any],
        session.execute(
            sa.delete(Subscription).where(
                Subscription.status == SubscriptionStatus.UNCONFIRMED,
                Subscription.updated_at < cutoff,
            ),
            execution_options={"synchronize_session": False},
        ),
    ).rowcount
    orphans = sa.select(Subscriber.id).where(
        Subscriber.id.in_(candidates),
        ~sa.exists().where(Subscription.subscriber_id == Subscriber.id),
    )
    orphan_ids = list(session.scalars(orphans)) if candidates else []
    if orphan_ids:
        session.execute(sa.delete(ConsentEvent).where(ConsentEvent.subscriber_id.in_(orphan_ids)))
        session.execute(
            sa.delete(Subscriber).where(Subscriber.id.in_(orphan_ids)),
            execution_options={"synchronize_session": False},
        )
    session.expire_all()
    return int(deleted)


def record_event(
    session: Session,
    subscriber_id: int,
    list_id: int | None,
    action: ConsentAction,
    source: ConsentSource,
    now: dt.datetime,
    evidence: Evidence,
) -> None:
    """Append one consent event (LAW-04): the only way this stage writes to the log (the
    one-click POST inserts ``event_values`` with a statement of its own, ``optout``)."""
    session.add(ConsentEvent(**event_values(subscriber_id, list_id, action, source, now, evidence)))


def event_values(
    subscriber_id: int,
    list_id: int | None,
    action: ConsentAction,
    source: ConsentSource,
    now: dt.datetime,
    evidence: Evidence,
) -> dict[str, Any]:
    """The columns of one consent event."""
    return {
        "subscriber_id": subscriber_id,
        "list_id": list_id,
        "action": action,
        "source": source,
        "ip": evidence.ip,
        "user_agent": (evidence.user_agent or "")[:USER_AGENT_MAX_CHARS] or None,
        "at": now,
        "form_url": evidence.form_url,
        "consent_text_version": evidence.consent_text_version,
    }
