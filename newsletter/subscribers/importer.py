"""Importing subscribers from a CSV file: one idempotent batch writer, and the loop around it.

``import_batch`` writes one batch in the caller's transaction; ``run_import`` reads the file
(a path here, or any ``sources.ImportSource``: the upload a worker reads from the database)
and commits batch after batch. A kill mid-import leaves whole batches committed; running the
same import again adds nothing twice (the unique normalised address decides), and reports the
rows already there as unchanged.

Consent (LAW-04): every subscription an import creates carries its proof in write-once columns
(``consent_source``, ``consented_at``, ``import_id``) pointing at the ``SubscriberImport`` run
(file name, SHA-256 of the file, list, source, time). A later change (re-activating or
re-subscribing with ``reactivate_suppressed``) is a ``ConsentEvent``, like every other change.

Speed: a batch costs one SELECT of the erased and one of the already known addresses, one bulk
load of the rows that need work into a temporary table (``COPY`` on PostgreSQL, ``executemany``
on SQLite), then the inserts into subscribers and subscriptions (and the rare consent event)
from it (on PostgreSQL one statement). Rows already imported cost only the SELECTs: a re-run is
fast. On PostgreSQL a reader thread prepares the batches (including their COPY text) while the
database writes, and a big file is written by two connections, split by address.
Memory: a few batches, the per-domain cache of ``address.normalise_email``, a bounded cache of
encoded attribute sets and at most ``MAX_ERRORS_KEPT`` errors, whatever the size of the file.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from newsletter.db import UtcDateTime, utcnow
from newsletter.errors import InvalidInput, NotFound
from newsletter.subscribers.address import erasure_hasher
from newsletter.subscribers.csvfile import Row, RowError, batches, read_csv
from newsletter.subscribers.models import (
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    LegalBasis,
    MailingList,
    Subscriber,
    SubscriberImport,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from newsletter.subscribers.sources import ImportSource
from newsletter.subscribers.sources.file import FileSource

BATCH_ROWS = 10_000
MAX_ERRORS_KEPT = 1_000  # error entries kept in memory and reported; error_count has them all
ERASED_ERROR = "address was erased at the subscriber's request"

# Rows of one batch that need writing. A temporary table, so it is private to the connection
# and never part of the schema (it is not on Base.metadata, so Alembic ignores it).
_stage_metadata = sa.MetaData()
_stage = sa.Table(
    "subscriber_import_stage",
    _stage_metadata,
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("subscriber_id", sa.Integer),  # None: a new subscriber
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("is_new", sa.Boolean, nullable=False),
    sa.Column("subscription_status", sa.Text),  # None: no subscription to create
    sa.Column("consent", sa.Boolean, nullable=False),  # record a "subscribe" consent event
    prefixes=["TEMPORARY"],
)
_STAGE_DDL = {
    # No primary key: the batch is deduplicated in Python, and an index is work per row.
    # ON COMMIT DELETE ROWS: a temporary table is never vacuumed, so deleting its rows batch
    # after batch would leave ever more dead rows to scan; the truncate at commit leaves none.
    "postgresql": "CREATE TEMPORARY TABLE IF NOT EXISTS subscriber_import_stage (email text "
    "NOT NULL, subscriber_id integer, name text NOT NULL, attributes jsonb NOT NULL, status "
    "text NOT NULL, is_new boolean NOT NULL, subscription_status text, consent boolean NOT NULL)"
    " ON COMMIT DELETE ROWS",
    "sqlite": "CREATE TEMPORARY TABLE IF NOT EXISTS subscriber_import_stage (email TEXT "
    "NOT NULL, subscriber_id INTEGER, name TEXT NOT NULL, attributes TEXT NOT NULL, status "
    "TEXT NOT NULL, is_new BOOLEAN NOT NULL, subscription_status TEXT, consent BOOLEAN NOT NULL)",
}
# Both in one round trip; the DELETE finds rows only if this transaction imported before.
_POSTGRESQL_RESET_STAGE = f"{_STAGE_DDL['postgresql']}; DELETE FROM subscriber_import_stage"  # noqa: S608 - constants only
_STAGE_COLUMNS = (
    "email",
    "subscriber_id",
    "name",
    "attributes",
    "status",
    "is_new",
    "subscription_status",
    "consent",
)
# PostgreSQL: the inserts as one statement. The new subscribers' ids come from RETURNING
# and the known ones from the stage, so the big subscribers table is never joined on email
# (with an unanalysed temporary table the planner chose a sequential scan of it per batch).
# A new subscription carries its own consent proof (consent_* and import_id, LAW-04); a
# consent event is written only for a later change to an existing subscription (re-activated
# or re-subscribed with --reactivate-suppressed), as everywhere else in the stage.
_POSTGRESQL_WRITE = sa.text("""
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
""")


class ImportMode(enum.StrEnum):
    ADD = "add"  # existing subscribers keep their name and attributes
    UPSERT = "upsert"  # existing subscribers take the file's name and attributes


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What one batch did; every data row counts once: created, updated, unchanged or error.

    ``updated``: an existing subscriber that changed (added to this list, re-activated, or new
    name/attributes with ``upsert``). ``unchanged`` includes an address repeated in the file.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: tuple[RowError, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    errors: tuple[RowError, ...]  # the first MAX_ERRORS_KEPT, in file order
    error_count: int  # all of them

    def as_document(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [{"line": e.line, "error": e.error} for e in self.errors],
            "error_count": self.error_count,
        }


@dataclass(slots=True)
class _Tally:
    """The running total of ``run_import``; private, frozen into an ``ImportResult``."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def add(self, counts: BatchCounts) -> None:
        self.created += counts.created
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.error_count += len(counts.errors)
        if counts.errors and (
            len(self.errors) < MAX_ERRORS_KEPT or counts.errors[0].line < self.errors[-1].line
        ):
            # Two writers commit batches out of file order: keep the first errors of the file.
            self.errors = sorted([*self.errors, *counts.errors], key=lambda e: e.line)[
                :MAX_ERRORS_KEPT
            ]

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.error_count

    def result(self) -> ImportResult:
        return ImportResult(
            self.created, self.updated, self.unchanged, tuple(self.errors), self.error_count
        )


