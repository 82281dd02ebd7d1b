"""What a sign-up on a public form may do to an address. Pure: statuses in, an action out.

The form is open to anyone, so it must never be a way to change a stranger's mail: it cannot
re-activate a suppressed address (bounced, complained, blocked, erased), it mails nobody without
their confirmation who has ever left, and its answer to the visitor is the same whatever it
decided (no enumeration: the web page does not show the action).
"""

from __future__ import annotations

import enum

from newsletter.subscribers.statuses import SubscriberStatus, SubscriptionStatus

# Statuses that a form must leave alone: only an operator lifts them (``reinstate``, imports
# with --reactivate-suppressed).
SUPPRESSED = frozenset(
    {SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED, SubscriberStatus.BLOCKED}
)


class SignupAction(enum.StrEnum):
    SUBSCRIBE = "subscribe"  # confirmed at once: a single opt-in list, and never left
    CONFIRM_BY_EMAIL = "confirm_by_email"  # unconfirmed until the mailed link is followed
    NOTHING = "nothing"  # already on the list, or suppressed: no change and no mail


def decide_signup(
    *,
    erased: bool,
    subscriber_status: SubscriberStatus | None,
    subscription_status: SubscriptionStatus | None,
    double_opt_in: bool,
) -> SignupAction:
    """The action for a sign-up of an address (``None``: no such subscriber or subscription)."""
    if erased or subscriber_status in SUPPRESSED:
        return SignupAction.NOTHING
    if subscription_status is SubscriptionStatus.CONFIRMED:
        return SignupAction.NOTHING
    if subscription_status is SubscriptionStatus.UNCONFIRMED:
        return SignupAction.CONFIRM_BY_EMAIL  # asked again: send the link again
    left = (
        subscriber_status is SubscriberStatus.UNSUBSCRIBED
        or subscription_status is SubscriptionStatus.UNSUBSCRIBED
    )
    # Someone who left is asked before being mailed again, even on a single opt-in list:
    # otherwise anyone could put them back on it.
    if double_opt_in or left:
        return SignupAction.CONFIRM_BY_EMAIL
    return SignupAction.SUBSCRIBE
