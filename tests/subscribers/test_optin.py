"""What a public sign-up may do: the rules of ``optin.decide_signup``, one test per rule."""

from __future__ import annotations

import pytest

from newsletter.subscribers.models import SubscriberStatus, SubscriptionStatus
from newsletter.subscribers.optin import SignupAction, decide_signup


def decide(
    *,
    erased: bool = False,
    subscriber: SubscriberStatus | None = None,
    subscription: SubscriptionStatus | None = None,
    double_opt_in: bool = False,
) -> SignupAction:
    return decide_signup(
        erased=erased,
        subscriber_status=subscriber,
        subscription_status=subscription,
        double_opt_in=double_opt_in,
    )


def test_a_new_address_on_a_single_opt_in_list_is_subscribed_at_once() -> None:
    assert decide() is SignupAction.SUBSCRIBE


def test_a_new_address_on_a_double_opt_in_list_must_confirm_by_email() -> None:
    assert decide(double_opt_in=True) is SignupAction.CONFIRM_BY_EMAIL


def test_a_pending_address_gets_its_link_again() -> None:
    pending = decide(
        subscriber=SubscriberStatus.ACTIVE, subscription=SubscriptionStatus.UNCONFIRMED
    )
    assert pending is SignupAction.CONFIRM_BY_EMAIL


def test_an_address_already_on_the_list_changes_nothing() -> None:
    known = decide(subscriber=SubscriberStatus.ACTIVE, subscription=SubscriptionStatus.CONFIRMED)
    assert known is SignupAction.NOTHING


@pytest.mark.parametrize(
    ("subscriber", "subscription"),
    [
        (SubscriberStatus.UNSUBSCRIBED, None),
        (SubscriberStatus.ACTIVE, SubscriptionStatus.UNSUBSCRIBED),
    ],
)
def test_someone_who_left_must_confirm_even_on_a_single_opt_in_list(
    subscriber: SubscriberStatus, subscription: SubscriptionStatus | None
) -> None:
    assert decide(subscriber=subscriber, subscription=subscription) is SignupAction.CONFIRM_BY_EMAIL


@pytest.mark.parametrize(
    "status", [SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED, SubscriberStatus.BLOCKED]
)
@pytest.mark.parametrize("double_opt_in", [False, True])
def test_a_suppressed_address_is_never_touched(
    status: SubscriberStatus, double_opt_in: bool
) -> None:
    assert decide(subscriber=status, double_opt_in=double_opt_in) is SignupAction.NOTHING


def test_an_erased_address_is_never_added_again() -> None:
    assert decide(erased=True, double_opt_in=True) is SignupAction.NOTHING
