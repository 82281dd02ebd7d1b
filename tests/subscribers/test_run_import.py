"""The import loop: a transaction per batch, progress, bounded errors, and surviving a kill."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.db import Base, session_factory, session_scope
from newsletter.errors import InvalidInput
from newsletter.subscribers.importer import (
    BatchCounts,
    ImportOptions,
    ImportResult,
    PreparedBatch,
    pipeline,
    readahead,
    run_import,
)
from newsletter.subscribers.models import (
    ConsentEvent,
    ConsentSource,
    Subscriber,
    SubscriberImport,
    Subscription,
)
from newsletter.subscribers.service import create_list
from tests.conftest import REPO, make_env
from tests.subscribers.conftest import wait_until_the_killed_writers_are_gone

WriteCsv = Callable[..., Path]


def list_id(settings: Settings) -> int:
    with session_scope(settings) as session:
        return create_list(session, "weekly").id


def counts(settings: Settings) -> tuple[int, int, int]:
    """Subscribers, subscriptions, and subscriptions with their consent proof (an import run)."""
    with session_scope(settings) as session:
        proven = (
            sa.select(sa.func.count())
            .select_from(Subscription)
            .join(SubscriberImport, SubscriberImport.id == Subscription.import_id)
            .where(Subscription.consented_at.is_not(None))
        )
        return (
            session.scalar(sa.select(sa.func.count()).select_from(Subscriber)) or 0,
            session.scalar(sa.select(sa.func.count()).select_from(Subscription)) or 0,
            session.scalar(proven) or 0,
        )


def table_count(settings: Settings, model: type[Base]) -> int:
    with session_scope(settings) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def run(settings: Settings, path: Path, target: int, **options: object) -> ImportResult:
    return run_import(
        session_factory(settings).begin,
        path,
        target,
        pepper=settings.secret_key,
        **options,  # type: ignore[arg-type]
    )


def test_each_batch_is_committed_and_reported_as_progress(
    committed_settings: Settings, write_csv: WriteCsv
) -> None:
    target = list_id(committed_settings)
    path = write_csv("email\n" + "".join(f"user{n}@example.com\n" for n in range(25)))
    seen: list[tuple[int, int]] = []

    def progress(rows: int) -> None:
        seen.append((rows, counts(committed_settings)[0]))  # what another connection sees

    result = run(committed_settings, path, target, batch_rows=10, progress=progress)

    assert result.created == 25
    assert seen == [(10, 10), (20, 20), (25, 25)]


def test_errors_beyond_the_cap_are_counted_but_not_kept(
    committed_settings: Settings, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "MAX_ERRORS_KEPT", 3)
    target = list_id(committed_settings)
    path = write_csv("email\n" + "not-an-address\n" * 10 + "ok@example.com\n")

    result = run(committed_settings, path, target, batch_rows=4)

    assert (len(result.errors), result.error_count, result.created) == (3, 10, 1)
    assert [e.line for e in result.errors] == [2, 3, 4]


def test_warnings_beyond_the_cap_are_counted_but_not_kept(
    committed_settings: Settings, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "MAX_WARNINGS_KEPT", 3)
    target = list_id(committed_settings)
    path = write_csv("email\n" + "".join(f"ü{n}@example.com\n" for n in range(10)))

    result = run(committed_settings, path, target, batch_rows=4)

    assert (len(result.warnings), result.warning_count, result.created) == (3, 10, 10)
    assert [w.line for w in result.warnings] == [2, 3, 4]
    assert (result.errors, result.error_count) == ((), 0)


def test_a_file_without_an_email_column_writes_nothing(
    committed_settings: Settings, write_csv: WriteCsv
) -> None:
    target = list_id(committed_settings)
    path = write_csv("name\nAnn\n")

    with pytest.raises(InvalidInput, match="email"):
        run(committed_settings, path, target)
    assert counts(committed_settings) == (0, 0, 0)
    assert table_count(committed_settings, SubscriberImport) == 0


def test_the_import_run_is_recorded_with_the_file_hash(
    committed_settings: Settings, write_csv: WriteCsv
) -> None:
    target = list_id(committed_settings)
    path = write_csv("email\na@example.com\nb@example.com\nc@example.com\n", "march.csv")

    run(committed_settings, path, target, batch_rows=2)

    with session_scope(committed_settings) as session:
        (record,) = session.scalars(sa.select(SubscriberImport)).all()
        assert (record.list_id, record.file_name, record.source) == (
            target,
            "march.csv",
            ConsentSource.IMPORT,
        )
        assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert set(session.scalars(sa.select(Subscription.import_id))) == {record.id}
    assert counts(committed_settings) == (3, 3, 3)
    assert table_count(committed_settings, ConsentEvent) == 0


def test_a_reader_error_stops_the_import_after_the_batches_before_it(
    committed_settings: Settings,
    write_csv: WriteCsv,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = list_id(committed_settings)
    path = write_csv("email\n" + "".join(f"user{n}@example.com\n" for n in range(25)))
    real = readahead.prepare_batch
    calls: list[int] = []

    def failing(rows: list[object], **options: object) -> PreparedBatch:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(rows, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(readahead, "prepare_batch", failing)

    with pytest.raises(RuntimeError, match="disk on fire"):
        run(committed_settings, path, target, batch_rows=10)
    assert counts(committed_settings) == (10, 10, 10)


CHILD = """
import sys
from pathlib import Path
from newsletter.config import load_settings
from newsletter.db import session_factory
from newsletter.subscribers.importer import run_import
settings = load_settings()
run_import(session_factory(settings).begin, Path(sys.argv[1]), int(sys.argv[2]),
           pepper=settings.secret_key, batch_rows=500)
