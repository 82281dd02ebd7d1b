"""Reading subscriber CSV files: every bad row reported with its line, the rest read."""

from __future__ import annotations

import io

import pytest

from newsletter.errors import InvalidInput
from newsletter.subscribers.csvfile import Row, RowError, export_header, export_row, read_csv
from newsletter.subscribers.models import SubscriberStatus


def read(data: bytes) -> list[Row | RowError]:
    return list(read_csv(io.BytesIO(data)))


def test_every_kind_of_bad_row_is_reported_with_its_line_and_the_rest_is_read() -> None:
    data = (
        b"email,name\n"
        b"good1@example.com,One\n"  # 2
        b",Empty address\n"  # 3
        b"not-an-address,Bad syntax\n"  # 4
        b'injected@example.com,"Ann\r\nBcc: victim@example.net"\n'  # 5-6: header injection
        b"latin1@example.com,Jos\xe9\n"  # 7: not UTF-8
        b"ragged@example.com,Too,Many\n"  # 8
        b"short@example.com\n"  # 9
        b"good2@example.com,Two\n"  # 10
    )

    rows = read(data)

    errors = {r.line: r.error for r in rows if isinstance(r, RowError)}
    assert [r.email for r in rows if isinstance(r, Row)] == [
        "good1@example.com",
        "good2@example.com",
    ]
    assert sorted(errors) == [3, 4, 5, 7, 8, 9]
    assert "empty" in errors[3]
    assert "control character" in errors[5]
    assert "UTF-8" in errors[7]
    assert "fields" in errors[8]
    assert "fields" in errors[9]
    assert next(r for r in rows if isinstance(r, Row) and r.email.startswith("good2")).line == 10


def test_a_row_only_an_smtputf8_relay_can_deliver_is_read_with_a_warning() -> None:
    rows = read("email\nann@example.com\nÜser@example.com\nv8@пример.рф\n".encode())

    assert [(r.line, r.email, r.warning) for r in rows if isinstance(r, Row)] == [
        (2, "ann@example.com", None),
        (
            3,
            "üser@example.com",
            "üser@example.com has a non-ASCII local part: only a relay that offers SMTPUTF8 "
            "can deliver it",
        ),
        (4, "v8@пример.рф", None),
    ]


def test_a_missing_email_column_refuses_the_whole_file() -> None:
    with pytest.raises(InvalidInput, match="email"):
        read(b"mail,name\na@example.com,A\n")


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(InvalidInput):
        read(b"")


def test_a_bom_and_windows_line_ends_are_accepted() -> None:
    rows = read("\ufeffEmail,Name\r\nann@example.com,Ann\r\n".encode())

    assert rows == [Row(2, "ann@example.com", "Ann")]


def test_names_with_commas_and_quotes_are_kept_as_given() -> None:
    rows = read(b'email,name\na@example.com,"Doe, John ""JD"""\n')

    assert isinstance(rows[0], Row)
    assert rows[0].name == 'Doe, John "JD"'


def test_other_columns_become_attributes_and_empty_cells_set_nothing() -> None:
    rows = read(b"email,name,City,plan\na@example.com,A,Almaty,\n")

    assert isinstance(rows[0], Row)
    assert rows[0].attributes == {"city": "Almaty"}


def test_a_quoted_line_break_keeps_the_following_line_numbers_right() -> None:
    rows = read(b'email,note\na@example.com,"two\nlines"\nb@x.example.com\n')

    assert [(r.line, type(r).__name__) for r in rows] == [(2, "Row"), (4, "RowError")]


def test_an_exported_row_reads_back_to_the_same_subscriber() -> None:
    line = export_row(
        "a@example.com", 'Doe, "A"', "bounced", "confirmed", {"city": "Bishkek", "n": "3"}
    )
    buffer = io.StringIO()
    import csv

    csv.writer(buffer).writerows([export_header(), line])

    (row,) = read(buffer.getvalue().encode())

    assert row == Row(
        2, "a@example.com", 'Doe, "A"', {"city": "Bishkek", "n": "3"}, SubscriberStatus.BOUNCED
    )


def test_reading_is_lazy() -> None:
    def endless() -> io.BytesIO:
        return io.BytesIO(b"email\n" + b"a@example.com\n" * 100_000)

    reader = read_csv(endless())

    assert isinstance(next(reader), Row)
