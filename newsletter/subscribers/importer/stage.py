"""The rows a batch stages for writing: their columns and how a CSV row becomes one. Pure.

A batch loads the rows that need work into a temporary table, ``subscriber_import_stage``
(private to the connection, not part of the schema: Alembic never sees it), and inserts into
the real tables from it. Each database writer (``postgresql``, ``sqlite``) creates that table
with these columns in this order; ``copy`` writes the same rows in COPY's text format.
"""

from __future__ import annotations

from typing import Any

from newsletter.subscribers.csvfile import Row
from newsletter.subscribers.statuses import SubscriberStatus, SubscriptionStatus

STAGE_COLUMNS = (
    "email",
    "subscriber_id",  # None: a new subscriber
    "name",
    "attributes",  # JSON text
    "status",
    "is_new",
    "subscription_status",  # None: no subscription to create
    "consent",  # the subscription carries the import's consent proof / a consent event
)

StageRow = tuple[Any, ...]  # the values of STAGE_COLUMNS, in that order


def staged(
    row: Row,
    attributes: str,
    subscriber_id: int | None,
    *,
    subscription: SubscriptionStatus | None,
    consent: bool,
) -> StageRow:
    return (
        row.email,
        subscriber_id,
        row.name,
        attributes,
        row.status.value,
        subscriber_id is None,
        None if subscription is None else subscription.value,
        consent,
    )


def new_subscriber(row: Row, attributes: str, initial: SubscriptionStatus) -> StageRow:
    """The stage row of an address not known yet, subscribed with ``initial``.

    Only an active row whose file does not unsubscribe it carries consent: a suppression the
    file brings along (``status`` bounced, ``subscription_status`` unsubscribed) is kept as
    such, with no consent proof.
    """
    subscription = SubscriptionStatus.UNSUBSCRIBED if row.unsubscribed else initial
    return staged(
        row,
        attributes,
        None,
        subscription=subscription,
        consent=subscription is not SubscriptionStatus.UNSUBSCRIBED
        and row.status is SubscriberStatus.ACTIVE,
    )
