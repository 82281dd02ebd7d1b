"""A CSV file on this machine, read where it is."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from newsletter.errors import InvalidInput, NotFound, file_error

READ_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class FileSource:
    path: Path
    size: int

    @classmethod
    def checked(cls, path: Path) -> FileSource:
        """The file at ``path``, if it is one; what it is instead (or that it is missing) as
        our error, before anything is stored or queued."""
        try:
            status = path.stat()
        except FileNotFoundError:
            raise NotFound(f"no such file: {path}") from None
        except OSError as exc:
            raise file_error("read", path, exc) from exc
        if stat.S_ISDIR(status.st_mode):
            raise InvalidInput(f"{path} is a directory; give the CSV file in it")
        if not stat.S_ISREG(status.st_mode):
            raise InvalidInput(
                f"{path} is not a regular file (a device or a pipe); give a CSV file"
            )
        return cls(path, status.st_size)

    @property
    def name(self) -> str:
        return self.path.name

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks(READ_BYTES):
            digest.update(chunk)  # hashlib releases the GIL for large chunks
        return digest.hexdigest()

    def open(self) -> IO[bytes]:
        try:
            return self.path.open("rb")
        except OSError as exc:
            raise file_error("read", self.path, exc) from exc

    def chunks(self, size: int) -> Iterator[bytes]:
        """The file's bytes, ``size`` at a time (the last piece may be shorter)."""
        try:
            with self.path.open("rb") as stream:
                while chunk := stream.read(size):
                    yield chunk
        except OSError as exc:
            raise file_error("read", self.path, exc) from exc
