"""Subscriber CSV files: a streaming reader of validated rows, and the export format.

Pure: bytes in, ``Row`` / ``RowError`` out, one at a time, so a file of any size is read in
constant memory. The file is UTF-8 (a BOM is fine). Columns, matched case-insensitively:

- ``email`` (required): normalised by ``address.normalise_email``;
- ``name``: kept as given (commas, quotes), refused if it holds a control character;
- ``status``, ``subscription_status`` (as written by the export): only a suppression is taken
  from them (``unsubscribed``, ``bounced`` ...), so an export re-imported elsewhere never
  re-subscribes someone who had left; ``active`` / ``confirmed`` are not taken from a file;
- ``attributes``: a JSON object (as written by the export), merged with
- any other column: an attribute named after the column; an empty cell sets nothing.

A bad row (empty or invalid address, control character in the name, bytes that are not UTF-8,
more or fewer cells than the header) is a ``RowError`` with its line and the reading goes on.
A file whose header lacks ``email`` raises ``InvalidInput`` before any row is produced.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from newsletter.errors import InvalidInput
from newsletter.subscribers.address import check_name, forget_domains, normalise_email
from newsletter.subscribers.models import SubscriberStatus, SubscriptionStatus

EXPORT_COLUMNS = ("email", "name", "status", "subscription_status", "attributes")
RESERVED_COLUMNS = frozenset(EXPORT_COLUMNS)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Row:
    """One valid data row; ``line`` is the 1-based line of the file where the record starts."""

    line: int
    email: str  # normalised, lower-case
    name: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    # A suppression carried by the file (an export of unsubscribed or bounced people).
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    unsubscribed: bool = False  # subscription_status "unsubscribed" in the file


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    error: str


def read_csv(stream: IO[bytes], *, check_deliverability: bool = False) -> Iterator[Row | RowError]:
    """Yield every data row of a subscriber CSV, valid or not, in file order."""
    if check_deliverability:
        forget_domains()
    # surrogateescape: a byte that is not UTF-8 becomes a lone surrogate instead of stopping
    # the whole file; the row that holds one is reported below and the rest goes on.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(
            "the file is empty: expected a header line with an email column"
        ) from None
    columns = [_column_name(cell) for cell in header]
    if "email" not in columns:
        raise InvalidInput("the header has no 'email' column", line=1)
    if len(set(columns)) != len(columns):
        raise InvalidInput("the header names a column twice", line=1)
    email_at = columns.index("email")
    width = len(columns)

    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the csv module's size limit
            start, line = line, reader.line_num + 1
            yield RowError(start, f"unreadable CSV: {exc}")
            continue
        start, line = line, reader.line_num + 1
        if not cells:
            continue  # a blank line
        if len(cells) != width:
            yield RowError(start, f"expected {width} fields as in the header, found {len(cells)}")
            continue
        yield _row(start, columns, cells, email_at, check_deliverability)


def _column_name(cell: str) -> str:
    return cell.strip().lower()


def _row(
    line: int, columns: list[str], cells: list[str], email_at: int, check_deliverability: bool
) -> Row | RowError:
    for cell in cells:
        if not cell.isascii() and _has_undecodable_bytes(cell):
            return RowError(line, "the line is not valid UTF-8")
    try:
        email = normalise_email(cells[email_at], check_deliverability=check_deliverability)
        name = ""
        attributes: dict[str, Any] = {}
        status = SubscriberStatus.ACTIVE
        unsubscribed = False
        for column, cell in zip(columns, cells, strict=True):
            if column == "email" or cell == "":
                continue
            if column == "name":
                name = check_name(cell)
            elif column == "status":
                status = _suppression(cell)
            elif column == "subscription_status":
                unsubscribed = _subscription_status(cell) is SubscriptionStatus.UNSUBSCRIBED
            elif column == "attributes":
                attributes.update(_json_object(cell))
            else:
                attributes[column] = cell
    except InvalidInput as exc:
        return RowError(line, str(exc))
    return Row(line, email, name, attributes, status, unsubscribed)


def _has_undecodable_bytes(cell: str) -> bool:
    try:
        cell.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _suppression(cell: str) -> SubscriberStatus:
    try:
        return SubscriberStatus(cell.strip().lower())
    except ValueError:
        known = ", ".join(s.value for s in SubscriberStatus)
        raise InvalidInput(f"unknown status {cell!r} (expected one of {known})") from None


def _subscription_status(cell: str) -> SubscriptionStatus:
    try:
        return SubscriptionStatus(cell.strip().lower())
    except ValueError:
        known = ", ".join(s.value for s in SubscriptionStatus)
        raise InvalidInput(
            f"unknown subscription status {cell!r} (expected one of {known})"
        ) from None


def _json_object(cell: str) -> dict[str, Any]:
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the attributes column is not JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("the attributes column must be a JSON object")
    return value


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), holding one list at a time."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def export_header() -> list[str]:
    return list(EXPORT_COLUMNS)


def export_row(
    email: str, name: str, status: str, subscription_status: str, attributes: dict[str, Any]
) -> list[str]:
    """One exported line; ``read_csv`` reads it back to the same subscriber."""
    encoded = json.dumps(attributes, ensure_ascii=False, sort_keys=True) if attributes else ""
    return [email, name, status, subscription_status, encoded]
