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

A valid row whose address only some relays can deliver (a non-ASCII local part: only through
SMTPUTF8) is a ``Row`` all the same, with its ``warning`` (``address.delivery_warning``).

A bad row (empty or invalid address, control character in the name or an attribute, bytes
that are not UTF-8, more or fewer cells than the header) is a ``RowError`` with its line and
the reading goes on. A file whose header lacks ``email``, or that is not UTF-8 at all (UTF-16,
UTF-32, Latin-1), raises ``InvalidInput`` naming its encoding before any row is produced.

Spreadsheets run a cell that starts with ``= + - @``, a tab or a carriage return as a formula
(CSV injection), so the export puts an apostrophe before such a cell, as OWASP recommends, and
the reader takes it off again: an exported file imports back to the same subscribers. (A cell
of a hand-made file that starts with an apostrophe and one of those characters, or with two
apostrophes, loses its first apostrophe too.)
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from newsletter.errors import InvalidInput
from newsletter.subscribers.address import (
    check_name,
    control_character,
    delivery_warning,
    forget_domains,
    normalise_email,
)
from newsletter.subscribers.statuses import SubscriberStatus, SubscriptionStatus

EXPORT_COLUMNS = ("email", "name", "status", "subscription_status", "attributes")
RESERVED_COLUMNS = frozenset(EXPORT_COLUMNS)
FORMULA_STARTS = frozenset("=+-@\t\r")  # OWASP "CSV Injection"
NEUTRALISER = "'"
NOT_UTF8_GUESS = "Latin-1 or Windows-1252?"  # what a file that is not UTF-8 usually is
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
    # Imported all the same: what the operator should know about the address (a relay without
    # SMTPUTF8 cannot deliver it), reported as a ``RowWarning``.
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    error: str


@dataclass(frozen=True, slots=True)
class RowWarning:
    """A row imported all the same, and why the operator should look at it."""

    line: int
    warning: str


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
    _check_encoding(header)
    columns = [_column_name(cell) for cell in header]
    for number, column in enumerate(columns, start=1):
        if control_character(column) is not None:
            raise InvalidInput(f"column {number} of the header holds a control character", line=1)
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


def _check_encoding(header: list[str]) -> None:
    """Refuse a file that is not UTF-8, saying what it is, before its first row is read.

    Read as UTF-8 with ``surrogateescape``, a UTF-16 or UTF-32 file starts with its byte-order
    mark as two escaped bytes, or (without one) holds a NUL beside every ASCII letter.
    """
    start = "".join(header)
    if start.startswith(("\udcff\udcfe\x00\x00", "\x00\x00\udcfe\udcff")):
        raise InvalidInput("the file is UTF-32; save it as UTF-8", line=1)
    if start.startswith(("\udcff\udcfe", "\udcfe\udcff")) or "\x00" in start:
        raise InvalidInput("the file is UTF-16; save it as UTF-8", line=1)
    if _has_undecodable_bytes(start):
        raise InvalidInput(f"the file is not UTF-8 ({NOT_UTF8_GUESS}); save it as UTF-8", line=1)


def _column_name(cell: str) -> str:
    return cell.strip().lower()


def neutralise(cell: str) -> str:
    """The cell as exported: an apostrophe before what a spreadsheet would run as a formula."""
    if cell[:1] in FORMULA_STARTS or restore(cell) != cell:
        return NEUTRALISER + cell
    return cell


def restore(cell: str) -> str:
    """The inverse of ``neutralise``: ``restore(neutralise(c)) == c`` for every ``c``."""
    if cell[:1] == NEUTRALISER and (cell[1:2] in FORMULA_STARTS or cell[1:2] == NEUTRALISER):
        return cell[1:]
    return cell


def _row(
    line: int, columns: list[str], cells: list[str], email_at: int, check_deliverability: bool
) -> Row | RowError:
    for cell in cells:
        if not cell.isascii() and _has_undecodable_bytes(cell):
            return RowError(
                line, f"the line is not UTF-8 ({NOT_UTF8_GUESS}); save the file as UTF-8"
            )
    try:
        email = normalise_email(restore(cells[email_at]), check_deliverability=check_deliverability)
        name = ""
        attributes: dict[str, Any] = {}
        status = SubscriberStatus.ACTIVE
        unsubscribed = False
        for column, raw_cell in zip(columns, cells, strict=True):
            if column == "email" or raw_cell == "":
                continue
            # The tests are inlined: this loop runs for every cell of a million-row file.
            cell = restore(raw_cell) if raw_cell[0] == NEUTRALISER else raw_cell
            if column == "name":
                name = check_name(cell)
            elif column == "status":
                status = _suppression(cell)
            elif column == "subscription_status":
                unsubscribed = _subscription_status(cell) is SubscriptionStatus.UNSUBSCRIBED
            elif column == "attributes":
                attributes.update(_json_object(cell))
            else:
                if not cell.isprintable():
                    _check_attribute(cell, column)
                attributes[column] = cell
    except InvalidInput as exc:
        return RowError(line, str(exc))
    # The ASCII test inlined, as above: nearly every address is ASCII, and this runs per row.
    warning = None if email.isascii() else delivery_warning(email)
    return Row(line, email, name, attributes, status, unsubscribed, warning)


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
        value = json.loads(cell, parse_constant=_not_a_number, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the attributes column is not JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise InvalidInput("the attributes column is nested too deeply") from exc
    except ValueError as exc:  # NaN, Infinity, an integer of thousands of digits
        raise InvalidInput(f"the attributes column is not JSON we can store: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("the attributes column must be a JSON object")
    # Walked without recursion: json.loads accepts deeper nesting than a recursive walk.
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item)  # the keys, which are strings
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            _check_attribute(item, "attributes")
            # A JSON escape such as \\ud800 is a lone surrogate, which no database can store.
            if not item.isascii() and _has_undecodable_bytes(item):
                raise InvalidInput("the attributes column holds text that is not valid Unicode")
    return value


def _not_a_number(constant: str) -> float:
    raise ValueError(f"{constant} is not a number JSON may hold")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large")
    return number


def _check_attribute(text: str, column: str) -> None:
    """Refuse an attribute that no database stores alike (PostgreSQL's JSON refuses a NUL)."""
    character = control_character(text)
    if character is not None:
        raise InvalidInput(
            f"the {column} column holds a control character (U+{ord(character):04X})"
        )


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
    """One exported line, safe to open in a spreadsheet; ``read_csv`` reads it back to the
    same subscriber."""
    encoded = json.dumps(attributes, ensure_ascii=False, sort_keys=True) if attributes else ""
    return [neutralise(cell) for cell in (email, name, status, subscription_status, encoded)]
