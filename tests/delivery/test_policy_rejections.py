"""A relay block list, a throttling mailbox, a full one: nobody is bounced for our reputation.

Real aiosmtpd relay, real database (SQLite and PostgreSQL), the embedded send loop with the
bounce stage's rejection handler wired in (``sending.send_context``).
"""

from __future__ import annotations

from sqlalchemy import select

from newsletter import jobs, sending
from newsletter.bounces.event import BounceKind, Evidence
from newsletter.bounces.models import BounceEventRecord
from newsletter.bounces.policy import BounceAction
from newsletter.config import Settings
from newsletter.db import session_scope, utcnow
from newsletter.delivery import service
from newsletter.delivery.models import (
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    DomainHold,
    DomainThrottle,
)
from newsletter.delivery.verdict import Verdict
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.conftest import Run
from tests.delivery import seed
from tests.delivery.relay import RelayHandler, running_relay
from tests.delivery.test_campaign import campaign_status, emails, ledger, start, with_relay

BLOCKED = "550 5.7.1 Service unavailable; client host [192.0.2.25] blocked using a block list"


def subscriber_statuses(settings: Settings, addresses: list[str]) -> set[SubscriberStatus]:
    with session_scope(settings) as session:
        return set(
            session.scalars(select(Subscriber.status).where(Subscriber.email.in_(addresses)))
        )


def test_a_block_list_at_one_domain_holds_it_and_resume_delivers_each_held_recipient_once(
    run_cli: Run, committed_settings: Settings
) -> None:
    block = {"on": True}
    handler = RelayHandler(
        rules=[
            lambda rcpt, _before: (
                BLOCKED if block["on"] and rcpt.endswith("@blocked.example") else None
            )
        ]
    )
    with running_relay(handler) as relay:
        settings = with_relay(committed_settings, relay, batch_size=15, retry_schedule=(1, 1, 1))
        issue_id = seed.rendered_issue(settings)
        held = emails("b", 25, "blocked.example")
        others = emails("o", 40, "example.org")
        interleaved = [a for pair in zip(held, others, strict=False) for a in pair]
        seed.subscribers(settings, "weekly", interleaved + others[len(held) :])
        campaign_id = start(settings, issue_id, ["weekly"])

        jobs.run_until_idle(settings, wait=True)

        # The other domain got everything; the blocked one stopped after ten rejections.
        assert relay.handler.copies() == dict.fromkeys(others, 1)
        assert sum(handler.tries[a] for a in held) == settings.domain_policy_pause_after
        assert subscriber_statuses(settings, held) == {SubscriberStatus.ACTIVE}
        statuses = ledger(settings, campaign_id)
        assert {statuses[a] for a in held} <= {DeliveryStatus.PENDING, DeliveryStatus.DEFERRED}
        status = run_cli("campaign", "status", str(campaign_id), "--json").json()
        assert status["status"] == "paused"
        assert "blocked.example" in status["reason"]
        assert "5.7.1" in status["reply"]
        assert status["since"] is not None
        [hold] = status["held_domains"]
        assert (hold["domain"], hold["waiting"]) == ("blocked.example", 25)
        assert hold["reply"].startswith("RCPT TO: 550 5.7.1")
        with session_scope(settings) as session:
            verdicts = set(
                session.scalars(
                    select(Delivery.verdict).where(Delivery.domain == "blocked.example")
                )
            )
            events = list(session.scalars(select(BounceEventRecord)))
        assert verdicts == {None, Verdict.POLICY}
        assert {(e.kind, e.evidence, e.action) for e in events} == {
            (BounceKind.POLICY, Evidence.SMTP, BounceAction.NONE)
        }

        block["on"] = False
        resumed = run_cli(
            "campaign", "resume", str(campaign_id), "--wait", "--json",
            env={"NEWSLETTER_SMTP_URL": relay.env_url},
        )  # fmt: skip

    assert resumed.exit_code == 0, resumed.stderr
    assert "domains released: blocked.example" in resumed.stderr
    assert relay.handler.copies() == dict.fromkeys(held + others, 1)
    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT
    assert set(ledger(settings, campaign_id).values()) == {DeliveryStatus.SENT}
    with session_scope(settings) as session:
        assert session.scalars(select(DomainHold)).all() == []


def test_a_block_list_everywhere_pauses_the_whole_campaign(committed_settings: Settings) -> None:
    block = {"on": True}
    handler = RelayHandler(rules=[lambda _rcpt, _before: BLOCKED if block["on"] else None])
    with running_relay(handler) as relay:
        settings = with_relay(committed_settings, relay, batch_size=50)
        issue_id = seed.rendered_issue(settings)
        # Five domains, interleaved: none reaches ten in a row before the campaign's limit,
        # 20 policy rejections (2%) among its last 1,000 attempts.
        recipients = [f"r{n:03d}@d{n % 5}.example" for n in range(100)]
        seed.subscribers(settings, "weekly", recipients)
        campaign_id = start(settings, issue_id, ["weekly"])

        jobs.run_until_idle(settings, wait=True)

        with session_scope(settings) as session:
            campaign = service.get_campaign(session, campaign_id)
            assert campaign.status is CampaignStatus.PAUSED
            assert campaign.status_reason is not None
            assert "20 policy rejections" in campaign.status_reason
            assert campaign.status_reply is not None
            assert "blocked using a block list" in campaign.status_reply
            assert campaign.status_since is not None
        tried = sum(handler.tries.values())
        assert 20 <= tried < len(recipients)  # stopped within one message of the limit
        assert relay.handler.copies() == {}
        assert subscriber_statuses(settings, recipients) == {SubscriberStatus.ACTIVE}

        block["on"] = False
        with session_scope(settings) as session:
            resumed = service.resume(session, settings, campaign_id)
            assert resumed.requeued == tried
        jobs.run_until_idle(settings, wait=True)

    assert relay.handler.copies() == dict.fromkeys(recipients, 1)
    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT


