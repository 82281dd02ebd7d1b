"""Importing subscribers from a CSV file, split by job:

- ``options`` (pure): ``ImportOptions``, what an import is asked to do (the CLI's flags, kept
  with a job for its worker), and ``ImportMode``.
- ``pipeline``: ``run_import``, the whole file, a transaction per batch, the writer threads and
  the counts (``ImportResult``); ``check_file``, the header check before a job is queued.
- ``readahead``: the reader thread that prepares the batches ahead of the writers, split by
  address between them.
- ``prepare`` (pure): a batch deduplicated, hashed and encoded, with no database.
- ``batch``: ``import_batch``, one idempotent batch in the caller's transaction.
- ``plan``: what each row does to the subscribers already known (the only reads).
- ``stage`` (pure) and ``copy`` (pure): the rows staged for writing, and the same rows in
  PostgreSQL's COPY text format.
- ``postgresql``, ``sqlite``: each database's writer, from the stage into the tables.

Consent (LAW-04): every subscription an import creates carries its proof in write-once columns
(``consent_source``, ``consented_at``, ``import_id``) pointing at the ``SubscriberImport`` run
(file name, SHA-256 of the file, list, source, time). A later change (re-activating or
re-subscribing with ``reactivate_suppressed``) is a ``ConsentEvent``, like every other change.
"""

from newsletter.subscribers.importer.batch import ERASED_ERROR, BatchCounts, import_batch
from newsletter.subscribers.importer.options import ImportMode, ImportOptions
from newsletter.subscribers.importer.pipeline import ImportResult, check_file, run_import
from newsletter.subscribers.importer.prepare import PreparedBatch, prepare_batch

__all__ = [
    "ERASED_ERROR",
    "BatchCounts",
    "ImportMode",
    "ImportOptions",
    "ImportResult",
    "PreparedBatch",
    "check_file",
    "import_batch",
    "prepare_batch",
    "run_import",
]
