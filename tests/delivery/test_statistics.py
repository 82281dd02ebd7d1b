"""The ledger's planner statistics: refreshed at most once a minute, however many workers ask."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.delivery import ledger


def test_the_ledger_is_analysed_once_however_often_it_is_asked(engine: sa.Engine) -> None:
    postgresql = engine.dialect.name == "postgresql"
    # Each call in its own transaction, as each tick on each worker is.
    with Session(engine) as session, session.begin():
        forced = ledger.refresh_statistics(session, older_than=dt.timedelta(0))
    with Session(engine) as session, session.begin():
        again = ledger.refresh_statistics(session)
    with Session(engine) as other_worker, other_worker.begin():
        from_elsewhere = ledger.refresh_statistics(other_worker)

    # SQLite's planner needs no statistics: nothing to do there.
    assert (forced, again, from_elsewhere) == (postgresql, False, False)


def test_statistics_older_than_asked_are_refreshed(engine: sa.Engine) -> None:
    with Session(engine) as session, session.begin():
        ledger.refresh_statistics(session, older_than=dt.timedelta(0))
    with Session(engine) as session, session.begin():
        refreshed = ledger.refresh_statistics(session, older_than=dt.timedelta(microseconds=1))

    assert refreshed is (engine.dialect.name == "postgresql")
