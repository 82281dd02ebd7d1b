"""Stage rows in PostgreSQL's COPY text format, written by the reader thread. Pure.

A first import is all new subscribers, so the reader thread writes the batch's stage rows as
COPY text while the database is busy with the batch before, and the writer only sends that
string (``batch.import_batch`` checks that nothing in the batch was known or erased).
"""

from __future__ import annotations

import re

from newsletter.subscribers.csvfile import Row
from newsletter.subscribers.statuses import SubscriberStatus, SubscriptionStatus

_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """``value`` escaped for COPY's text format (backslash, tab, line breaks)."""
    # A search first: most values need no escape, and the search is cheaper than translate.
    if _SPECIAL.search(value) is None:
        return value
    return value.translate(_ESCAPES)


def new_subscriber_line(row: Row, attributes: str, initial: SubscriptionStatus) -> str:
    """``stage.new_subscriber`` as one COPY line, written out: the reader's work for every row,
    so it builds the line directly instead of a tuple to encode cell by cell."""
    subscription = SubscriptionStatus.UNSUBSCRIBED if row.unsubscribed else initial
    consent = subscription is not SubscriptionStatus.UNSUBSCRIBED and (
        row.status is SubscriberStatus.ACTIVE
    )
    return (
        f"{copy_text(row.email)}\t\\N\t{copy_text(row.name)}\t{copy_text(attributes)}\t"
        f"{row.status.value}\tt\t{subscription.value}\t{'t' if consent else 'f'}\n"
    )
