"""The bounce policy as a pure function: thresholds, time travel, and what never suppresses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from newsletter.bounces.event import BounceEvent, BounceKind
from newsletter.bounces.policy import (
    MIN_SENT_FOR_PAUSE,
    BounceAction,
    CampaignRates,
    History,
    PastBounce,
    decide,
    pause_reason,
)
from newsletter.subscribers.models import SubscriberStatus

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Rules:
    soft_bounce_limit: int = 3
    soft_bounce_days: int = 7
    soft_bounce_stale_days: int = 60
    hard_bounce_pause_rate: float = 0.05
    complaint_pause_rate: float = 0.003


RULES = Rules()


def event(kind: BounceKind, status: str | None = None) -> BounceEvent:
    return BounceEvent(
        kind=kind,
        recipient="reader@example.org",
        status=status,
        diagnostic=None,
        envelope_rcpt=None,
        original_message_id=None,
        classifier="test",
    )


def soft(days_ago: float, campaign_id: int | None) -> PastBounce:
    return PastBounce(BounceKind.SOFT, NOW - dt.timedelta(days=days_ago), campaign_id)


def active(*bounces: PastBounce, reset_days_ago: float | None = None) -> History:
    reset = NOW - dt.timedelta(days=reset_days_ago) if reset_days_ago is not None else None
    return History(SubscriberStatus.ACTIVE, list(bounces), reset)


def test_hard_bounce_suppresses_at_once_with_the_code_in_the_reason() -> None:
    decision = decide(active(), event(BounceKind.HARD, "5.1.1"), RULES, NOW, campaign_id=3)
    assert decision.action is BounceAction.SUBSCRIBER_BOUNCED
    assert decision.new_status is SubscriberStatus.BOUNCED
    assert decision.delivery_bounced
    assert decision.reason == "hard bounce 5.1.1 on campaign 3"


def test_first_soft_bounce_is_only_counted() -> None:
    decision = decide(active(), event(BounceKind.SOFT, "4.2.2"), RULES, NOW, campaign_id=1)
    assert decision.action is BounceAction.COUNTED
    assert decision.new_status is None


@pytest.mark.parametrize(
    ("earlier", "campaign", "suppressed"),
    [
        # three soft bounces, but from two campaigns only
        ([soft(8, 1), soft(4, 2)], 2, False),
        # three campaigns, but all within a week
        ([soft(6, 1), soft(3, 2)], 3, False),
        # three campaigns spanning exactly seven days
        ([soft(7, 1), soft(3, 2)], 3, True),
        # three campaigns spanning more
        ([soft(14, 1), soft(7, 2)], 3, True),
        # the oldest one is stale (over 60 days): two left
        ([soft(61, 1), soft(7, 2)], 3, False),
        # no campaign known: one strike per day, and these are three days
        ([soft(9, None), soft(5, None)], None, True),
        # no campaign known, the same day twice: two strikes
        ([soft(9, None), soft(9, None)], None, False),
    ],
)
def test_soft_bounces_escalate_only_over_distinct_sends_and_days(
    earlier: list[PastBounce], campaign: int | None, suppressed: bool
) -> None:
    decision = decide(active(*earlier), event(BounceKind.SOFT), RULES, NOW, campaign_id=campaign)
    assert (decision.new_status is SubscriberStatus.BOUNCED) is suppressed
    assert decision.action is (
        BounceAction.SUBSCRIBER_BOUNCED if suppressed else BounceAction.COUNTED
    )


def test_successful_delivery_after_soft_bounces_resets_the_count() -> None:
    history = active(soft(14, 1), soft(7, 2), reset_days_ago=5)
    decision = decide(history, event(BounceKind.SOFT), RULES, NOW, campaign_id=3)
    assert decision.action is BounceAction.COUNTED
    assert "1 of 3" in decision.reason


def test_soft_bounce_limit_and_days_come_from_settings() -> None:
    rules = Rules(soft_bounce_limit=2, soft_bounce_days=1)
    decision = decide(active(soft(2, 1)), event(BounceKind.SOFT), rules, NOW, campaign_id=2)
    assert decision.new_status is SubscriberStatus.BOUNCED


@pytest.mark.parametrize(
    "kind", [BounceKind.AUTO_REPLY, BounceKind.UNKNOWN, BounceKind.UNPARSEABLE]
)
def test_not_a_bounce_does_nothing(kind: BounceKind) -> None:
    history = active(soft(14, 1), soft(7, 2))
    decision = decide(history, event(kind), RULES, NOW, campaign_id=3)
    assert decision.action is BounceAction.NONE
    assert decision.new_status is None
    assert not decision.delivery_bounced


def test_policy_rejection_never_suppresses_and_flags_the_domain() -> None:
    decision = decide(active(), event(BounceKind.POLICY, "5.7.1"), RULES, NOW, campaign_id=1)
    assert decision.action is BounceAction.NONE
    assert decision.new_status is None
    assert decision.flag_domain


def test_complaint_unsubscribes_from_every_list() -> None:
    decision = decide(active(), event(BounceKind.COMPLAINT), RULES, NOW, campaign_id=1)
    assert decision.action is BounceAction.UNSUBSCRIBED
    assert decision.new_status is SubscriberStatus.COMPLAINED
    assert decision.unsubscribe_all


def test_complaint_from_an_unsubscribed_reader_still_marks_them_complained() -> None:
    history = History(SubscriberStatus.UNSUBSCRIBED, [])
    decision = decide(history, event(BounceKind.COMPLAINT), RULES, NOW)
    assert decision.new_status is SubscriberStatus.COMPLAINED


def test_hard_bounce_of_an_already_bounced_subscriber_changes_no_status() -> None:
    history = History(SubscriberStatus.BOUNCED, [])
    decision = decide(history, event(BounceKind.HARD, "5.1.1"), RULES, NOW)
    assert decision.action is BounceAction.NONE
    assert decision.new_status is None
    assert decision.delivery_bounced


def test_unmatched_event_does_nothing() -> None:
    decision = decide(None, event(BounceKind.HARD, "5.1.1"), RULES, NOW)
    assert decision.action is BounceAction.NONE
    assert "no matching subscriber" in decision.reason


@pytest.mark.parametrize(
    ("rates", "paused"),
    [
        (CampaignRates(sent=10, hard_bounces=5, complaints=3), False),  # too few to judge
        (CampaignRates(sent=MIN_SENT_FOR_PAUSE, hard_bounces=4, complaints=0), False),
        (CampaignRates(sent=MIN_SENT_FOR_PAUSE, hard_bounces=5, complaints=0), True),
        (CampaignRates(sent=1000, hard_bounces=0, complaints=2), False),
        (CampaignRates(sent=1000, hard_bounces=0, complaints=3), True),
    ],
)
def test_campaign_pauses_at_the_rates_after_a_minimum_sample(
    rates: CampaignRates, paused: bool
) -> None:
    reason = pause_reason(rates, RULES)
    assert (reason is not None) is paused
