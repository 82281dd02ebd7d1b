"""What `campaign status` computes: the rate of the last 30 s, an ETA only while sending, and
progress told as each recipient is done."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from newsletter import jobs
from newsletter.config import Settings
from newsletter.db import session_scope, utcnow
from newsletter.delivery import report, service
from newsletter.delivery.models import Delivery, DeliveryStatus
from tests.delivery import seed
from tests.delivery.relay import RelayHandler, running_relay
from tests.delivery.test_campaign import emails, start, with_relay


def test_the_eta_follows_the_last_thirty_seconds_and_is_none_unless_sending(
    committed_settings: Settings,
) -> None:
    issue_id = seed.rendered_issue(committed_settings)
    seed.subscribers(committed_settings, "weekly", emails("e", 120))
    campaign_id = start(committed_settings, issue_id, ["weekly"])
    now = utcnow()
    with session_scope(committed_settings) as session:
        ids = list(session.scalars(select(Delivery.id).order_by(Delivery.id)))
        for delivery_ids, ago in ((ids[:30], 10), (ids[30:60], 50)):  # 30 recent, 30 older
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(delivery_ids))
                .values(status=DeliveryStatus.SENT, sent_at=now - dt.timedelta(seconds=ago))
            )

    with session_scope(committed_settings) as session:
        sending = report.report(session, campaign_id, now)
        service.pause(session, campaign_id, now=now)
        paused = report.report(session, campaign_id, now)

    assert sending.rate_per_second == 1.0  # 30 in the last 30 s; the older 30 do not count
    assert sending.eta_seconds == 60.0  # 60 still to send at 1 a second
    assert (paused.rate_per_second, paused.eta_seconds) == (0.0, None)
    assert [w.kind for w in paused.waiting] == [report.WaitKind.PAUSE]


def test_progress_is_told_as_each_recipient_is_done_not_when_the_batch_ends(
    committed_settings: Settings,
) -> None:
    with running_relay(RelayHandler()) as relay:
        settings = with_relay(committed_settings, relay, batch_size=100)
        issue_id = seed.rendered_issue(settings)
        seed.subscribers(settings, "weekly", emails("g", 20))
        start(settings, issue_id, ["weekly"])
        accepted_when_told: list[int] = []

        jobs.run_until_idle(
            settings,
            wait=True,
            progress=lambda: accepted_when_told.append(len(relay.handler.accepted)),
        )

    assert accepted_when_told == list(range(1, 21))  # one batch, told twenty times
