"""The in-flight fence: the per-message writes of the send loop, one statement each.

Before a message goes to the relay its row is marked *in flight* (``mark_in_flight``): the
UPDATE succeeds only while this worker holds the row's lease and the subscriber is still
mailable (``suppression``: an unsubscribe that landed since the claim stops the message).
After the relay answered, ``record_outcome`` writes what it said and ends the claim. The
outcome of message *n* is written before, or with, the mark of message *n + 1*; on PostgreSQL
the two are one statement (``record_and_mark``), so each message costs one round trip.

The statements are built once, against the Core tables: building an expression and the ORM's
bulk-update machinery cost more than the database. The PostgreSQL statement is *compiled* from
the same two statements (a data-modifying CTE), so the rule it checks cannot drift from them.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, cast

from sqlalchemy import String, Table, bindparam, func, update
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import BindParameter

from newsletter.db import UtcDateTime, affected_rows
from newsletter.delivery.models import Delivery, DeliveryStatus, may_become
from newsletter.delivery.policy import Outcome
from newsletter.delivery.suppression import delivery_mailable


class Fence(enum.StrEnum):
    """What the in-flight mark found."""

    MARKED = "marked"  # ours and mailable: send it
    SUPPRESSED = "suppressed"  # still ours, but the subscriber may no longer be mailed: skip it
    LEASE_LOST = "lease lost"  # another worker took the row over: stop the batch
    DOMAIN_WAITS = "domain waits"  # the outcome just written backed off or held its domain


_deliveries = cast(Table, Delivery.__table__)
# Every status an outcome may write (``policy.Outcome``); the rows they may come from.
OUTCOME_STATUSES = (
    DeliveryStatus.SENT,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.FAILED,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.POSSIBLY_SENT,
)


def _one_of(column: Any, statuses: list[DeliveryStatus]) -> Any:
    # OR of equalities rather than IN: an IN list compiles to a placeholder expanded at
    # execution, and the PostgreSQL statement below is run without SQLAlchemy.
    clause = column == statuses[0].value
    for status in statuses[1:]:
        clause = clause | (column == status.value)
    return clause


_MARK_IN_FLIGHT = (
    update(_deliveries)
    .where(
        _deliveries.c.id == bindparam("delivery_id"),
        _deliveries.c.lease_owner == bindparam("owner"),
        _deliveries.c.status == DeliveryStatus.SENDING.value,
        _deliveries.c.in_flight_at.is_(None),
        delivery_mailable(),
    )
    .values(
        in_flight_at=bindparam("now"),
        message_id=bindparam("message_id"),
        updated_at=bindparam("now"),
    )
)


def _record_outcome_statement(prefix: str) -> Update:
    """UPDATE writing one message's outcome; bind names start with ``prefix``."""

    def param(name: str, type_: Any = None) -> BindParameter[Any]:
        return bindparam(prefix + name, type_=type_)

    return (
        update(_deliveries)
        .where(
            _deliveries.c.id == param("delivery_id"),
            _deliveries.c.lease_owner == param("owner"),
            # Recovery may have given up on us (possibly_sent) while the relay was answering:
            # the reply we hold is better knowledge, so it is still written.
            _one_of(_deliveries.c.status, may_become(*OUTCOME_STATUSES)),
        )
        .values(
            status=param("status"),
            verdict=param("verdict"),
            in_flight_at=None,
            lease_owner=None,
            lease_expires_at=None,
            last_reply=param("reply"),
            enhanced_status=param("enhanced_status"),
            next_attempt_at=param("next_attempt_at"),
            queue_id=func.coalesce(param("queue_id", String()), _deliveries.c.queue_id),
            sent_at=func.coalesce(param("sent_at", UtcDateTime()), _deliveries.c.sent_at),
            attempts=_deliveries.c.attempts + param("attempt"),
            updated_at=param("now"),
        )
    )


_RECORD_OUTCOME = _record_outcome_statement("")