def test_one_mailbox_throttling_forever_is_retried_alone_and_its_domain_goes_on(
    committed_settings: Settings,
) -> None:
    stubborn = "stubborn@example.org"
    handler = RelayHandler(
        rules=[lambda rcpt, _before: "451 4.7.1 Try again later" if rcpt == stubborn else None]
    )
    with running_relay(handler) as relay:
        settings = with_relay(committed_settings, relay, retry_schedule=(0, 0, 0))
        issue_id = seed.rendered_issue(settings)
        fine = emails("f", 50)
        seed.subscribers(settings, "weekly", [*fine[:25], stubborn, *fine[25:]])
        campaign_id = start(settings, issue_id, ["weekly"])

        first_pass = sending.run_batch(settings, 0)

        assert first_pass.claimed == 51
        assert relay.handler.copies() == dict.fromkeys(fine, 1)
        with session_scope(settings) as session:
            row = session.scalars(
                select(Delivery).join(Subscriber).where(Subscriber.email == stubborn)
            ).one()
            assert (row.status, row.attempts, row.verdict) == (
                DeliveryStatus.DEFERRED,
                1,
                Verdict.THROTTLED,
            )
            assert session.scalars(select(DomainThrottle)).all() == []  # one bad mailbox

        jobs.run_until_idle(settings, wait=True)

    assert ledger(settings, campaign_id)[stubborn] == DeliveryStatus.FAILED
    assert handler.tries[stubborn] == 1 + len(settings.retry_schedule)
    with session_scope(settings) as session:
        attempts = session.scalar(
            select(Delivery.attempts).join(Subscriber).where(Subscriber.email == stubborn)
        )
    assert attempts == 1 + len(settings.retry_schedule)
    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT


def test_throttling_replies_to_several_recipients_back_their_domain_off(
    committed_settings: Settings,
) -> None:
    handler = RelayHandler(
        rules=[
            lambda rcpt, before: (
                "451 4.7.1 Rate limited, slow down"
                if rcpt.endswith("@slow.example") and before == 0
                else None
            )
        ]
    )
    with running_relay(handler) as relay:
        settings = with_relay(committed_settings, relay, retry_schedule=(1, 1))
        issue_id = seed.rendered_issue(settings)
        slow = emails("s", 6, "slow.example")
        seed.subscribers(settings, "weekly", slow + emails("f", 4))
        campaign_id = start(settings, issue_id, ["weekly"])

        sending.run_batch(settings, 0)

        after = settings.domain_throttle_after
        # The first ``after`` were told to slow down; the rest of the domain waited its turn.
        assert [handler.tries[a] for a in slow] == [1] * after + [0] * (len(slow) - after)
        assert relay.handler.copies() == dict.fromkeys(emails("f", 4), 1)
        with session_scope(settings) as session:
            throttle = session.get(DomainThrottle, "slow.example")
            assert throttle is not None
            assert throttle.until > utcnow()

        jobs.run_until_idle(settings, wait=True)

    assert relay.handler.copies() == dict.fromkeys(slow + emails("f", 4), 1)
    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT


def test_a_full_mailbox_at_rcpt_counts_as_a_soft_bounce_not_a_hard_one(
    committed_settings: Settings,
) -> None:
    full = "full@example.org"
    handler = RelayHandler(
        rules=[
            lambda rcpt, _b: "552 5.2.2 <full@example.org>: mailbox full" if rcpt == full else None
        ]
    )
    with running_relay(handler) as relay:
        settings = with_relay(committed_settings, relay, retry_schedule=(0,))
        issue_id = seed.rendered_issue(settings)
        seed.subscribers(settings, "weekly", [full, *emails("f", 3)])
        campaign_id = start(settings, issue_id, ["weekly"])

        jobs.run_until_idle(settings, wait=True)

    assert ledger(settings, campaign_id)[full] == DeliveryStatus.FAILED  # retried, never bounced
    assert handler.tries[full] == 2
    assert subscriber_statuses(settings, [full]) == {SubscriberStatus.ACTIVE}
    with session_scope(settings) as session:
        events = session.scalars(select(BounceEventRecord)).all()
        # Two attempts of one campaign: two events, one soft bounce for the policy's count.
        assert {(e.kind, e.status, e.evidence) for e in events} == {
            (BounceKind.SOFT, "5.2.2", Evidence.SMTP)
        }
        assert [e.action for e in events] == [BounceAction.COUNTED, BounceAction.COUNTED]
