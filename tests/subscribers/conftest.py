"""Fixtures of the subscriber tests: a list, CSV files, imports through the real reader."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.db import session_factory, session_scope
from newsletter.subscribers.csvfile import read_csv
from newsletter.subscribers.import_runs import ImportSessions
from newsletter.subscribers.importer import BatchCounts, ImportOptions, import_batch
from newsletter.subscribers.models import ConsentEvent, MailingList
from newsletter.subscribers.service import create_list
from tests.conftest import TEST_SECRET

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def consent_actions(session: Session) -> list[str]:
    """The consent events' actions, oldest first."""
    return [
        e.action.value for e in session.scalars(sa.select(ConsentEvent).order_by(ConsentEvent.id))
    ]


ImportText = Callable[..., BatchCounts]


def import_sessions(settings: Settings) -> ImportSessions:
    """What the CLI and the worker give an import run: their transactions on the database."""
    return ImportSessions(
        write=session_factory(settings).begin, read=session_factory(settings, readonly=True).begin
    )


@pytest.fixture
def weekly(session: Session) -> MailingList:
    return create_list(session, "weekly")


@pytest.fixture
def confirmed_only(session: Session) -> MailingList:
    return create_list(session, "alerts", double_opt_in=True)


@pytest.fixture
def import_text(session: Session, weekly: MailingList) -> ImportText:
    """``import_text("email,name\\n…", upsert=True)``: one batch through reader and writer."""

    def run(
        text: str | bytes,
        *,
        upsert: bool = False,
        reactivate: bool = False,
        mailing_list: MailingList | None = None,
    ) -> BatchCounts:
        data = text.encode() if isinstance(text, str) else text
        return import_batch(
            session,
            (mailing_list or weekly).id,
            list(read_csv(io.BytesIO(data))),
            ImportOptions(upsert=upsert, reactivate_suppressed=reactivate),
            pepper=TEST_SECRET,
            now=NOW,
        )

    return run


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "subscribers.csv") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def wait_until_the_killed_writers_are_gone(settings: Settings) -> None:
    """After a SIGKILL of an importing process: on PostgreSQL its server backends may still be
    finishing a COMMIT the process had sent, so wait until no other backend of this database
    is busy before counting what was committed. (On SQLite a dead process commits nothing.)"""
    if not settings.database_url.startswith("postgresql"):
        return
    busy = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
    )
    deadline = time.monotonic() + 30
    while True:
        with session_scope(settings) as session:
            if not session.scalar(busy):
                return
        assert time.monotonic() < deadline, "the killed importer's backends did not end"
        time.sleep(0.05)