def _compiled_for_psycopg(statement: Update) -> tuple[str, dict[str, Any]]:
    """The statement's SQL for psycopg, and the values of its constant parameters.

    The constants (the statuses the guards compare with, the NULLs a claim ends with) are the
    parameters that carry their own value; every other one must be given per execution.
    """
    compiled = statement.compile(dialect=psycopg_dialect())  # type: ignore[no-untyped-call]
    constants = {
        name: bind.effective_value
        for bind, name in compiled.bind_names.items()
        if not bind.required
    }
    return compiled.string, constants


# PostgreSQL only: the previous message's outcome and the next message's in-flight mark in one
# statement (a data-modifying CTE), so each message costs one round trip instead of two.
_RECORD_AND_MARK_POSTGRESQL, _RECORD_AND_MARK_CONSTANTS = _compiled_for_psycopg(
    _MARK_IN_FLIGHT.add_cte(_record_outcome_statement("previous_").cte("recorded"))
)


def _outcome_params(
    delivery_id: int, owner: str, outcome: Outcome, now: dt.datetime, prefix: str = ""
) -> dict[str, Any]:
    return {
        prefix + "delivery_id": delivery_id,
        prefix + "owner": owner,
        prefix + "status": outcome.status.value,
        prefix + "verdict": outcome.verdict.value if outcome.verdict else None,
        prefix + "reply": outcome.reply,
        prefix + "enhanced_status": outcome.enhanced_status,
        prefix + "next_attempt_at": outcome.next_attempt_at,
        prefix + "queue_id": outcome.queue_id,
        prefix + "sent_at": now if outcome.status == DeliveryStatus.SENT else None,
        prefix + "attempt": 1 if outcome.counts_as_attempt else 0,
        prefix + "now": now,
    }


def mark_in_flight(
    session: Session, delivery_id: int, *, owner: str, message_id: str, now: dt.datetime
) -> bool:
    """Fence before sending: True only if ``owner`` still holds the row and may mail it.

    False means the lease was lost (another worker took the row over) or the subscriber was
    suppressed since the claim (MSG-13); the caller must not send.
    """
    result = session.execute(
        _MARK_IN_FLIGHT,
        {"delivery_id": delivery_id, "owner": owner, "now": now, "message_id": message_id},
    )
    return affected_rows(result) == 1


def unmark_in_flight(session: Session, delivery_id: int, *, owner: str) -> None:
    """The marked message never reached the relay (it could not be reached): clear the mark."""
    session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.lease_owner == owner,
            Delivery.status == DeliveryStatus.SENDING,
        )
        .values(in_flight_at=None)
        .execution_options(synchronize_session=False)
    )


def record_outcome(
    session: Session, delivery_id: int, *, owner: str, outcome: Outcome, now: dt.datetime
) -> bool:
    """Write what the relay said about one message and end the row's claim."""
    result = session.execute(_RECORD_OUTCOME, _outcome_params(delivery_id, owner, outcome, now))
    return affected_rows(result) == 1


def record_and_mark(
    session: Session,
    previous: tuple[int, Outcome],
    delivery_id: int,
    *,
    owner: str,
    message_id: str,
    now: dt.datetime,
) -> bool:
    """``record_outcome`` for the previous message and ``mark_in_flight`` for the next, at once.

    PostgreSQL only (SQLite has no UPDATE inside WITH). Returns what ``mark_in_flight`` would.
    Runs inside the session's transaction.
    """
    driver = session.connection().connection.driver_connection
    assert driver is not None
    return record_and_mark_on(
        driver, previous, delivery_id, owner=owner, message_id=message_id, now=now
    )


def record_and_mark_on(
    driver: Any,
    previous: tuple[int, Outcome],
    delivery_id: int,
    *,
    owner: str,
    message_id: str,
    now: dt.datetime,
) -> bool:
    """``record_and_mark`` on a psycopg connection itself (the send loop's, in autocommit)."""
    params = dict(_RECORD_AND_MARK_CONSTANTS)
    params.update(_outcome_params(previous[0], owner, previous[1], now, prefix="previous_"))
    params.update(delivery_id=delivery_id, owner=owner, now=now, message_id=message_id)
    # Straight to psycopg: at one statement per message the SQLAlchemy execution context would
    # cost as much as the database does.
    return int(driver.execute(_RECORD_AND_MARK_POSTGRESQL, params).rowcount) == 1
