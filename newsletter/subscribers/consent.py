"""Giving and withdrawing consent: subscribe, confirm (double opt-in), unsubscribe.

Each change writes an append-only ``ConsentEvent`` beside the status it changes (LAW-04); a
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

from newsletter.errors import InvalidInput, LinkExpired, NotFound
from newsletter.subscribers.address import check_name, erasure_hash, normalise_email
from newsletter.subscribers.importer import ERASED_ERROR
from newsletter.subscribers.models import (
    SUBSCRIPTION_TRANSITIONS,
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
from newsletter.subscribers.tokens import read_confirm_token, read_unsubscribe_token

USER_AGENT_MAX_CHARS = 512  # a browser's is ~150; anything longer is noise, not evidence
# The statuses from which a subscription may become unsubscribed (its transition table).
_LEAVABLE = [
    status
    for status, targets in SUBSCRIPTION_TRANSITIONS.items()
    if SubscriptionStatus.UNSUBSCRIBED in targets
]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where and how a consent was given, recorded with it (LAW-04); all optional."""

    ip: str | None = None
    user_agent: str | None = None
    form_url: str | None = None  # the page of the form, never with a token in it
    consent_text_version: str | None = None  # a ``ConsentText.version``


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    """What an unsubscribe link points at, read before anything changes."""

    subscriber_id: int
    list_id: int | None  # None: every list
    list_name: str | None
    already_unsubscribed: bool


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
    mailing_list = session.get(MailingList, list_id)
    if mailing_list is None:
        raise NotFound(f"no list with id {list_id}")
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
    _record(session, subscriber.id, list_id, ConsentAction.SUBSCRIBE, source, now, evidence)
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
        subscriber.transition(SubscriberStatus.ACTIVE)
    _record(
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
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    query = sa.select(Subscription).where(
        Subscription.subscriber_id == subscriber_id,
        Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
    )
    if list_id is not None:
        if session.get(MailingList, list_id) is None:
            raise NotFound(f"no list with id {list_id}")
        query = query.where(Subscription.list_id == list_id)
    changed = False
    for subscription in session.scalars(query):
        subscription.transition(SubscriptionStatus.UNSUBSCRIBED, now)
        changed = True
    if list_id is None and subscriber.status is SubscriberStatus.ACTIVE:
        subscriber.transition(SubscriberStatus.UNSUBSCRIBED)
        changed = True
    if changed:
        _record(
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


def unsubscribe_one_click(
    session: Session,
    secret: str,
    token: str,
    *,
    now: dt.datetime,
    ip: str | None = None,
    user_agent: str | None = None,
) -> UnsubscribeTarget:
    """The RFC 8058 one-click POST: leave the token's list at once; the target it had.

    Raises like ``unsubscribe_target``. This is the one request a mailbox provider sends for
    every "unsubscribe" press, so its common case is one UPDATE and one INSERT: the UPDATE
    applies the one transition of ``SUBSCRIPTION_TRANSITIONS`` that leads to ``unsubscribed``
    (from the statuses that allow it), the INSERT is the withdrawal's consent event. Anything
    else (a token for every list, a list left already, a deleted list, an unknown subscriber)
    takes the general path.
    """
    claim = read_unsubscribe_token(secret, token)
    changed = None
    if claim.list_id is not None:
        changed = session.execute(
            sa.update(Subscription)
            .where(
                Subscription.subscriber_id == claim.subscriber_id,
                Subscription.list_id == claim.list_id,
                Subscription.status.in_(_LEAVABLE),
            )
            .values(status=SubscriptionStatus.UNSUBSCRIBED, updated_at=now)
            .returning(Subscription.list_id)
            .execution_options(synchronize_session=False)
        ).first()
    if changed is None:
        target = unsubscribe_target(session, secret, token)
        unsubscribe(
            session,
            target.subscriber_id,
            list_id=target.list_id,
            source=ConsentSource.EMAIL,
            now=now,
            ip=ip,
            user_agent=user_agent,
        )
        return target
    _record(
        session,
        claim.subscriber_id,
        claim.list_id,
        ConsentAction.UNSUBSCRIBE,
        ConsentSource.EMAIL,
        now,
        Evidence(ip=ip, user_agent=user_agent),
    )
    session.flush()
    name = session.scalar(sa.select(MailingList.name).where(MailingList.id == claim.list_id))
    return UnsubscribeTarget(claim.subscriber_id, claim.list_id, name, already_unsubscribed=False)


def unsubscribe_target(session: Session, secret: str, token: str) -> UnsubscribeTarget:
    """What an unsubscribe link would do, changing nothing (the page before the button).

    ``InvalidInput`` for a forged or tampered token, ``NotFound`` for a genuine one whose
    subscriber no longer exists (erased): neither may change anything. A token for a deleted
    list stands for every list, the safe side.
    """
    claim = read_unsubscribe_token(secret, token)
    subscriber = session.get(Subscriber, claim.subscriber_id)
    if subscriber is None:
        raise NotFound("this unsubscribe link belongs to nobody we know")
    mailing_list = session.get(MailingList, claim.list_id) if claim.list_id is not None else None
    still = sa.select(Subscription.list_id).where(
        Subscription.subscriber_id == subscriber.id,
        Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
    )
    if mailing_list is not None:
        still = still.where(Subscription.list_id == mailing_list.id)
        already = session.scalar(still.limit(1)) is None
    else:
        already = (
            subscriber.status is not SubscriberStatus.ACTIVE
            and session.scalar(still.limit(1)) is None
        )
    return UnsubscribeTarget(
        subscriber_id=subscriber.id,
        list_id=mailing_list.id if mailing_list is not None else None,
        list_name=mailing_list.name if mailing_list is not None else None,
        already_unsubscribed=already,
    )


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


def _record(
    session: Session,
    subscriber_id: int,
    list_id: int | None,
    action: ConsentAction,
    source: ConsentSource,
    now: dt.datetime,
    evidence: Evidence,
) -> None:
    session.add(
        ConsentEvent(
            subscriber_id=subscriber_id,
            list_id=list_id,
            action=action,
            source=source,
            ip=evidence.ip,
            user_agent=(evidence.user_agent or "")[:USER_AGENT_MAX_CHARS] or None,
            at=now,
            form_url=evidence.form_url,
            consent_text_version=evidence.consent_text_version,
        )
    )
