"""One batch of an import, written in the caller's transaction: idempotent, never commits.

A batch costs one SELECT of the erased and one of the already known addresses (``plan``), one
bulk load of the rows that need work into a temporary table, then the inserts into
subscribers and subscriptions (and the rare consent event) from it, by the database's own
writer (``postgresql``: COPY and one statement; ``sqlite``: executemany and three). Rows
already imported cost only the SELECTs, so a re-run is fast. The unique normalised address
decides what is new: running the same batch again adds nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.db import get_or_raise, utcnow
from newsletter.errors import InvalidInput
from newsletter.subscribers import audit
from newsletter.subscribers.csvfile import Row, RowError, RowWarning
from newsletter.subscribers.importer import postgresql, sqlite
from newsletter.subscribers.importer.options import ImportOptions
from newsletter.subscribers.importer.plan import Plan, erased, plan_batch
from newsletter.subscribers.importer.prepare import PreparedBatch, prepare_batch
from newsletter.subscribers.importer.stage import StageRow, new_subscriber
from newsletter.subscribers.models import MailingList, Subscriber, SubscriberImport, Subscription
from newsletter.subscribers.statuses import (
    CONSENT_CHANGE_SOURCE,
    ConsentSource,
    LegalBasis,
    SubscriptionStatus,
)

ERASED_ERROR = "address was erased at the subscriber's request"



class StageWriter(Protocol):
    """A database's writer: load the staged rows (or COPY text), insert from them, and return
    the number of subscribers created."""

    def __call__(
        self,
        connection: sa.Connection,
        staged: Sequence[StageRow] | str,
        *,
        list_id: int,
        source: ConsentSource,
        now: dt.datetime,
        import_id: int,
        legal_basis: str | None,
    ) -> int: ...


_STAGE_WRITERS: dict[str, StageWriter] = {
    "postgresql": postgresql.write_stage,
    "sqlite": sqlite.write_stage,
}


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What one batch did; every data row counts once: created, updated, unchanged or error.

    ``updated``: an existing subscriber that changed (added to this list, re-activated, or new
    name/attributes with ``upsert``). ``unchanged`` includes an address repeated in the file.
    ``warnings``: rows counted as one of the first three that the operator should look at (an
    address only a relay with SMTPUTF8 can deliver); a row refused as an error has none.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: tuple[RowError, ...] = ()
    warnings: tuple[RowWarning, ...] = ()


def import_batch(
    session: Session,
    list_id: int,
    rows: Iterable[Row | RowError] | PreparedBatch,
    options: ImportOptions,
    *,
    pepper: str,
    now: dt.datetime | None = None,
    import_id: int | None = None,
) -> BatchCounts:
    """Write one batch into list ``list_id``; idempotent, never commits.

    A suppressed subscriber (not ``active``, or unsubscribed from this list) stays suppressed
    and is reported as an error, unless ``options.reactivate_suppressed``. An erased address
    is always refused (LAW-06): the erasure is the subscriber's decision, not the importer's.

    Every subscription created records its consent (``options.source``, ``now``,
    ``import_id``); a re-activation or re-subscription of an existing one is a
    ``ConsentEvent``. Without ``import_id`` the batch is recorded as an import run of its own,
    with no file. ``pepper`` is the secret key (erased addresses are stored as its HMAC).
    """
    now = now or utcnow()
    mailing_list = get_or_raise(session, MailingList, list_id, f"no list with id {list_id}")
    if import_id is None:
        import_id = start_import(
            session, list_id, file_name="", sha256=None, source=options.source, now=now
        )
    initial = initial_status(mailing_list)

    batch = (
        rows
        if isinstance(rows, PreparedBatch)
        else prepare_batch(rows, mode=options.mode, pepper=pepper)
    )
    errors = list(batch.errors)
    unique = dict(batch.unique)
    for email in erased(session, batch.hashes):
        errors.append(RowError(unique.pop(email).line, ERASED_ERROR))

    plan = plan_batch(session, list_id, unique, batch.encoded, options, initial)
    errors.extend(plan.errors)
    _apply_existing(session, list_id, plan, initial, options, now, import_id)
    staged: Sequence[StageRow] | str
    if (
        batch.copy_text is not None
        and batch.initial is initial
        and session.get_bind().dialect.name == "postgresql"
        and len(plan.new_rows) == len(batch.unique)  # all new: nothing erased, nothing known
    ):
        staged = batch.copy_text
    else:
        staged = [new_subscriber(row, batch.encoded[row.email], initial) for row in plan.new_rows]
        staged.extend(plan.staged)
    created = _write_staged(session, list_id, staged, options.source, now, import_id)
    errors.sort(key=lambda e: e.line)
    warnings = batch.warnings
    if warnings and len(errors) > len(batch.errors):
        # A line refused here (erased, suppressed) is reported as that, not also warned about.
        refused = {e.line for e in errors}
        warnings = tuple(w for w in warnings if w.line not in refused)
    return BatchCounts(
        created=created,
        updated=plan.updated,
        unchanged=batch.repeated + plan.unchanged + (len(plan.new_rows) - created),
        errors=tuple(errors),
        warnings=warnings,
    )


def start_import(
    session: Session,
    list_id: int,
    *,
    file_name: str,
    sha256: str | None,
    source: ConsentSource,
    legal_basis: LegalBasis = LegalBasis.CONSENT,
    now: dt.datetime | None = None,
) -> int:
    """Record one import run (the consent proof its subscriptions point at); its id."""
    record = SubscriberImport(
        list_id=list_id,
        file_name=file_name,
        sha256=sha256,
        source=source,
        legal_basis=legal_basis,
        started_at=now or utcnow(),
    )
    session.add(record)
    session.flush()
    return record.id


def initial_status(mailing_list: MailingList) -> SubscriptionStatus:
    """The status of a subscription an import creates on ``mailing_list``."""
    if mailing_list.double_opt_in:
        return SubscriptionStatus.UNCONFIRMED
    return SubscriptionStatus.CONFIRMED


def _apply_existing(
    session: Session,
    list_id: int,
    plan: Plan,
    initial: SubscriptionStatus,
    options: ImportOptions,
    now: dt.datetime,
    import_id: int,
) -> None:
    """Updates to subscribers already known: rare on a first import, so executemany is fine."""
    if plan.field_updates:
        session.execute(
            sa.update(Subscriber), [{**u, "updated_at": now} for u in plan.field_updates]
        )
    # Audited like any status change, so the bounce policy counts their soft bounces afresh.
    audit.reactivate(
        session,
        plan.reactivate,
        reason=f"reactivated by import run {import_id} (--reactivate-suppressed)",
        source=CONSENT_CHANGE_SOURCE[options.source],
        now=now,
    )
    if plan.resubscribe:
        session.execute(
            sa.update(Subscription)
            .where(
                Subscription.list_id == list_id, Subscription.subscriber_id.in_(plan.resubscribe)
            )
            .values(status=initial, updated_at=now)
        )


def _write_staged(
    session: Session,
    list_id: int,
    staged: Sequence[StageRow] | str,
    source: ConsentSource,
    now: dt.datetime,
    import_id: int,
) -> int:
    """Load ``staged`` (rows, or rows already in COPY text format) into the temporary table and
    insert from it, with the database's writer; the number of subscribers created."""
    if not staged:
        return 0
    connection = session.connection()
    write = _STAGE_WRITERS.get(connection.dialect.name)
    if write is None:
        raise InvalidInput(f"importing is not supported on {connection.dialect.name}")
    # The run states the legal basis of every row (--legal-basis): one lookup per batch.
    legal_basis = session.scalar(
        sa.select(SubscriberImport.legal_basis).where(SubscriberImport.id == import_id)
    )
    return write(
        connection,
        staged,
        list_id=list_id,
        source=source,
        now=now,
        import_id=import_id,
        legal_basis=None if legal_basis is None else legal_basis.value,
    )
