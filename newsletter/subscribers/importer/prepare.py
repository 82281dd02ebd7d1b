"""A batch made ready for the database: deduplicated, hashed, encoded. Pure.

Everything a batch needs that does not need the database is done here, so that on PostgreSQL
the reader thread does it while a writer waits on the server (``readahead``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from newsletter.subscribers.address import erasure_hasher
from newsletter.subscribers.csvfile import Row, RowError, RowWarning
from newsletter.subscribers.importer.copy import new_subscriber_line
from newsletter.subscribers.importer.options import ImportMode
from newsletter.subscribers.statuses import SubscriptionStatus


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
    # Every valid line whose address not every relay can deliver, repeated lines included.
    warnings: tuple[RowWarning, ...] = ()


def prepare_batch(
    rows: Iterable[Row | RowError],
    *,
    mode: ImportMode,
    pepper: str,
    initial: SubscriptionStatus | None = None,
) -> PreparedBatch:
    errors: list[RowError] = []
    warnings: list[RowWarning] = []
    unique: dict[str, Row] = {}
    repeated = 0
    for row in rows:
        if isinstance(row, RowError):
            errors.append(row)
            continue
        if row.warning is not None:
            warnings.append(RowWarning(row.line, row.warning))
        if row.email in unique:
            repeated += 1
            if mode is ImportMode.UPSERT:  # the later line wins, as it would across batches
                unique[row.email] = row
        else:
            unique[row.email] = row
    encoded = {email: _encode_attributes(row.attributes) for email, row in unique.items()}
    copy_text = None
    if initial is not None:
        copy_text = "".join(
            new_subscriber_line(row, encoded[email], initial) for email, row in unique.items()
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
        tuple(warnings),
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
