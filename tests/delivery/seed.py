"""Test data for campaigns: a rendered issue and lists of subscribers, committed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, select

from newsletter.config import Settings
from newsletter.content.service import import_bulletin
from newsletter.db import session_scope
from newsletter.issues.service import create_issue
from newsletter.render.service import render_issue
from newsletter.subscribers.models import (
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)

SAMPLE = Path(__file__).resolve().parents[2] / "newsletter" / "samples" / "bulletin-2025-12-11.txt"


def rendered_issue(settings: Settings) -> int:
    with session_scope(settings) as session:
        import_bulletin(session, SAMPLE.read_bytes())
        issue = create_issue(session, subject="Central Asia Weekly — 11 December 2025")
        render_issue(session, settings, issue.id)
        return issue.id


def subscribers(settings: Settings, list_name: str, emails: list[str]) -> int:
    """Create (or reuse) the list and subscribe the addresses, confirmed; return the list id."""
    with session_scope(settings) as session:
        mailing_list = MailingList(name=list_name, description="")
        session.add(mailing_list)
        session.flush()
        existing = set(
            session.scalars(select(Subscriber.email).where(Subscriber.email.in_(emails)))
        )
        new = [e for e in emails if e not in existing]
        if new:
            session.execute(
                insert(Subscriber),
                [
                    {"email": e, "name": f"Reader {e.split('@')[0].title()}", "attributes": {}}
                    for e in new
                ],
            )
        ids = {
            email: id_
            for email, id_ in session.execute(
                select(Subscriber.email, Subscriber.id).where(Subscriber.email.in_(emails))
            )
        }
        session.execute(
            insert(Subscription),
            [
                {
                    "subscriber_id": ids[e],
                    "list_id": mailing_list.id,
                    "status": SubscriptionStatus.CONFIRMED,
                }
                for e in emails
            ],
        )
        return mailing_list.id
