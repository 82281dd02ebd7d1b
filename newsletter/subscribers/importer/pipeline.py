"""The import of a whole file: read ahead, write batch after batch, commit each, count.

``run_import`` reads the file (a path here, or any ``sources.ImportSource``: the upload a worker
reads from the database) and commits batch after batch (``batch.import_batch``). A kill
mid-import leaves whole batches committed; running the same import again adds nothing twice
(the unique normalised address decides), and reports the rows already there as unchanged.

On PostgreSQL a reader thread prepares the batches (including their COPY text) while the
database writes (``readahead``), and a big file is written by several connections at once,
split by address (``writer_count``). Memory: a few batches, the per-domain cache of
``address.normalise_email``, a bounded cache of encoded attribute sets and at most
``MAX_ERRORS_KEPT`` errors and ``MAX_WARNINGS_KEPT`` warnings, whatever the size of the file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from newsletter.db import SessionFactory, get_or_raise
from newsletter.subscribers.csvfile import RowError, RowWarning, read_csv
from newsletter.subscribers.importer.batch import (
    BatchCounts,
    import_batch,
    initial_status,
    start_import,
)
from newsletter.subscribers.importer.options import ImportOptions
from newsletter.subscribers.importer.prepare import PreparedBatch
from newsletter.subscribers.importer.readahead import ReadAhead
from newsletter.subscribers.models import MailingList
from newsletter.subscribers.sources import ImportSource
from newsletter.subscribers.sources.file import FileSource

BATCH_ROWS = 10_000
MAX_ERRORS_KEPT = 1_000  # error entries kept in memory and reported; error_count has them all
MAX_WARNINGS_KEPT = 1_000  # the same for warnings; warning_count has them all
PARALLEL_MIN_BYTES = 1 << 20  # ~15,000 rows; smaller files are written by one connection
# Past a few writers the one reader thread, which prepares every batch in Python, cannot keep
# them busy; each extra writer would only hold one more database connection.
MAX_WRITERS = 4


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    errors: tuple[RowError, ...]  # the first MAX_ERRORS_KEPT, in file order
    error_count: int  # all of them
    # Rows imported all the same that the operator should look at (``csvfile.RowWarning``):
    # the first MAX_WARNINGS_KEPT in file order, and how many there were.
    warnings: tuple[RowWarning, ...] = ()
    warning_count: int = 0

    def as_document(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [{"line": e.line, "error": e.error} for e in self.errors],
            "error_count": self.error_count,
            "warnings": [{"line": w.line, "warning": w.warning} for w in self.warnings],
            "warning_count": self.warning_count,
        }


def writer_count() -> int:
    """How many PostgreSQL connections write a big file at once: one per core this process may
    use (its CPU affinity, which a container's cpuset limits), from 1 to ``MAX_WRITERS``.

    A writer spends its time waiting on its server backend (psycopg releases the GIL), so one
    writer per core keeps the cores busy while the reader thread prepares the next batches; on
    one core a second writer would only compete with the reader for it.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS and Windows have no CPU affinity call
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WRITERS))