def run_import(
    session_factory: Callable[[], AbstractContextManager[Session]],
    file: Path | ImportSource,
    list_id: int,
    *,
    pepper: str,
    mode: ImportMode = ImportMode.ADD,
    reactivate_suppressed: bool = False,
    source: ConsentSource = ConsentSource.IMPORT,
    legal_basis: LegalBasis = LegalBasis.CONSENT,
    check_deliverability: bool = False,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import the CSV ``file`` into list ``list_id``, committing after every batch.

    ``file`` is a path on this machine or an ``ImportSource`` (``sources.upload``: the file
    the CLI stored in the database, for a worker on another host).

    ``session_factory()`` must return a context manager that yields a session and commits it
    when the block ends (``sessionmaker.begin``, or ``lambda: session_scope(settings)``).

    Why a transaction per batch and not one for the file: a million-row import in one
    transaction holds locks and an ever larger undo log (or SQLite's write lock) for minutes,
    and a crash at row 999,999 would throw everything away. Per batch, a killed import keeps
    what it had done, and because ``import_batch`` is idempotent the fix is to run the same
    import again. ``pepper`` is the secret key (erased addresses are stored as its HMAC).
    ``progress`` is called with the number of rows done after each committed batch (from a
    writer thread on PostgreSQL, never two calls at once).

    The run is recorded as a ``SubscriberImport`` (file name, SHA-256 of its bytes, list,
    source, the ``legal_basis`` the import states for its rows, time) once the header has been
    read; the subscriptions it creates point at it and carry that legal basis.

    On PostgreSQL a reader thread parses, validates and deduplicates the batches while the
    database writes (psycopg releases the GIL while it waits), at most ``_READ_AHEAD`` batches
    ahead per writer, so memory stays flat. A file of ``_PARALLEL_MIN_BYTES`` or more is
    written by ``_WRITERS`` connections at once: the rows are split by address, so every
    line of one address goes to the same writer, in file order (dedupe, "the later line
    wins" and the counts are as with one writer); each writer commits whole batches of its
    own share. On SQLite (one writer at a time) the file is read between batches, as the
    pause lets other writers in.
    """
    csv_file = FileSource.checked(file) if isinstance(file, Path) else file
    sha256 = csv_file.sha256()
    with session_factory() as session:
        read_ahead = session.get_bind().dialect.name == "postgresql"
        mailing_list = session.get(MailingList, list_id)
        if mailing_list is None:
            raise NotFound(f"no list with id {list_id}")
        # For the reader's ready-made COPY rows; import_batch checks it against the list.
        initial = _initial_status(mailing_list) if read_ahead else None
    writers = _WRITERS if read_ahead and csv_file.size >= _PARALLEL_MIN_BYTES else 1
    writer = _Writer(
        session_factory,
        list_id,
        mode=mode,
        reactivate_suppressed=reactivate_suppressed,
        source=source,
        legal_basis=legal_basis,
        pepper=pepper,
        file_name=csv_file.name,
        sha256=sha256,
        progress=progress,
    )
    reader = _ReadAhead(
        csv_file,
        batch_rows,
        mode,
        pepper,
        check_deliverability,
        initial,
        threaded=read_ahead,
        streams=writers,
    )
    writer.on_failure = reader.stop
    with reader as streams:
        if len(streams) == 1:
            writer.write(streams[0])  # a bad header raises here, before anything is written
        else:
            threads = [
                threading.Thread(
                    target=writer.write_guarded, args=(stream,), name=f"import-{n}", daemon=True
                )
                for n, stream in enumerate(streams)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if writer.failures:
                raise writer.failures[0]
    return writer.tally.result()


def check_file(csv_file: ImportSource) -> None:
    """Raise ``InvalidInput`` for a file refused whole (empty, not UTF-8, no ``email`` column),
    reading only its start: what ``run_import`` would refuse, said before a job is queued."""
    with csv_file.open() as stream:
        next(read_csv(stream), None)


class _Writer:
    """Writes streams of prepared batches, a transaction per batch; shared by the writers."""

    def __init__(
        self,
        session_factory: Callable[[], AbstractContextManager[Session]],
        list_id: int,
        *,
        mode: ImportMode,
        reactivate_suppressed: bool,
        source: ConsentSource,
        legal_basis: LegalBasis,
        pepper: str,
        file_name: str,
        sha256: str,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._session_factory = session_factory
        self._list_id = list_id
        self._mode = mode
        self._reactivate_suppressed = reactivate_suppressed
        self._source = source
        self._legal_basis = legal_basis
        self._pepper = pepper
        self._file_name = file_name
        self._sha256 = sha256
        self._progress = progress
        self._lock = threading.Lock()
        self._import_id: int | None = None
        self.tally = _Tally()
        self.failures: list[BaseException] = []
        self.on_failure: Callable[[], None] | None = None  # e.g. stop the reader

    def write(self, batches: Iterable[PreparedBatch]) -> None:
        for batch in batches:
            if self.failures:
                return  # the other writer failed: stop at a batch boundary
            import_id = self._started()
            with self._session_factory() as session:
                counts = import_batch(
                    session,
                    self._list_id,
                    batch,
                    mode=self._mode,
                    reactivate_suppressed=self._reactivate_suppressed,
                    source=self._source,
                    pepper=self._pepper,
                    import_id=import_id,
                )
            with self._lock:
                self.tally.add(counts)
                if self._progress is not None:
                    self._progress(self.tally.rows)

    def write_guarded(self, batches: Iterable[PreparedBatch]) -> None:
        """``write`` in a thread of its own: the exception is kept for ``run_import``."""
        try:
            self.write(batches)
        except BaseException as exc:
            with self._lock:
                self.failures.append(exc)
            if self.on_failure is not None:
                self.on_failure()  # the other writer may be waiting for a batch

    def _started(self) -> int:
        """The import run's id, recorded by the first batch (after the header was read)."""
        with self._lock:
            if self._import_id is None:
                with self._session_factory() as session:
                    self._import_id = start_import(
                        session,
                        self._list_id,
                        file_name=self._file_name,
                        sha256=self._sha256,
                        source=self._source,
                        legal_basis=self._legal_basis,
                    )
            return self._import_id


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


_READ_AHEAD = 1  # prepared batches waiting for each writer
_WRITERS = 2  # PostgreSQL connections writing a big file at once (this box has 2 cores)
_PARALLEL_MIN_BYTES = 1 << 20  # ~15,000 rows; smaller files are written by one connection
_DONE = object()


class _ReadAhead:
    """The file's prepared batches, split into ``streams`` by address, read by a background
    thread at most ``_READ_AHEAD`` batches ahead per stream (``threaded``), or one stream read
    in the caller's thread between batches.

    An exception in the reader (a bad header) is raised by every stream's iteration; if the
    writers stop early (an exception), leaving the ``with`` block stops the reader.
    """

    def __init__(
        self,
        source: ImportSource,
        batch_rows: int,
        mode: ImportMode,
        pepper: str,
        check_deliverability: bool,
        initial: SubscriptionStatus | None,
        *,
        threaded: bool,
        streams: int = 1,
    ) -> None:
        if streams > 1 and not threaded:
            raise ValueError("several streams need the reader thread")
        self._initial = initial
        self._threaded = threaded
        self._source = source
        self._batch_rows = batch_rows
        self._mode = mode
        self._pepper = pepper
        self._check_deliverability = check_deliverability
        self._queues: list[queue.Queue[object]] = [
            queue.Queue(maxsize=_READ_AHEAD) for _ in range(streams)
        ]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="import-reader", daemon=True)

    def __enter__(self) -> list[Iterator[PreparedBatch]]:
        if not self._threaded:
            return [self._prepared()]
        self._thread.start()
        return [self._batches(q) for q in self._queues]

    def __exit__(self, *exc_info: object) -> None:
        if not self._threaded:
            return
        self._stop.set()
        while self._thread.is_alive():  # unblock a reader waiting on a full queue
            for waiting in self._queues:
                with suppress(queue.Empty):
                    waiting.get(timeout=0.01)
        self._thread.join()
        for waiting in self._queues:  # a writer still waiting for a batch ends
            with suppress(queue.Full):
                waiting.put_nowait(_DONE)

    def stop(self) -> None:
        """Stop reading; every stream ends (at once, or after the batch it is waiting for)."""
        self._stop.set()

    def _batches(self, source: queue.Queue[object]) -> Iterator[PreparedBatch]:
        while True:
            try:
                item = source.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, PreparedBatch)
            yield item

    def _prepare(self, batch: list[Row | RowError]) -> PreparedBatch:
        return prepare_batch(batch, mode=self._mode, pepper=self._pepper, initial=self._initial)

    def _prepared(self) -> Iterator[PreparedBatch]:
        with self._source.open() as stream:
            rows = read_csv(stream, check_deliverability=self._check_deliverability)
            for batch in batches(rows, self._batch_rows):
                yield self._prepare(batch)

    def _put(self, stream: int, item: object) -> bool:
        while not self._stop.is_set():
            with suppress(queue.Full):
                self._queues[stream].put(item, timeout=0.05)
                return True
        return False

    def _read(self) -> None:
        try:
            if len(self._queues) == 1:
                for prepared in self._prepared():
                    if not self._put(0, prepared):
                        return
            elif not self._read_split():
                return
        except BaseException as exc:  # handed to the writers, which raise it
            for stream in range(len(self._queues)):
                self._put(stream, exc)
            return
        for stream in range(len(self._queues)):
            self._put(stream, _DONE)

    def _read_split(self) -> bool:
        """Route every row by its address (an error row: anywhere); False if stopped."""
        count = len(self._queues)
        pending: list[list[Row | RowError]] = [[] for _ in range(count)]
        with self._source.open() as stream:
            for row in read_csv(stream, check_deliverability=self._check_deliverability):
                n = row.line % count if isinstance(row, RowError) else hash(row.email) % count
                pending[n].append(row)
                if len(pending[n]) >= self._batch_rows:
                    if not self._put(n, self._prepare(pending[n])):
                        return False
                    pending[n] = []
        for n, rest in enumerate(pending):
            if rest and not self._put(n, self._prepare(rest)):
                return False
        return True


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch with everything that needs no database done: deduplicated, hashed, encoded."""

    unique: dict[str, Row]  # normalised address -> its row (the first, or the last if upsert)
    repeated: int  # rows whose address came earlier in the batch
    errors: tuple[RowError, ...]
    hashes: dict[str, str]  # erasure hash -> address
    encoded: dict[str, str]  # address -> attributes as JSON text
    # With ``initial`` given: the stage rows (COPY text format) of the whole batch as new
    # subscribers with that initial subscription status; what a first import writes, built
    # by the reader thread so that the writer only sends it.
    initial: SubscriptionStatus | None = None
    copy_text: str | None = None


def prepare_batch(
    rows: Iterable[Row | RowError],
    *,
    mode: ImportMode,
    pepper: str,
    initial: SubscriptionStatus | None = None,
) -> PreparedBatch:
    errors: list[RowError] = []
    unique: dict[str, Row] = {}
    repeated = 0
    for row in rows:
        if isinstance(row, RowError):
            errors.append(row)
        elif row.email in unique:
            repeated += 1
            if mode is ImportMode.UPSERT:  # the later line wins, as it would across batches
                unique[row.email] = row
        else:
            unique[row.email] = row
    encoded = {email: _encode_attributes(row.attributes) for email, row in unique.items()}
    copy_text = None
    if initial is not None:
        copy_text = "".join(
            _new_subscriber_line(row, encoded[email], initial) for email, row in unique.items()
        )
    keyed = erasure_hasher(pepper)
    return PreparedBatch(
        unique,
        repeated,
        tuple(errors),
        {keyed(email): email for email in unique},
        encoded,
        initial,
        copy_text,
    )


_ENCODED_CACHE_SIZE = 4_096  # distinct attribute sets remembered (a file repeats a few)
_encoded_cache: dict[tuple[tuple[str, Any], ...], str] = {}


def _encode_attributes(attributes: dict[str, Any]) -> str:
    """``attributes`` as compact JSON text; flat sets (the usual CSV columns) are cached."""
    key = tuple(attributes.items())
    try:
        return _encoded_cache[key]
    except KeyError:
        pass
    except TypeError:  # a nested value (from an "attributes" JSON cell): not hashable
        return json.dumps(attributes, ensure_ascii=False, separators=(",", ":"))
    encoded = json.dumps(attributes, ensure_ascii=False, separators=(",", ":"))
    if len(_encoded_cache) >= _ENCODED_CACHE_SIZE:
        _encoded_cache.clear()
    _encoded_cache[key] = encoded
    return encoded


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_text(value: str) -> str:
    """``value`` escaped for COPY's text format (backslash, tab, line breaks)."""
    if _COPY_SPECIAL.search(value) is None:
        return value
    return value.translate(_COPY_ESCAPES)


def _new_subscriber_line(row: Row, attributes: str, initial: SubscriptionStatus) -> str:
    """``_copy_line(_new_subscriber(...))``, written out: the reader's work for every row."""
    subscription = SubscriptionStatus.UNSUBSCRIBED if row.unsubscribed else initial
    consent = subscription is not SubscriptionStatus.UNSUBSCRIBED and (
        row.status is SubscriberStatus.ACTIVE
    )
    return (
        f"{_copy_text(row.email)}\t\\N\t{_copy_text(row.name)}\t{_copy_text(attributes)}\t"
        f"{row.status.value}\tt\t{subscription.value}\t{'t' if consent else 'f'}\n"
    )


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_line(values: tuple[Any, ...]) -> str:
    """One row in COPY's text format (what psycopg's ``write_row`` sends), for stage rows."""
    cells = []
    for value in values:
        if value is None:
            cells.append("\\N")
        elif isinstance(value, bool):
            cells.append("t" if value else "f")
        else:
            cells.append(_copy_text(str(value)))
    return "\t".join(cells) + "\n"


def import_batch(
    session: Session,
    list_id: int,
    rows: Iterable[Row | RowError] | PreparedBatch,
    *,
    mode: ImportMode,
    reactivate_suppressed: bool,
    source: ConsentSource,
    pepper: str,
    now: dt.datetime | None = None,
    import_id: int | None = None,
) -> BatchCounts:
    """Write one batch into list ``list_id``; idempotent, never commits.

    A suppressed subscriber (not ``active``, or unsubscribed from this list) stays suppressed
    and is reported as an error, unless ``reactivate_suppressed``. An erased address is always
    refused (LAW-06): the erasure is the subscriber's decision, not the importer's.

    Every subscription created records its consent (``source``, ``now``, ``import_id``); a
    re-activation or re-subscription of an existing one is a ``ConsentEvent``. Without
    ``import_id`` the batch is recorded as an import run of its own, with no file.
    """
    now = now or utcnow()
    mailing_list = session.get(MailingList, list_id)
    if mailing_list is None:
        raise NotFound(f"no list with id {list_id}")
    if import_id is None:
        import_id = start_import(
            session, list_id, file_name="", sha256=None, source=source, now=now
        )
    initial = _initial_status(mailing_list)

    batch = (
        rows if isinstance(rows, PreparedBatch) else prepare_batch(rows, mode=mode, pepper=pepper)
    )
    errors = list(batch.errors)
    unique = dict(batch.unique)
    for email in _erased(session, batch.hashes):
        errors.append(RowError(unique.pop(email).line, ERASED_ERROR))

    plan = _plan(session, list_id, unique, batch.encoded, mode, reactivate_suppressed, initial)
    errors.extend(plan.errors)
    _apply_existing(session, list_id, plan, initial, now)
    staged: Sequence[tuple[Any, ...]] | str
    if (
        batch.copy_text is not None
        and batch.initial is initial
        and session.get_bind().dialect.name == "postgresql"
        and len(plan.new_rows) == len(batch.unique)  # all new: nothing erased, nothing known
    ):
        staged = batch.copy_text
    else:
        staged = [_new_subscriber(row, batch.encoded[row.email], initial) for row in plan.new_rows]
        staged.extend(plan.staged)
    created = _write_staged(session, list_id, staged, source, now, import_id)
    errors.sort(key=lambda e: e.line)
    return BatchCounts(
        created=created,
        updated=plan.updated,
        unchanged=batch.repeated + plan.unchanged + (len(plan.new_rows) - created),
        errors=tuple(errors),
    )


def _initial_status(mailing_list: MailingList) -> SubscriptionStatus:
    if mailing_list.double_opt_in:
        return SubscriptionStatus.UNCONFIRMED
    return SubscriptionStatus.CONFIRMED


def _erased(session: Session, by_hash: dict[str, str]) -> list[str]:
    if not by_hash:
        return []
    found = session.scalars(
        sa.select(Suppression.email_hash).where(_one_of(session, Suppression.email_hash, by_hash))
    )
    return [by_hash[h] for h in found]


def _one_of(
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


@dataclass(slots=True)
class _Plan:
    staged: list[tuple[Any, ...]] = field(default_factory=list)  # known rows for the stage
    new_rows: list[Row] = field(default_factory=list)  # rows of new subscribers
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    field_updates: list[dict[str, Any]] = field(default_factory=list)
    reactivate: list[int] = field(default_factory=list)  # subscriber ids
    resubscribe: list[int] = field(default_factory=list)  # subscriber ids


def _plan(
    session: Session,
    list_id: int,
    unique: dict[str, Row],
    encoded: dict[str, str],
    mode: ImportMode,
    reactivate: bool,
    initial: SubscriptionStatus,
) -> _Plan:
    """Decide, row by row, what the batch does; only the addresses already known are read."""
    plan = _Plan()
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
                .where(_one_of(session, Subscriber.email, unique))
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
                plan.errors.append(RowError(row.line, _suppressed_error(known.status)))
                continue
            plan.reactivate.append(known.id)
            changed = reactivated = True
        subscription_status = known.subscription_status
        if subscription_status is SubscriptionStatus.UNSUBSCRIBED:
            if not reactivate:
                plan.errors.append(RowError(row.line, _suppressed_error(None)))
                continue
            plan.resubscribe.append(known.id)
            plan.staged.append(
                _staged(row, encoded[email], known.id, subscription=None, consent=True)
            )
            changed = True
        elif subscription_status is None:
            subscription = SubscriptionStatus.UNSUBSCRIBED if row.unsubscribed else initial
            plan.staged.append(
                _staged(
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
                _staged(row, encoded[email], known.id, subscription=None, consent=True)
            )
        if mode is ImportMode.UPSERT and (row.name, row.attributes) != (
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


def _suppressed_error(status: SubscriberStatus | None) -> str:
    what = "unsubscribed from this list" if status is None else f"{status}"
    return f"subscriber is {what}; left suppressed (--reactivate-suppressed re-subscribes)"


def _new_subscriber(row: Row, attributes: str, initial: SubscriptionStatus) -> tuple[Any, ...]:
    subscription = SubscriptionStatus.UNSUBSCRIBED if row.unsubscribed else initial
    return _staged(
        row,
        attributes,
        None,
        subscription=subscription,
        consent=subscription is not SubscriptionStatus.UNSUBSCRIBED
        and row.status is SubscriberStatus.ACTIVE,
    )


def _staged(
    row: Row,
    attributes: str,
    subscriber_id: int | None,
    *,
    subscription: SubscriptionStatus | None,
    consent: bool,
) -> tuple[Any, ...]:
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


def _apply_existing(
    session: Session,
    list_id: int,
    plan: _Plan,
    initial: SubscriptionStatus,
    now: dt.datetime,
) -> None:
    """Updates to subscribers already known: rare on a first import, so executemany is fine."""
    if plan.field_updates:
        session.execute(
            sa.update(Subscriber), [{**u, "updated_at": now} for u in plan.field_updates]
        )
    if plan.reactivate:
        session.execute(
            sa.update(Subscriber)
            .where(Subscriber.id.in_(plan.reactivate))
            .values(status=SubscriberStatus.ACTIVE, updated_at=now)
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
    staged: Sequence[tuple[Any, ...]] | str,
    source: ConsentSource,
    now: dt.datetime,
    import_id: int,
) -> int:
    """Load ``staged`` (rows, or rows already in COPY text format) into the temporary table and
    insert from it; return the number of subscribers created."""
    if not staged:
        return 0
    # The run states the legal basis of every row (--legal-basis): one lookup per batch.
    legal_basis = session.scalar(
        sa.select(SubscriberImport.legal_basis).where(SubscriberImport.id == import_id)
    )
    basis = None if legal_basis is None else legal_basis.value
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect not in _STAGE_DDL:
        raise InvalidInput(f"importing is not supported on {dialect}")
    if dialect == "postgresql":
        connection.exec_driver_sql(_POSTGRESQL_RESET_STAGE)
        # COPY is ~4x faster than executemany on PostgreSQL (docs/benchmarks.md).
        dbapi = connection.connection.driver_connection
        assert dbapi is not None
        with (
            dbapi.cursor() as cursor,
            cursor.copy(
                f"COPY subscriber_import_stage ({', '.join(_STAGE_COLUMNS)}) FROM STDIN"
            ) as copy,
        ):
            if isinstance(staged, str):
                copy.write(staged)
            else:
                for values in staged:
                    copy.write_row(values)
        created = connection.execute(
            _POSTGRESQL_WRITE.bindparams(sa.bindparam("now", type_=UtcDateTime())),
            {
                "now": now,
                "list_id": list_id,
                "action": ConsentAction.SUBSCRIBE.value,
                "source": source.value,
                "import_id": import_id,
                "legal_basis": basis,
            },
        ).scalar_one()
        return int(created)
    assert not isinstance(staged, str), "COPY text is for PostgreSQL only"
    connection.exec_driver_sql(_STAGE_DDL[dialect])
    connection.exec_driver_sql("DELETE FROM subscriber_import_stage")
    connection.exec_driver_sql(
        "INSERT INTO subscriber_import_stage VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(staged)
    )
    return _write_staged_sqlite(connection, list_id, source, now, import_id, basis)


def _write_staged_sqlite(
    connection: sa.Connection,
    list_id: int,
    source: ConsentSource,
    now: dt.datetime,
    import_id: int,
    legal_basis: str | None,
) -> int:
    """The inserts one by one; joining on email is an index lookup per staged row here."""
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
