"""The batch writer for SQLite: executemany into the stage, then the inserts one by one.

SQLite has no COPY and no data-modifying CTEs; joining the stage on email is an index lookup
per staged row here, so the plain INSERT … SELECT statements are as fast as it gets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from newsletter.db import UtcDateTime
from newsletter.subscribers.importer.stage import StageRow
from newsletter.subscribers.models import ConsentEvent, Subscriber, Subscription
from newsletter.subscribers.statuses import ConsentAction, ConsentSource

# A temporary table, so it is private to the connection and never part of the schema (it is
# not on Base.metadata, so Alembic ignores it). Columns as ``stage.STAGE_COLUMNS``.
_stage = sa.Table(
    "subscriber_import_stage",
    sa.MetaData(),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("subscriber_id", sa.Integer),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("is_new", sa.Boolean, nullable=False),
    sa.Column("subscription_status", sa.Text),
    sa.Column("consent", sa.Boolean, nullable=False),
    prefixes=["TEMPORARY"],
)
# No primary key: the batch is deduplicated in Python, and an index is work per row.
STAGE_DDL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS subscriber_import_stage (email TEXT NOT NULL, "
    "subscriber_id INTEGER, name TEXT NOT NULL, attributes TEXT NOT NULL, status TEXT NOT "
    "NULL, is_new BOOLEAN NOT NULL, subscription_status TEXT, consent BOOLEAN NOT NULL)"
)
_LOAD = "INSERT INTO subscriber_import_stage VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def write_stage(
    connection: sa.Connection,
    staged: Sequence[StageRow] | str,
    *,
    list_id: int,
    source: ConsentSource,
    now: dt.datetime,
    import_id: int,
    legal_basis: str | None,
) -> int:
    """Load ``staged`` into the stage and insert from it; the number of subscribers created."""
    assert not isinstance(staged, str), "COPY text is for PostgreSQL only"
    connection.exec_driver_sql(STAGE_DDL)
    connection.exec_driver_sql("DELETE FROM subscriber_import_stage")
    connection.exec_driver_sql(_LOAD, list(staged))
    at = sa.literal(now, UtcDateTime())
    created = connection.execute(
        sqlite.insert(Subscriber)
        .from_select(
            ["email", "name", "attributes", "status", "created_at", "updated_at"],
            sa.select(
                _stage.c.email, _stage.c.name, _stage.c.attributes, _stage.c.status, at, at
            ).where(_stage.c.is_new),
        )
        .on_conflict_do_nothing(index_elements=["email"]),
        execution_options={"preserve_rowcount": True},  # SQLAlchemy keeps it for UPDATE only
    ).rowcount
    # A later change to an existing subscription (re-activated, re-subscribed): an event.
    connection.execute(
        sa.insert(ConsentEvent).from_select(
            ["subscriber_id", "list_id", "action", "source", "at"],
            sa.select(
                _stage.c.subscriber_id,
                sa.literal(list_id),
                sa.literal(ConsentAction.SUBSCRIBE.value),
                sa.literal(source.value),
                at,
            ).where(~_stage.c.is_new, _stage.c.subscription_status.is_(None), _stage.c.consent),
        )
    )
    joined = _stage.join(Subscriber.__table__, Subscriber.email == _stage.c.email)
    consented = sa.case((_stage.c.consent, sa.literal(source.value)))
    connection.execute(
        sqlite.insert(Subscription)
        .from_select(
            [
                "subscriber_id",
                "list_id",
                "status",
                "created_at",
                "updated_at",
                "consent_source",
                "consented_at",
                "import_id",
                "legal_basis",
            ],
            sa.select(
                Subscriber.id,
                sa.literal(list_id),
                _stage.c.subscription_status,
                at,
                at,
                consented,
                sa.case((_stage.c.consent, at)),
                sa.literal(import_id),
                sa.case((_stage.c.consent, sa.literal(legal_basis))),
            )
            .select_from(joined)
            .where(_stage.c.subscription_status.is_not(None)),
        )
        .on_conflict_do_nothing(index_elements=["subscriber_id", "list_id"])
    )
    return max(created, 0)
