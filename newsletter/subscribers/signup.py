"""Sign-ups from the public web: the form, the preferences page, and the consent they record.

``sign_up`` applies ``optin.decide_signup`` and records the consent (LAW-04): the form's page,
the version of the consent sentence shown (its text is kept in ``consent_texts``), the IP and
user agent, the time, and ``consent`` as the legal basis. When the answer is "confirm by
email", the caller queues the confirmation mail in the same transaction (the delivery stage's
``transactional.queue_confirmation``). The caller commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.db import insert_ignoring_duplicates
from newsletter.subscribers.address import normalise_email
from newsletter.subscribers.consent import Evidence, subscribe, unsubscribe
from newsletter.subscribers.models import (
    ConsentSource,
    ConsentText,
    LegalBasis,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from newsletter.subscribers.optin import SignupAction, decide_signup
from newsletter.subscribers.optout import unsubscribe_target
from newsletter.subscribers.service import is_erased

# The sentence a visitor agrees to; ``{list}`` is the list's name. Changing a word gives a new
# version (a hash of the text), so every consent keeps pointing at the words it was given to.
CONSENT_TEXT = (
    "I want to receive {list} by email at this address. I can unsubscribe at any time with "
    "the link at the end of every message."
)


@dataclass(frozen=True, slots=True)
class SignupResult:
    action: SignupAction
    subscriber_id: int | None  # None when nothing was done
    list_id: int

    @property
    def needs_confirmation(self) -> bool:
        return self.action is SignupAction.CONFIRM_BY_EMAIL and self.subscriber_id is not None


@dataclass(frozen=True, slots=True)
class PreferenceEntry:
    list_id: int
    name: str
    description: str
    status: SubscriptionStatus

    @property
    def subscribed(self) -> bool:
        return self.status is not SubscriptionStatus.UNSUBSCRIBED


@dataclass(frozen=True, slots=True)
class PreferenceChanges:
    left: tuple[int, ...]  # list ids unsubscribed from
    to_confirm: tuple[int, ...]  # list ids asked for again: a confirmation mail each
    subscriber_id: int


def consent_text_version(text: str = CONSENT_TEXT) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def consent_sentence(list_name: str, text: str = CONSENT_TEXT) -> str:
    return text.format(list=list_name)


def sign_up(
    session: Session,
    pepper: str,
    mailing_list: MailingList,
    email: str,
    *,
    name: str = "",
    evidence: Evidence,
    now: dt.datetime,
) -> SignupResult:
    """Sign ``email`` up to ``mailing_list`` from a public form; ``InvalidInput`` for a bad
    address or name. The result's action is for the caller, never for the visitor's eyes."""
    address = normalise_email(email)
    subscriber = session.scalar(sa.select(Subscriber).where(Subscriber.email == address))
    subscription = (
        session.get(Subscription, (subscriber.id, mailing_list.id)) if subscriber else None
    )
    action = decide_signup(
        erased=is_erased(session, pepper, address),
        subscriber_status=subscriber.status if subscriber else None,
        subscription_status=subscription.status if subscription else None,
        double_opt_in=mailing_list.double_opt_in,
    )
    if action is SignupAction.NOTHING:
        return SignupResult(action, None, mailing_list.id)
    if subscription is None or subscription.status is SubscriptionStatus.UNSUBSCRIBED:
        version = record_consent_text(session, CONSENT_TEXT, now)
        subscription = subscribe(
            session,
            pepper,
            mailing_list.id,
            address,
            name=name,
            source=ConsentSource.FORM,
            now=now,
            evidence=Evidence(
                ip=evidence.ip,
                user_agent=evidence.user_agent,
                form_url=evidence.form_url,
                consent_text_version=version,
            ),
            initial=SubscriptionStatus.CONFIRMED
            if action is SignupAction.SUBSCRIBE
            else SubscriptionStatus.UNCONFIRMED,
            legal_basis=LegalBasis.CONSENT,
        )
    return SignupResult(action, subscription.subscriber_id, mailing_list.id)


def record_consent_text(session: Session, text: str, now: dt.datetime) -> str:
    """Keep ``text`` under its version (once); return the version."""
    version = consent_text_version(text)
    session.execute(
        insert_ignoring_duplicates(session, ConsentText).values(
            version=version, text=text, first_used_at=now
        )
    )
    return version


def preferences(session: Session, secret: str, token: str) -> list[PreferenceEntry]:
    """Every list the token's subscriber is or was on; raises like ``unsubscribe_target``."""
    target = unsubscribe_target(session, secret, token)
    rows = session.execute(
        sa.select(MailingList, Subscription.status)
        .join(Subscription, Subscription.list_id == MailingList.id)
        .where(Subscription.subscriber_id == target.subscriber_id)
        .order_by(MailingList.name)
    )
    return [PreferenceEntry(m.id, m.name, m.description, status) for m, status in rows]


def update_preferences(
    session: Session,
    secret: str,
    token: str,
    *,
    keep: set[int],
    leave_all: bool,
    evidence: Evidence,
    now: dt.datetime,
) -> PreferenceChanges:
    """Apply the preferences form: leave the unticked lists (or all); ask again for the lists
    ticked that had been left, which goes through the same confirmation as a sign-up."""
    target = unsubscribe_target(session, secret, token)
    entries = preferences(session, secret, token)
    if leave_all:
        unsubscribe(
            session,
            target.subscriber_id,
            list_id=None,
            source=ConsentSource.FORM,
            now=now,
            ip=evidence.ip,
            user_agent=evidence.user_agent,
        )
        return PreferenceChanges(
            tuple(e.list_id for e in entries if e.subscribed), (), target.subscriber_id
        )
    left: list[int] = []
    to_confirm: list[int] = []
    subscriber = session.get(Subscriber, target.subscriber_id)
    assert subscriber is not None  # unsubscribe_target found them
    for entry in entries:
        if entry.subscribed and entry.list_id not in keep:
            unsubscribe(
                session,
                target.subscriber_id,
                list_id=entry.list_id,
                source=ConsentSource.FORM,
                now=now,
                ip=evidence.ip,
                user_agent=evidence.user_agent,
            )
            left.append(entry.list_id)
        elif not entry.subscribed and entry.list_id in keep:
            mailing_list = session.get(MailingList, entry.list_id)
            assert mailing_list is not None  # joined above
            result = sign_up(
                session, secret, mailing_list, subscriber.email, evidence=evidence, now=now
            )
            if result.needs_confirmation:
                to_confirm.append(entry.list_id)
    return PreferenceChanges(tuple(left), tuple(to_confirm), target.subscriber_id)
