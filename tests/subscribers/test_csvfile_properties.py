"""Any subscriber file gives rows, row errors or our ``InvalidInput``, nothing else; and
whatever a cell holds, export → import gives it back."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

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

COLUMNS = ["email", "name", "status", "subscription_status", "attributes", "city", "Plan"]
CELL = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "ann@example.org",
            "ANN@Example.ORG",
            "v8@пример.рф",
            "bounced",
            "unsubscribed",
            '{"a": 1}',
            '{"a": NaN}',
            '{"a": "\\u0000"}',
            "[1, 2]",
            "=1+1",
            "'=1+1",
            "\x00",
        ]
    ),
)


def read_all(data: bytes) -> list[Row | RowError] | InvalidInput:
    try:
        return list(read_csv(io.BytesIO(data)))
    except InvalidInput as exc:
        return exc


@given(st.binary(max_size=2048))
def test_any_bytes_give_rows_row_errors_or_invalid_input(data: bytes) -> None:
    result = read_all(data)

    assert isinstance(result, list | InvalidInput)
    if isinstance(result, list):
        assert all(isinstance(r, Row | RowError) for r in result)


@given(
    st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=5, unique=True),
    st.lists(st.lists(CELL, max_size=6), max_size=8),
    st.sampled_from(["\n", "\r\n"]),
)
def test_any_table_gives_rows_or_row_errors_with_their_lines(
    header: list[str], rows: list[list[str]], line_end: str
) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=line_end).writerows([header, *rows])

    result = read_all(buffer.getvalue().encode("utf-8", "surrogatepass"))

    assert isinstance(result, list | InvalidInput)
    if isinstance(result, list):
        assert all(isinstance(r, Row | RowError) and r.line >= 2 for r in result)
        assert [r.line for r in result] == sorted(r.line for r in result)


@given(st.text())
def test_restore_undoes_neutralise_for_any_text(cell: str) -> None:
    assert restore(neutralise(cell)) == cell
    assert neutralise(cell)[:1] not in ("=", "+", "-", "@", "\t", "\r")


PRINTABLE = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30)


@given(PRINTABLE, st.dictionaries(PRINTABLE, PRINTABLE, max_size=3))
def test_an_exported_row_reads_back_whatever_its_name_and_attributes(
    name: str, attributes: dict[str, str]
) -> None:
    buffer = io.StringIO()
    row = export_row("ann@example.org", name, "active", "confirmed", attributes)
    csv.writer(buffer).writerows([export_header(), row])

    (read_back,) = read_all(buffer.getvalue().encode())

    assert isinstance(read_back, Row)
    assert (read_back.name, read_back.attributes) == (name, attributes)
