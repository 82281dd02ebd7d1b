"""The subscriber stage: lists, subscribers, consent, suppression, imports, segments.

- ``models``: the tables and the status transition tables.
- ``address`` (pure): ``normalise_email``, ``check_name``, ``erasure_hash``.
- ``csvfile`` (pure): ``read_csv`` streams ``Row`` / ``RowError``; the export format.
- ``importer``: ``import_batch`` (one idempotent batch, caller's transaction) and ``run_import``
  (the file, a transaction per batch).
- ``sources``: where a CSV's bytes come from: ``file`` (read where it is) and ``upload`` (stored
  in the database in chunks, for a worker on any host).
- ``importjob``: an import as a job row: options, progress, counts and row errors that any
  process can report (``subscribers import-status``).
- ``service``: lists, lookups, ``mailable_subscribers`` (for the delivery stage), GDPR access
  and erasure, list export.
- ``consent``: ``subscribe``, ``confirm``, ``unsubscribe``, ``unsubscribe_by_token``,
  ``purge_unconfirmed``.
- ``tokens`` (pure): signed unsubscribe, confirmation and test-send tokens, List-Unsubscribe
  URIs.
- ``expression`` (pure) and ``segments``: the segment filter language and its SQL.
- ``jobs``: ``run_import_job``, ``import_file`` and ``purge_stale_unconfirmed``, what worker
  tasks (and the CLI without a broker) call.
"""
