"""A bulletin is checked before anything of it is stored, the same on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.config import load_settings
from newsletter.content.bulletin import parse_bulletin
from newsletter.content.models import Article, BulletinImport, Rate, RateSnapshot
from newsletter.content.service import import_bulletin
from newsletter.content.validation import (
    MAX_BULLETIN_BYTES,
    MAX_DECIMAL_CHARS,
    check_bulletin,
    check_characters,
    check_field,
    check_size,
)
from newsletter.errors import InvalidInput
from tests.conftest import Run

HEAD = "• KGS/USD = 0.01144 0%\n11 December 2025\n\n"
ARTICLE = (
    "Kazakhstan and China Cement Strategic Partnership\n"
    "On July 3, the presidents met in Astana to sign the agreements.\n"
)
OTHER = (
    "Iran to Provide Kazakhstan with Irrigation Technology\n"
    "The ministers agreed on drip irrigation for the southern regions.\n"
)
TABLES = (Article, BulletinImport, RateSnapshot, Rate)


def counts(session: Session) -> dict[str, int]:
    return {
        model.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
        for model in TABLES
    }


def test_a_bulletin_over_the_limit_is_refused_before_it_is_parsed() -> None:
    check_size(b"x" * MAX_BULLETIN_BYTES)

    with pytest.raises(InvalidInput, match=r"larger than 5\.0 MB") as caught:
        check_size(b"x" * (MAX_BULLETIN_BYTES + 1))
    assert "NEWSLETTER_MAX_BULLETIN_BYTES (5242880 bytes)" in str(caught.value)


def test_the_size_limit_is_the_default_of_its_variable() -> None:
    assert load_settings({"NEWSLETTER_SECRET_KEY": "k" * 32}).max_bulletin_bytes == (
        MAX_BULLETIN_BYTES
    )


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (HEAD + "Kazakhstan and Ch\x00ina\n", 4, 18),
        ("\x01" + HEAD, 1, 1),
        (HEAD.replace("\n", "\r\n") + ARTICLE + "On the \x1b[31mred\n", 6, 8),
        (HEAD + ARTICLE + "a DEL \x7f here", 6, 7),
        (HEAD + ARTICLE + "a C1 \x9b control", 6, 6),
    ],
)
def test_a_control_character_is_refused_with_its_line_and_column(
    text: str, line: int, column: int
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_characters(text)

    assert (caught.value.line, caught.value.column) == (line, column)
    assert str(caught.value).startswith(f"line {line}, column {column}: ")


def test_tabs_line_breaks_and_the_spaces_the_parser_folds_are_accepted() -> None:
    check_characters(HEAD + "Title\tWith Tab\r\n\x0c\x0b\x1c\x85\u00a0\n" + ARTICLE)


def test_a_rate_longer_than_its_column_is_refused_with_its_line() -> None:
    text = f"11 December 2025\n• KZT/USD = 0.{'1' * 40} 0%\n\n{ARTICLE}"

    with pytest.raises(InvalidInput, match="at most 40 can be stored") as caught:
        check_bulletin(parse_bulletin(text), text)

    assert caught.value.line == 2


def test_the_decimal_limit_is_the_width_of_the_rate_columns() -> None:
    for column in (Rate.__table__.c.rate, Rate.__table__.c.change_pct):
        assert column.type.impl.length == MAX_DECIMAL_CHARS


def test_articles_sharing_a_title_are_a_warning_naming_both_lines() -> None:
    text = HEAD + ARTICLE + "\n" + OTHER + "\n" + ARTICLE.replace("China", "CHINA  ", 1)

    warnings = check_bulletin(parse_bulletin(text), text)

    assert warnings == (
        "line 10: the headline 'Kazakhstan and CHINA Cement Strategic Partnership' is also the "
        "headline on line 4; two articles of one bulletin share a title",
    )


def test_a_control_character_in_a_subject_is_refused_with_its_column() -> None:
    with pytest.raises(InvalidInput, match=r"^column 4: the subject holds a control"):
        check_field("Cen\x00tral Asia", "subject")


@pytest.mark.parametrize(
    "text",
    [
        HEAD + ARTICLE.replace("China", "Ch\x00ina"),
        f"• KGS/USD = 0.{'1' * 45} 0%\n11 December 2025\n\n{ARTICLE}",
        f"• KGS/USD = 0.01 {'2' * 45}%\n11 December 2025\n\n{ARTICLE}",
    ],
    ids=["NUL in a headline", "rate over 40", "change over 40"],
)
def test_a_value_no_database_stores_alike_is_refused_and_nothing_is_stored(
    session: Session, text: str
) -> None:
    before = counts(session)

    with pytest.raises(InvalidInput):
        import_bulletin(session, text.encode())

    assert counts(session) == before


def test_an_import_with_shared_titles_is_stored_and_warns(session: Session) -> None:
    result = import_bulletin(session, (HEAD + ARTICLE + "\n" + OTHER + "\n" + ARTICLE).encode())

    assert result.created
    assert len(result.bulletin_import.articles) == 3
    assert len(result.warnings) == 1


def test_the_import_command_prints_the_warnings(run_cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "twice.txt"
    path.write_text(HEAD + ARTICLE + "\n" + OTHER + "\n" + ARTICLE, encoding="utf-8")

    result = run_cli("import-bulletin", str(path), "--json")

    assert result.exit_code == 0
    assert result.json()["warnings"] == [
        "line 10: the headline 'Kazakhstan and China Cement Strategic Partnership' is also the "
        "headline on line 4; two articles of one bulletin share a title"
    ]
    assert result.stderr.startswith("warning: line 10: the headline")


def test_the_size_limit_is_a_setting(run_cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_text(HEAD + ARTICLE, encoding="utf-8")

    result = run_cli("import-bulletin", str(path), env={"NEWSLETTER_MAX_BULLETIN_BYTES": "100"})

    assert result.exit_code == 2
    assert "NEWSLETTER_MAX_BULLETIN_BYTES (100 bytes)" in result.stderr
