"""Reading the file ahead of the writers: prepared batches from a thread, split by address.

On PostgreSQL a reader thread parses, validates and prepares the batches (``prepare``) while
the database writes (psycopg releases the GIL while it waits), at most ``READ_AHEAD`` batches
ahead per writer, so memory stays flat. With several writers the rows are split by address,
so that every line of one address goes to the same writer, in file order. On SQLite (one
writer at a time) the file is read in the writer's thread between batches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import suppress

from newsletter.subscribers.csvfile import Row, RowError, batches, read_csv
from newsletter.subscribers.importer.options import ImportOptions
from newsletter.subscribers.importer.prepare import PreparedBatch, prepare_batch
from newsletter.subscribers.sources import ImportSource
from newsletter.subscribers.statuses import SubscriptionStatus

READ_AHEAD = 1  # prepared batches waiting for each writer
_DONE = object()


class ReadAhead:
    """The file's prepared batches, split into ``streams`` by address, read by a background
    thread at most ``READ_AHEAD`` batches ahead per stream (``threaded``), or one stream read
    in the caller's thread between batches.

    ``initial``: the status of the subscriptions a new subscriber gets on the list, for the
    ready-made COPY text of each batch (PostgreSQL; ``None``: none is built).

    An exception in the reader (a bad header) is raised by every stream's iteration; if the
    writers stop early (an exception), leaving the ``with`` block stops the reader.
    """

    def __init__(
        self,
        source: ImportSource,
        options: ImportOptions,
        *,
        pepper: str,
        batch_rows: int,
        initial: SubscriptionStatus | None,
        threaded: bool,
        streams: int = 1,
    ) -> None:
        if streams > 1 and not threaded:
            raise ValueError("several streams need the reader thread")
        self._source = source
        self._options = options
        self._pepper = pepper
        self._batch_rows = batch_rows
        self._initial = initial
        self._threaded = threaded
        self._queues: list[queue.Queue[object]] = [
            queue.Queue(maxsize=READ_AHEAD) for _ in range(streams)
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
        return prepare_batch(
            batch, mode=self._options.mode, pepper=self._pepper, initial=self._initial
        )

    def _prepared(self) -> Iterator[PreparedBatch]:
        with self._source.open() as stream:
            rows = read_csv(stream, check_deliverability=self._options.check_deliverability)
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
            rows = read_csv(stream, check_deliverability=self._options.check_deliverability)
            for row in rows:
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