def run_import(
    sessions: SessionFactory,
    file: Path | ImportSource,
    list_id: int,
    options: ImportOptions | None = None,
    *,
    pepper: str,
    batch_rows: int = BATCH_ROWS,
    writers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import the CSV ``file`` into list ``list_id`` as ``options`` say, committing after every
    batch.

    ``file`` is a path on this machine or an ``ImportSource`` (``sources.upload``: the file
    the CLI stored in the database, for a worker on another host).

    ``sessions()`` must return a context manager that yields a session and commits it
    when the block ends (``sessionmaker.begin``): the caller owns the database, the importer
    decides where the transactions end. Why a transaction per batch and not one for the file:
    a million-row import in one transaction holds locks and an ever larger undo log (or
    SQLite's write lock) for minutes, and a crash at row 999,999 would throw everything away.
    Per batch, a killed import keeps what it had done, and because ``import_batch`` is
    idempotent the fix is to run the same import again. ``pepper`` is the secret key (erased
    addresses are stored as its HMAC). ``progress`` is called with the number of rows done
    after each committed batch (from a writer thread on PostgreSQL, never two calls at once).

    The run is recorded as a ``SubscriberImport`` (file name, SHA-256 of its bytes, list,
    source, the legal basis the options state for its rows, time) once the header has been
    read; the subscriptions it creates point at it and carry that legal basis.

    On PostgreSQL a file of ``PARALLEL_MIN_BYTES`` or more is written by ``writers``
    connections at once (default: ``writer_count()``): the rows are split by address, so
    every line of one address goes to the same writer, in file order (dedupe, "the later line
    wins" and the counts are as with one writer); each writer commits whole batches of its
    own share. On SQLite (one writer at a time) the file is read between batches, as the pause
    lets other writers in.
    """
    options = options or ImportOptions()
    csv_file = FileSource.checked(file) if isinstance(file, Path) else file
    sha256 = csv_file.sha256()
    with sessions() as session:
        read_ahead = session.get_bind().dialect.name == "postgresql"
        mailing_list = get_or_raise(session, MailingList, list_id, f"no list with id {list_id}")
        # For the reader's ready-made COPY rows; import_batch checks it against the list.
        initial = initial_status(mailing_list) if read_ahead else None
    parallel = read_ahead and csv_file.size >= PARALLEL_MIN_BYTES
    streams = (writers or writer_count()) if parallel else 1
    writer = BatchWriter(
        sessions,
        list_id,
        options,
        pepper=pepper,
        file_name=csv_file.name,
        sha256=sha256,
        progress=progress,
    )
    reader = ReadAhead(
        csv_file,
        options,
        pepper=pepper,
        batch_rows=batch_rows,
        initial=initial,
        threaded=read_ahead,
        streams=streams,
    )
    writer.on_failure = reader.stop
    with reader as batch_streams:
        if len(batch_streams) == 1:
            writer.write(batch_streams[0])  # a bad header raises here, before anything is written
        else:
            threads = [
                threading.Thread(
                    target=writer.write_guarded, args=(stream,), name=f"import-{n}", daemon=True
                )
                for n, stream in enumerate(batch_streams)
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


@dataclass(slots=True)
class Tally:
    """The running total of ``run_import``, frozen into an ``ImportResult`` at the end."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    warnings: list[RowWarning] = field(default_factory=list)
    warning_count: int = 0

    def add(self, counts: BatchCounts) -> None:
        self.created += counts.created
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.error_count += len(counts.errors)
        self.errors = _first_of_file(self.errors, counts.errors, MAX_ERRORS_KEPT)
        self.warning_count += len(counts.warnings)
        self.warnings = _first_of_file(self.warnings, counts.warnings, MAX_WARNINGS_KEPT)

    @property
    def rows(self) -> int:
        # A warned row is counted once already, as created, updated or unchanged.
        return self.created + self.updated + self.unchanged + self.error_count

    def result(self) -> ImportResult:
        return ImportResult(
            self.created,
            self.updated,
            self.unchanged,
            tuple(self.errors),
            self.error_count,
            tuple(self.warnings),
            self.warning_count,
        )


Noted = TypeVar("Noted", RowError, RowWarning)


def _first_of_file(kept: list[Noted], batch: tuple[Noted, ...], limit: int) -> list[Noted]:
    """The first ``limit`` of ``kept`` and ``batch`` (each in file order), in file order."""
    if not batch or (len(kept) >= limit and batch[0].line >= kept[-1].line):
        return kept
    # Several writers commit batches out of file order: keep the first lines of the file.
    merged = kept + list(batch)
    merged.sort(key=attrgetter("line"))
    return merged[:limit]


class BatchWriter:
    """Writes streams of prepared batches, a transaction per batch; shared by the writers."""

    def __init__(
        self,
        sessions: SessionFactory,
        list_id: int,
        options: ImportOptions,
        *,
        pepper: str,
        file_name: str,
        sha256: str,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._sessions = sessions
        self._list_id = list_id
        self._options = options
        self._pepper = pepper
        self._file_name = file_name
        self._sha256 = sha256
        self._progress = progress
        self._lock = threading.Lock()
        self._import_id: int | None = None
        self.tally = Tally()
        self.failures: list[BaseException] = []
        self.on_failure: Callable[[], None] | None = None  # e.g. stop the reader

    def write(self, batches: Iterable[PreparedBatch]) -> None:
        for batch in batches:
            if self.failures:
                return  # another writer failed: stop at a batch boundary
            import_id = self._started()
            with self._sessions() as session:
                counts = import_batch(
                    session,
                    self._list_id,
                    batch,
                    self._options,
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
                self.on_failure()  # the other writers may be waiting for a batch

    def _started(self) -> int:
        """The import run's id, recorded by the first batch (after the header was read)."""
        with self._lock:
            if self._import_id is None:
                with self._sessions() as session:
                    self._import_id = start_import(
                        session,
                        self._list_id,
                        file_name=self._file_name,
                        sha256=self._sha256,
                        source=self._options.source,
                        legal_basis=self._options.legal_basis,
                    )
            return self._import_id
