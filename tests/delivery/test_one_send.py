"""One send per issue and audience: held by the database, not by a look-up before an insert."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from newsletter import jobs
from newsletter.config import Settings
from newsletter.db import session_scope, utcnow
from newsletter.delivery import service
from newsletter.delivery.models import Campaign
from newsletter.errors import AlreadySent
from tests.delivery import seed
from tests.delivery.relay import Relay, running_relay
from tests.delivery.test_campaign import emails, with_relay


@pytest.fixture
def relay() -> Iterator[Relay]:
    with running_relay() as running:
        yield running


def send(settings: Settings, issue_id: int, *, again: bool = False) -> int:
    with session_scope(settings) as session:
        campaign = service.create_campaign(
            session, issue_id=issue_id, list_names=["big"], again=again
        )
        service.schedule_or_start(session, settings, campaign, utcnow())
        return campaign.id


def campaigns(settings: Settings) -> int:
    with session_scope(settings) as session:
        return session.scalar(select(func.count()).select_from(Campaign)) or 0


def test_two_sends_at_the_same_moment_make_one_campaign_and_mail_each_subscriber_once(
    committed_settings: Settings, relay: Relay
) -> None:
    settings = with_relay(committed_settings, relay)
    issue_id = seed.rendered_issue(settings)
    recipients = emails("big", 60)
    seed.subscribers(settings, "big", recipients)
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def one_send() -> None:
        start.wait()
        try:
            outcomes.append(send(settings, issue_id))
        except AlreadySent as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=one_send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    jobs.run_until_idle(settings, wait=True)

    ids = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, AlreadySent)]
    assert len(ids) == 1
    assert len(refused) == 1
    assert refused[0].campaign_id == ids[0]
    assert campaigns(settings) == 1
    assert relay.handler.copies() == dict.fromkeys(recipients, 1)


def test_a_send_that_commits_while_another_is_deciding_wins_and_the_other_is_refused(
    committed_settings: Settings,
) -> None:
    """The guard is the constraint: the loser looked before the winner committed."""
    issue_id = seed.rendered_issue(committed_settings)
    seed.subscribers(committed_settings, "big", emails("big", 3))
    loser: list[BaseException] = []
    with session_scope(committed_settings) as first:
        winner = service.create_campaign(first, issue_id=issue_id, list_names=["big"])
        first.flush()

        def second() -> None:
            try:
                send(committed_settings, issue_id)
            except AlreadySent as refused:
                loser.append(refused)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)  # it waits on the database, not on us
        winner_id = winner.id
    thread.join(timeout=30)

    assert len(loser) == 1
    assert f"campaign {winner_id}" in str(loser[0])
    assert campaigns(committed_settings) == 1


def test_a_second_send_is_refused_naming_the_first_and_again_sends_one_more_round(
    committed_settings: Settings, relay: Relay
) -> None:
    settings = with_relay(committed_settings, relay)
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "big", emails("big", 5))
    first = send(settings, issue_id)
    jobs.run_until_idle(settings, wait=True)

    with pytest.raises(AlreadySent) as refused:
        send(settings, issue_id)
    assert str(refused.value) == (
        f"issue {issue_id} was sent to this audience by campaign {first} (sent: 5 sent); "
        "`send --again` sends it once more"
    )
    with session_scope(settings) as session:
        earlier = service.earlier_send(session, issue_id=issue_id, list_names=["big"])
    assert earlier is not None
    assert (earlier.campaign_id, earlier.repeat_recipients) == (first, 5)

    second = send(settings, issue_id, again=True)
    jobs.run_until_idle(settings, wait=True)
    assert second != first
    assert relay.handler.copies() == dict.fromkeys(emails("big", 5), 2)


def test_a_campaign_cancelled_before_it_started_leaves_the_audience_free(
    committed_settings: Settings,
) -> None:
    issue_id = seed.rendered_issue(committed_settings)
    seed.subscribers(committed_settings, "big", emails("big", 2))
    with session_scope(committed_settings) as session:
        campaign = service.create_campaign(
            session,
            issue_id=issue_id,
            list_names=["big"],
            send_at=utcnow().replace(year=2099),
        )
        service.schedule_or_start(session, committed_settings, campaign, utcnow())
        service.cancel(session, campaign.id, utcnow())

    assert send(committed_settings, issue_id) > 0


def test_one_send_renders_a_changed_issue_once_and_every_step_reads_that(
    committed_settings: Settings, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.content.service import import_bulletin
    from newsletter.issues.service import create_issue
    from newsletter.render import service as render_service

    with session_scope(committed_settings) as session:  # assembled, never rendered: a draft
        import_bulletin(session, seed.SAMPLE.read_bytes())
        issue_id = create_issue(session, subject="Weekly").id
    seed.subscribers(committed_settings, "big", emails("r", 3))
    renders: list[int] = []
    real_render = render_service.render_email

    def counted(*args: object, **kwargs: object) -> object:
        renders.append(1)
        return real_render(*args, **kwargs)  # type: ignore[arg-type]

    # A spy, not a fake: the real renderer runs; the test counts how often a send asks it.
    monkeypatch.setattr(render_service, "render_email", counted)
    settings = with_relay(committed_settings, relay)

    send(settings, issue_id)
    jobs.run_until_idle(settings, wait=True)

    assert len(renders) == 1
    assert relay.handler.copies() == dict.fromkeys(emails("r", 3), 1)
