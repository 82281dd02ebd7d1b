"""The send loop on the injected clock and the in-memory transport: pause, cancel, rate limit
and back-off, with no real time passing and no wall-clock assertion.

Sending one message takes ``SEND_SECONDS`` on the test's clock; the rate limiter's sleeps move
that clock too. So "a pause takes effect within a second" is counted in messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from newsletter.config import Settings
from newsletter.db import get_engine, session_factory, session_scope, utcnow
from newsletter.delivery import service
from newsletter.delivery.context import SendContext
from newsletter.delivery.models import CampaignStatus, DeliveryStatus
from newsletter.delivery.ratelimit import MemoryRateLimiter
from newsletter.delivery.sender import CONTROL_INTERVAL, send_batch
from newsletter.delivery.transports.memory import MemoryTransport
from tests.delivery import seed
from tests.delivery.clock import ManualClock
from tests.delivery.test_campaign import campaign_status, emails, ledger, start

SEND_SECONDS = 0.05  # what one message takes on the test's clock
# Messages that may still go out after a pause or cancel: one control interval's worth, plus
# the one being sent when it is seen.
AFTER_A_STOP = int(CONTROL_INTERVAL.total_seconds() / SEND_SECONDS) + 1


def memory_context(
    settings: Settings, transport: MemoryTransport, clock: ManualClock
) -> SendContext:
    return SendContext(
        settings=settings,
        engine=get_engine(settings),
        sessions=session_factory(settings).begin,
        transport=transport,
        limiter=MemoryRateLimiter(clock=clock.monotonic, sleep=clock.sleep),
        owner="test:1:loop",
        templates=lambda session, campaign_id: service.campaign_message(
            session, settings, campaign_id
        ),
        clock=clock.now,
    )


def send_all(ctx: SendContext, clock: ManualClock) -> None:
    """What the embedded loop does, with the clock moved to each next due time."""
    while True:
        result = send_batch(ctx, 0)
        if result.claimed:
            continue
        if result.next_due_at is None:
            return
        clock.move_to(result.next_due_at)


def taking(clock: ManualClock, also: Callable[[int], None] | None = None) -> MemoryTransport:
    """A transport on which each message takes SEND_SECONDS; ``also`` sees how many went."""
    transport = MemoryTransport()

    def on_send(_recipient: str) -> None:
        clock.advance(SEND_SECONDS)
        if also is not None:
            also(len(transport.sent))

    transport.on_send = on_send
    return transport


def test_a_pause_takes_effect_within_one_control_interval_and_resume_finishes(
    committed_settings: Settings,
) -> None:
    clock = ManualClock()
    issue_id = seed.rendered_issue(committed_settings)
    recipients = emails("p", 120)
    seed.subscribers(committed_settings, "weekly", recipients)
    campaign_id = start(committed_settings, issue_id, ["weekly"])
    paused_after: list[int] = []

    def pause_at_the_tenth(already: int) -> None:
        if already == 10 and not paused_after:
            with session_scope(committed_settings) as session:
                service.pause(session, campaign_id, now=clock.now())
            paused_after.append(already)

    transport = taking(clock, pause_at_the_tenth)
    ctx = memory_context(committed_settings, transport, clock)

    send_all(ctx, clock)

    assert campaign_status(committed_settings, campaign_id) == CampaignStatus.PAUSED
    sent_while_pausing = len(transport.sent) - paused_after[0]
    assert 0 < sent_while_pausing <= AFTER_A_STOP
    statuses = list(ledger(committed_settings, campaign_id).values())
    assert statuses.count(DeliveryStatus.SENT) == len(transport.sent)
    assert statuses.count(DeliveryStatus.PENDING) == len(recipients) - len(transport.sent)

    with session_scope(committed_settings) as session:
        service.resume(session, committed_settings, campaign_id, clock.now())
    send_all(ctx, clock)

    assert sorted(m.recipient for m in transport.sent) == recipients
    assert campaign_status(committed_settings, campaign_id) == CampaignStatus.SENT


def test_a_cancel_stops_the_campaign_for_good_within_one_control_interval(
    committed_settings: Settings,
) -> None:
    clock = ManualClock()
    issue_id = seed.rendered_issue(committed_settings)
    recipients = emails("c", 100)
    seed.subscribers(committed_settings, "weekly", recipients)
    campaign_id = start(committed_settings, issue_id, ["weekly"])
    cancelled_after: list[int] = []

    def cancel_at_the_fifth(already: int) -> None:
        if already == 5 and not cancelled_after:
            with session_scope(committed_settings) as session:
                service.cancel(session, campaign_id, clock.now())
            cancelled_after.append(already)

    transport = taking(clock, cancel_at_the_fifth)
    ctx = memory_context(committed_settings, transport, clock)

    send_all(ctx, clock)
    send_all(ctx, clock)  # and nothing more on a second run

    assert campaign_status(committed_settings, campaign_id) == CampaignStatus.CANCELLED
    assert 0 < len(transport.sent) - cancelled_after[0] <= AFTER_A_STOP
    statuses = list(ledger(committed_settings, campaign_id).values())
    assert DeliveryStatus.SENDING not in statuses
    assert statuses.count(DeliveryStatus.SENT) == len(transport.sent)
    assert statuses.count(DeliveryStatus.PENDING) == len(recipients) - len(transport.sent)


def test_the_rate_limit_holds_within_ten_percent(committed_settings: Settings) -> None:
    clock = ManualClock()
    settings = dataclasses.replace(committed_settings, rate_limit=20.0)
    issue_id = seed.rendered_issue(settings)
    seed.subscribers(settings, "weekly", emails("rl", 400))
    start(settings, issue_id, ["weekly"])
    sent_at: list[float] = []
    transport = MemoryTransport(on_send=lambda _r: sent_at.append(clock.monotonic()))

    send_all(memory_context(settings, transport, clock), clock)

    first = sent_at[0] + 1.0  # a steady window, not the start
    in_window = sum(1 for t in sent_at if first <= t < first + 10.0)
    assert 180 <= in_window <= 220
    assert len(transport.sent) == 400


def test_a_domain_that_says_slow_down_waits_one_step_of_the_schedule_each_time(
    committed_settings: Settings,
) -> None:
    clock = ManualClock()
    settings = dataclasses.replace(committed_settings, retry_schedule=(60, 300, 1800))
    issue_id = seed.rendered_issue(settings)
    others = emails("o", 5)
    seed.subscribers(settings, "weekly", ["x@slow.example", *others])
    campaign_id = start(settings, issue_id, ["weekly"])
    tries: list[float] = []
    transport = MemoryTransport()
    transport.answer("slow.example", 421, "4.7.0 slow down")

    def on_send(recipient: str) -> None:
        if recipient.endswith("@slow.example"):
            tries.append(clock.monotonic())
            if len(tries) == 3:
                transport.forget("slow.example")  # the third try is accepted

    transport.on_send = on_send

    send_all(memory_context(settings, transport, clock), clock)

    assert len(tries) == 3
    assert tries[1] - tries[0] >= 60  # the first step of the schedule
    assert tries[2] - tries[1] >= 300  # then the second
    assert sorted(m.recipient for m in transport.sent) == sorted(["x@slow.example", *others])
    assert campaign_status(settings, campaign_id) == CampaignStatus.SENT
    assert utcnow() < clock.now()  # minutes passed on the test's clock, not in reality
