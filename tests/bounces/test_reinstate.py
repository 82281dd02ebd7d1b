"""Reinstatement: a person makes a suppressed subscriber active again, audited."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from newsletter.bounces.reinstate import reinstate
from newsletter.config import Settings
from newsletter.errors import InvalidTransition, NotFound
from newsletter.subscribers.statuses import SubscriberStatus
from tests.bounces.test_processing import NOW, World, audit, dsn


@pytest.fixture
def world(session: Session, settings: Settings) -> World:
    return World(session, settings)


def test_reinstate_makes_the_subscriber_active_and_writes_the_audit(
    world: World, session: Session
) -> None:
    reader = world.subscriber("back@example.org")
    world.process(dsn(reader.email), world.verp(world.delivery(world.campaign(), reader)))
    change = reinstate(session, "Back@Example.org", NOW, by="editor")
    session.refresh(reader)
    assert reader.status is SubscriberStatus.ACTIVE
    assert (change.old, change.new, change.by) == (
        SubscriberStatus.BOUNCED,
        SubscriberStatus.ACTIVE,
        "editor",
    )
    assert [c.new for c in audit(session, reader)] == [
        SubscriberStatus.BOUNCED,
        SubscriberStatus.ACTIVE,
    ]
    with pytest.raises(InvalidTransition):
        reinstate(session, reader.email, NOW, by="editor")
    with pytest.raises(NotFound):
        reinstate(session, "nobody@example.org", NOW, by="editor")