"""


@pytest.mark.slow
def test_an_import_killed_half_way_and_run_again_holds_each_row_once(
    committed_settings: Settings, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = 60_000
    target = list_id(committed_settings)
    path = write_csv(
        "email,name\n" + "".join(f"User{n}@Example.com,User {n}\n" for n in range(rows))
    )
    env = {**os.environ, **make_env(committed_settings.database_url), "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(target)], env=env, cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 60
        while counts(committed_settings)[0] < 2_000 and time.monotonic() < deadline:
            assert child.poll() is None, "the import ended before it could be killed"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    wait_until_the_killed_writers_are_gone(committed_settings)
    committed = counts(committed_settings)
    assert 0 < committed[0] < rows, "the kill did not land half-way"
    assert committed[0] % 500 == 0  # whole batches only
    assert committed == (committed[0],) * 3

    result = run(committed_settings, path, target)

    assert (result.created, result.unchanged, result.error_count) == (
        rows - committed[0],
        committed[0],
        0,
    )
    assert counts(committed_settings) == (rows, rows, rows)


def test_the_purge_job_reports_what_it_purged(committed_settings: Settings) -> None:
    from newsletter.jobs import purge_unconfirmed

    assert purge_unconfirmed(committed_settings) == {"purged": 0}


def test_two_writers_keep_the_file_order_of_each_address_and_of_the_errors(
    committed_settings: Settings, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL a big file is split between two writers by address; here every file is.
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pipeline, "MAX_ERRORS_KEPT", 5)
    target = list_id(committed_settings)
    lines = ["email,name"]
    for n in range(200):
        lines.append(f"user{n % 50}@example.com,First {n}" if n < 100 else f"bad{n}@,Bad")
    lines += [f"USER{n}@example.com,Last {n}" for n in range(50)]
    path = write_csv("\n".join(lines) + "\n")

    result = run(
        committed_settings,
        path,
        target,
        options=ImportOptions(upsert=True),
        batch_rows=7,
        writers=2,
    )

    assert (result.created, result.updated, result.unchanged) == (50, 100, 0)
    assert result.error_count == 100
    assert [e.line for e in result.errors] == [102, 103, 104, 105, 106]
    with session_scope(committed_settings) as session:
        names = {e: n for e, n in session.execute(sa.select(Subscriber.email, Subscriber.name))}
    assert names == {f"user{n}@example.com": f"Last {n}" for n in range(50)}
    assert counts(committed_settings) == (50, 50, 50)


def test_two_writers_keep_the_first_warnings_of_the_file(
    committed_settings: Settings, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pipeline, "MAX_WARNINGS_KEPT", 5)
    target = list_id(committed_settings)
    path = write_csv("email\n" + "".join(f"ü{n}@example.com\n" for n in range(100)))

    result = run(committed_settings, path, target, batch_rows=7, writers=2)

    assert (result.created, result.warning_count) == (100, 100)
    assert [w.line for w in result.warnings] == [2, 3, 4, 5, 6]


def test_a_failing_writer_stops_the_import_and_its_error_is_raised(
    committed_settings: Settings, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    target = list_id(committed_settings)
    path = write_csv("email\n" + "".join(f"user{n}@example.com\n" for n in range(400)))
    real = pipeline.import_batch
    calls: list[int] = []

    def failing(*args: object, **options: object) -> BatchCounts:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("database gone")
        return real(*args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "import_batch", failing)

    with pytest.raises(RuntimeError, match="database gone"):
        run(committed_settings, path, target, batch_rows=5)
    assert counts(committed_settings)[0] < 400
