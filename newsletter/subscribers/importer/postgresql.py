"""The batch writer for PostgreSQL: COPY into the stage, then one statement for the inserts.

COPY is ~4x faster than executemany here (docs/benchmarks.md). The inserts are one statement:
the new subscribers' ids come from RETURNING and the known ones from the stage, so the big
subscribers table is never joined on email (with an unanalysed temporary table the planner
chose a sequential scan of it per batch).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from newsletter.db import UtcDateTime
from newsletter.subscribers.importer.stage import STAGE_COLUMNS, StageRow
from newsletter.subscribers.statuses import ConsentAction, ConsentSource

# No primary key: the batch is deduplicated in Python, and an index is work per row.
# ON COMMIT DELETE ROWS: a temporary table is never vacuumed, so deleting its rows batch after
# batch would leave ever more dead rows to scan; the truncate at commit leaves none.
STAGE_DDL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS subscriber_import_stage (email text NOT NULL, "
    "subscriber_id integer, name text NOT NULL, attributes jsonb NOT NULL, status text NOT "
    "NULL, is_new boolean NOT NULL, subscription_status text, consent boolean NOT NULL) "
    "ON COMMIT DELETE ROWS"
)
# Both in one round trip; the DELETE finds rows only if this transaction imported before.
_RESET_STAGE = f"{STAGE_DDL}; DELETE FROM subscriber_import_stage"  # noqa: S608 - constants only
_COPY = f"COPY subscriber_import_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN"
# A new subscription carries its own consent proof (consent_* and import_id, LAW-04); a consent
# event is written only for a later change to an existing subscription (re-activated or
# re-subscribed with --reactivate-suppressed), as everywhere else in the stage.
_WRITE = sa.text("""
WITH new AS (
    INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at)
    SELECT email, name, attributes, status, :now, :now FROM subscriber_import_stage WHERE is_new
    ON CONFLICT (email) DO NOTHING
    RETURNING id, email
), targets AS (
    SELECT new.id, st.subscription_status, st.consent
    FROM new JOIN subscriber_import_stage st ON st.email = new.email
    UNION ALL
    SELECT subscriber_id, subscription_status, consent
    FROM subscriber_import_stage WHERE NOT is_new AND subscription_status IS NOT NULL
), consent AS (
    INSERT INTO consent_events (subscriber_id, list_id, action, source, at)
    SELECT subscriber_id, :list_id, :action, :source, :now FROM subscriber_import_stage
    WHERE NOT is_new AND subscription_status IS NULL AND consent
), subscribed AS (
    INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at,
                               consent_source, consented_at, import_id, legal_basis)
    SELECT id, :list_id, subscription_status, :now, :now,
           CASE WHEN consent THEN :source END, CASE WHEN consent THEN :now END, :import_id,
           CASE WHEN consent THEN :legal_basis END
    FROM targets
    ON CONFLICT (subscriber_id, list_id) DO NOTHING
)
SELECT count(*) FROM new
""").bindparams(sa.bindparam("now", type_=UtcDateTime()))


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
    """Load ``staged`` (rows, or rows already in COPY text format) into the stage and insert
    from it; the number of subscribers created."""
    connection.exec_driver_sql(_RESET_STAGE)
    dbapi = connection.connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor() as cursor, cursor.copy(_COPY) as copy:
        if isinstance(staged, str):
            copy.write(staged)
        else:
            for values in staged:
                copy.write_row(values)
    created = connection.execute(
        _WRITE,
        {
            "now": now,
            "list_id": list_id,
            "action": ConsentAction.SUBSCRIBE.value,
            "source": source.value,
            "import_id": import_id,
            "legal_basis": legal_basis,
        },
    ).scalar_one()
    return int(created)
