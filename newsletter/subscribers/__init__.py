"""The subscriber stage: lists, subscribers, consent, suppression, imports, segments.

- ``statuses`` (pure): the statuses, their transition tables and the other value types.
- ``models``: the tables (re-exporting ``statuses``).
- ``address`` (pure): ``normalise_email``, ``check_name``, ``erasure_hash``,
  ``delivery_warning`` (an address only a relay with SMTPUTF8 can deliver).
- ``csvfile`` (pure): ``read_csv`` streams ``Row`` (with its ``warning``, if any) / ``RowError``;
  ``RowWarning``; the export format.
- ``importer/``: ``import_batch`` (one idempotent batch, caller's transaction) and ``run_import``
  (the file, a transaction per batch), with the ``ImportOptions`` they take; its
  ``__init__`` lists its modules by job.
- ``sources``: where a CSV's bytes come from: ``file`` (read where it is) and ``upload`` (stored
  in the database in chunks, for a worker on any host).
- ``importjob``: an import as a job row: options, progress, counts, row errors and warnings
  that any process can report (``subscribers import-status``).
- ``service``: lists, lookups, ``mailable_subscribers`` (for the delivery stage), GDPR access
  and erasure, list export.
- ``consent``: ``subscribe``, ``confirm``, ``unsubscribe``, ``unsubscribe_by_token``,
  ``purge_unconfirmed``.
- ``tokens`` (pure): signed unsubscribe, confirmation and test-send tokens, List-Unsubscribe
  URIs.
- ``expression`` (pure) and ``segments``: the segment filter language and its SQL.
- ``import_runs``: ``run_import_job`` and ``import_file``, an import job run from start to end
  (what a worker task, and the CLI without a broker, call), on sessions the caller gives.
- ``audit``: ``change_status``, the one way a subscriber's status changes, with its audit row.
"""
