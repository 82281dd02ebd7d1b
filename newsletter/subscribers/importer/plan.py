"""What each row of a batch does to the subscribers already known, decided row by row.

Only the addresses already in the database are read (one SELECT per batch); new addresses go
to the stage as they are. A suppressed subscriber (not ``active``, or unsubscribed from this
list) stays suppressed and is an error row, unless the import was asked to reactivate them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import InstrumentedAttribute, Session

from newsletter.subscribers.csvfile import Row, RowError
from newsletter.subscribers.importer.options import ImportMode, ImportOptions
from newsletter.subscribers.importer.stage import StageRow, staged
from newsletter.subscribers.models import Subscriber, Subscription, Suppression
from newsletter.subscribers.statuses import SubscriberStatus, SubscriptionStatus


@dataclass(slots=True)
class Plan:
    """What a batch does to the known subscribers; the new ones are ``new_rows``."""

    staged: list[StageRow] = field(default_factory=list)  # known rows for the stage
    new_rows: list[Row] = field(default_factory=list)  # rows of new subscribers
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    field_updates: list[dict[str, Any]] = field(default_factory=list)
    # Suppressed subscribers made active again: id -> their status before (for the audit).
    reactivate: dict[int, SubscriberStatus] = field(default_factory=dict)
    resubscribe: list[int] = field(default_factory=list)  # subscriber ids


def plan_batch(
    session: Session,
    list_id: int,
    unique: dict[str, Row],
    encoded: dict[str, str],
    options: ImportOptions,
    initial: SubscriptionStatus,
) -> Plan:
    """Decide, row by row, what the batch does; only the addresses already known are read."""
    plan = Plan()
    reactivate = options.reactivate_suppressed
    existing = (
        {
            r.email: r
            for r in session.execute(
                sa.select(
                    Subscriber.id,
                    Subscriber.email,
                    Subscriber.name,
                    Subscriber.attributes,
                    Subscriber.status,
                    Subscription.status.label("subscription_status"),
                )
                .outerjoin(
                    Subscription,
                    sa.and_(
                        Subscription.subscriber_id == Subscriber.id, Subscription.list_id == list_id
                    ),
                )
                .where(one_of(session, Subscriber.email, unique))
            )
        }
        if unique
        else {}
    )

    for email, row in unique.items():
        known = existing.get(email)
        if known is None:
            plan.new_rows.append(row)  # staged by the caller (ready-made COPY rows, maybe)
            continue

        changed = reactivated = False
        if known.status is not SubscriberStatus.ACTIVE:
            if not reactivate:
                plan.errors.append(RowError(row.line, suppressed_error(known.status)))
                continue
            plan.reactivate[known.id] = known.status
            changed = reactivated = True
        subscription_status = known.subscription_status
        if subscription_status is SubscriptionStatus.UNSUBSCRIBED:
            if not reactivate:
                plan.errors.append(RowError(row.line, suppressed_error(None)))
                continue
            plan.resubscribe.append(known.id)
            plan.staged.append(
                staged(row, encoded[email], known.id, subscription=None, consent=True)
            )
            changed = True
        elif subscription_status is None:
            subscription = SubscriptionStatus.UNSUBSCRIBED if row.unsubscribed else initial
            plan.staged.append(
                staged(
                    row,
                    encoded[email],
                    known.id,
                    subscription=subscription,
                    consent=subscription is not SubscriptionStatus.UNSUBSCRIBED,
                )
            )
            changed = True
        elif reactivated:  # the subscription stays as it was; re-activating is a new consent
            plan.staged.append(
                staged(row, encoded[email], known.id, subscription=None, consent=True)
            )
        if options.mode is ImportMode.UPSERT and (row.name, row.attributes) != (
            known.name,
            known.attributes,
        ):
            plan.field_updates.append(
                {"id": known.id, "name": row.name, "attributes": row.attributes}
            )
            changed = True
        if changed:
            plan.updated += 1
        else:
            plan.unchanged += 1
    return plan


def suppressed_error(status: SubscriberStatus | None) -> str:
    what = "unsubscribed from this list" if status is None else f"{status}"
    return f"subscriber is {what}; left suppressed (--reactivate-suppressed re-subscribes)"


def erased(session: Session, by_hash: dict[str, str]) -> list[str]:
    """The addresses of ``by_hash`` (erasure hash -> address) that were erased (LAW-06)."""
    if not by_hash:
        return []
    found = session.scalars(
        sa.select(Suppression.email_hash).where(one_of(session, Suppression.email_hash, by_hash))
    )
    return [by_hash[h] for h in found]


def one_of(
    session: Session, column: InstrumentedAttribute[str], values: Iterable[str]
) -> sa.ColumnElement[bool]:
    """``column IN values``; on PostgreSQL as ``= ANY(string_to_array(text, newline))``: one
    text parameter instead of 5,000 placeholders (expanding them took longer than the query),
    and no array to build in Python (psycopg's list dumper costs ~1 µs per element). The
    values are normalised addresses or hex hashes: never a line break."""
    if session.get_bind().dialect.name == "postgresql":
        joined = sa.bindparam("values", "\n".join(values), type_=sa.Text)
        return column == sa.any_(
            sa.func.string_to_array(joined, sa.literal("\n"), type_=postgresql.ARRAY(sa.Text))
        )
    return column.in_(list(values))
