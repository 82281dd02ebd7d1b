"""A CSV file stored in the database by the CLI, read back by a worker on any host.

``store_upload`` writes the file as ``import_chunks`` rows of ``CHUNK_BYTES`` in the caller's
transaction (the CLI's, which queues the job only after it committed), so a worker never needs
the operator's path, disk or host. ``UploadSource.open`` streams the chunks back in order,
one short transaction and one chunk in memory at a time. ``delete_upload`` removes them once
the job is over (done or failed); a job the broker delivers again after a worker died still
finds them.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.db import SessionFactory
from newsletter.errors import NotFound
from newsletter.subscribers.models import ImportChunk
from newsletter.subscribers.sources.file import FileSource

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Big enough that a million-row file (~60 MB) is ~60 round trips, small enough for any
# database's row and packet limits (PostgreSQL bytea: 1 GB; MySQL's default packet: 64 MB).
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class StoredFile:
    size: int
    sha256: str


def store_upload(
    session: Session, job_id: int, source: FileSource, *, chunk_bytes: int = CHUNK_BYTES
) -> StoredFile:
    """Copy the file into the database as the chunks of job ``job_id``; never commits."""
    digest = hashlib.sha256()
    size = 0
    for seq, chunk in enumerate(source.chunks(chunk_bytes)):
        session.execute(sa.insert(ImportChunk), [{"job_id": job_id, "seq": seq, "data": chunk}])
        digest.update(chunk)
        size += len(chunk)
    return StoredFile(size, digest.hexdigest())


def delete_upload(session: Session, job_id: int) -> None:
    session.execute(sa.delete(ImportChunk).where(ImportChunk.job_id == job_id))


@dataclass(frozen=True, slots=True)
class UploadSource:
    """The stored file of job ``job_id``; ``sessions()`` yields a session per chunk."""

    sessions: SessionFactory
    job_id: int
    name: str
    size: int
    digest: str

    def sha256(self) -> str:
        return self.digest  # computed while it was stored: no second pass over the chunks

    def open(self) -> IO[bytes]:
        return io.BufferedReader(_ChunkReader(self.sessions, self.job_id, self.size))


class _ChunkReader(io.RawIOBase):
    """The chunks of one upload as a raw binary stream, fetched one after another."""

    def __init__(
        self,
        sessions: SessionFactory,
        job_id: int,
        size: int,
    ) -> None:
        super().__init__()
        self._sessions = sessions
        self._job_id = job_id
        self._size = size
        self._next_seq = 0
        self._chunk = memoryview(b"")
        self._offset = 0
        self._delivered = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._offset >= len(self._chunk):
            if self._delivered >= self._size:
                return 0
            self._chunk = memoryview(self._fetch())
            self._offset = 0
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._chunk) - self._offset)
        target[:count] = self._chunk[self._offset : self._offset + count]
        self._offset += count
        self._delivered += count
        return count

    def _fetch(self) -> bytes:
        with self._sessions() as session:
            data = session.scalar(
                sa.select(ImportChunk.data).where(
                    ImportChunk.job_id == self._job_id, ImportChunk.seq == self._next_seq
                )
            )
        if not data:
            # Deleted under us (the job was finished by another worker) or never stored whole.
            raise NotFound(
                f"the uploaded file of import job {self._job_id} is incomplete: chunk "
                f"{self._next_seq} is missing; run the import again"
            )
        self._next_seq += 1
        return data
