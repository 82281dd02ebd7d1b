"""Where the bytes of a subscriber CSV come from: the ``ImportSource`` protocol.

One module per adapter: ``file`` (a file on this machine, read where it is: the CLI without a
broker, the demo, the benchmark) and ``upload`` (a file the CLI stored in the database, in
chunks, so that a worker on any host can read it; deleted when the import job is over).
``run_import`` reads either the same way, so the import is equally fast and resumable.
"""

from __future__ import annotations

from typing import IO, Protocol


class ImportSource(Protocol):
    """A CSV file to import; declared here, used by ``importer.pipeline.run_import``."""

    @property
    def name(self) -> str:
        """The file name the import run records (its consent proof, LAW-04)."""
        ...

    @property
    def size(self) -> int:
        """Bytes in the file (a big file is written by two connections on PostgreSQL)."""
        ...

    def sha256(self) -> str:
        """The hex SHA-256 of the file's bytes."""
        ...

    def open(self) -> IO[bytes]:
        """A new stream over the file from its first byte; the caller closes it."""
        ...
