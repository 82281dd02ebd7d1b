"""Every mistake is one line, and every hostile input is refused before anything is stored.

Each case of the list is run through the real command on SQLite and on PostgreSQL: exit code
2, one ``error:`` line on stderr, no traceback anywhere, and the same row counts in every table
afterwards. The database-readiness cases (no schema, an outage, a read-only file, a full disk)
are in ``tests/test_db.py``; the race on a name in ``tests/subscribers/test_service.py``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import sqlalchemy as sa

from newsletter.bounces.parse import MAX_MESSAGE_BYTES
from newsletter.cli.context import cli, json_option
from newsletter.content.validation import MAX_BULLETIN_BYTES
from tests.conftest import SAMPLE_BULLETIN, Run, assert_one_line_error, row_counts

GOOD_ARTICLE = (
    "Kazakhstan and China Cement Strategic Partnership\n"
    "On July 3, the presidents met in Astana to sign the agreements.\n"
)


def bulletin(tmp: Path, body: str) -> Path:
    path = tmp / "hostile.txt"
    path.write_text(f"• KGS/USD = 0.01144 0%\n11 December 2025\n\n{body}", encoding="utf-8")
    return path


@dataclass(frozen=True)
class Case:
    """A command and what it must say; ``setup`` prepares files and rows, returns the args."""

    setup: Callable[[Path, Run, list[socket.socket]], list[str]]
    says: str


def nul_in_a_headline(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    return ["import-bulletin", str(bulletin(tmp, GOOD_ARTICLE.replace("China", "Ch\x00ina", 1)))]


def a_rate_longer_than_its_column(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    path = tmp / "rate.txt"
    path.write_text(f"• KGS/USD = 0.{'1' * 45} 0%\n11 December 2025\n\n{GOOD_ARTICLE}")
    return ["import-bulletin", str(path)]


def a_bulletin_over_the_size_limit(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    article = GOOD_ARTICLE * (MAX_BULLETIN_BYTES // len(GOOD_ARTICLE) + 1)
    return ["import-bulletin", str(bulletin(tmp, article))]


def a_segment_nested_400_deep(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    run("list", "create", "weekly")
    where = "(" * 400 + "attributes.country = 'KZ'" + ")" * 400
    return ["segment", "create", "kz", "--list", "weekly", "--where", where]


def an_export_to_a_missing_directory(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    run("list", "create", "weekly")
    return ["subscribers", "export", "--list", "weekly", "--out", "/nonexistent/x.csv"]


def an_import_of_a_directory(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    run("list", "create", "weekly")
    return ["subscribers", "import", str(tmp), "--list", "weekly"]


def an_import_of_dev_null(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    run("list", "create", "weekly")
    return ["subscribers", "import", "/dev/null", "--list", "weekly"]


def a_utf16_csv(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    run("list", "create", "weekly")
    path = tmp / "people.csv"
    path.write_bytes("email,name\nann@example.org,Ann\n".encode("utf-16"))
    return ["subscribers", "import", str(path), "--list", "weekly"]


def a_latin1_csv(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    run("list", "create", "weekly")
    path = tmp / "people.csv"
    path.write_bytes("email,prénom\nann@example.org,Anne\n".encode("latin-1"))
    return ["subscribers", "import", str(path), "--list", "weekly"]


def a_bounce_over_the_size_limit(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    path = tmp / "huge.eml"
    path.write_bytes(b"Subject: huge\r\n\r\n" + b"x" * MAX_MESSAGE_BYTES)
    return ["bounces", "process", str(path)]


def a_taken_port(tmp: Path, run: Run, held: list[socket.socket]) -> list[str]:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    held.append(taken)
    return ["bounces", "serve", "--port", str(taken.getsockname()[1])]


def a_list_name_taken(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    run("list", "create", "weekly")
    return ["list", "create", "weekly"]


def a_list_name_longer_than_its_column(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    return ["list", "create", "w" * 201]


def a_nul_in_a_list_description(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    return ["list", "create", "weekly", "--description", "the\x00bulletin"]


def a_nul_in_a_subject(tmp: Path, run: Run, _: list[socket.socket]) -> list[str]:
    run("import-bulletin", str(SAMPLE_BULLETIN))
    return ["issue", "create", "--subject", "Central\x00Asia"]


CASES = {
    "NUL in a headline": Case(nul_in_a_headline, "line 4, column 18: a NUL byte (U+0000)"),
    "rate over 40 characters": Case(a_rate_longer_than_its_column, "at most 40 can be stored"),
    "bulletin over 5 MB": Case(a_bulletin_over_the_size_limit, "NEWSLETTER_MAX_BULLETIN_BYTES"),
    "segment 400 deep": Case(a_segment_nested_400_deep, "nests deeper than 32 levels"),
    "export to /nonexistent": Case(an_export_to_a_missing_directory, "cannot write"),
    "import a directory": Case(an_import_of_a_directory, "is a directory"),
    "import /dev/null": Case(an_import_of_dev_null, "/dev/null is not a regular file"),
    "UTF-16 CSV": Case(a_utf16_csv, "line 1: the file is UTF-16; save it as UTF-8"),
    "Latin-1 CSV": Case(a_latin1_csv, "line 1: the file is not UTF-8 (Latin-1"),
    "bounce over 10 MB": Case(a_bounce_over_the_size_limit, "the limit of a bounce message"),
    "serve on a taken port": Case(a_taken_port, "address already in use"),
    "list name taken": Case(a_list_name_taken, "a list named 'weekly' exists already"),
    "list name over 200": Case(a_list_name_longer_than_its_column, "at most 200 characters"),
    "NUL in a description": Case(a_nul_in_a_list_description, "control character"),
    "NUL in a subject": Case(a_nul_in_a_subject, "column 8: the subject holds a control"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_listed_mistake_is_one_line_exit_2_and_stores_nothing(
    case: Case, run_cli: Run, engine: sa.Engine, tmp_path: Path
) -> None:
    held: list[socket.socket] = []
    try:
        args = case.setup(tmp_path, run_cli, held)
        before = row_counts(engine)

        result = run_cli(*args)

        line = assert_one_line_error(result, 2)
        assert case.says in line
        assert row_counts(engine) == before
    finally:
        for sock in held:
            sock.close()


@pytest.fixture
def exploding_command() -> Iterator[str]:
    """A command with a bug in it, to see what the last-resort handler makes of one."""

    @click.command("explode")
    @json_option
    def explode(as_json: bool) -> None:
        raise ZeroDivisionError("division by zero")

    cli.add_command(explode)
    yield "explode"
    cli.commands.pop("explode")


def test_an_unexpected_error_is_one_line_pointing_at_debug_and_exit_1(
    run_cli: Run, exploding_command: str
) -> None:
    result = run_cli(exploding_command)

    assert assert_one_line_error(result, 1) == (
        "error: unexpected ZeroDivisionError: division by zero (this is a bug; run the command "
        "again with --debug to see where it happened)"
    )


def test_debug_anywhere_on_the_line_shows_the_traceback(
    run_cli: Run, exploding_command: str
) -> None:
    bug = run_cli(exploding_command, "--debug")
    mistake = run_cli("issue", "show", "4242", "--debug")

    assert bug.exit_code == 1
    assert bug.stderr.startswith("Traceback (most recent call last):")
    assert 'raise ZeroDivisionError("division by zero")' in bug.stderr
    assert bug.stderr.splitlines()[-1].startswith("error: unexpected ZeroDivisionError")
    assert mistake.exit_code == 2
    assert "Traceback" in mistake.stderr
    assert mistake.stderr.splitlines()[-1] == "error: no issue with id 4242"


def test_an_unexpected_error_is_json_with_the_json_flag(
    run_cli: Run, exploding_command: str
) -> None:
    result = run_cli(exploding_command, "--json")

    assert result.exit_code == 1
    assert result.stderr.startswith('{"error": "unexpected ZeroDivisionError')


def test_the_help_mentions_debug(run_cli: Run) -> None:
    assert "--debug" in run_cli("--help").stdout


def test_a_preview_to_a_missing_directory_is_one_line(run_cli: Run) -> None:
    run_cli("import-bulletin", str(SAMPLE_BULLETIN))
    issue_id = run_cli("issue", "create", "--subject", "Weekly", "--json").json()["id"]

    result = run_cli("issue", "render", str(issue_id), "--html", "/nonexistent/preview.html")

    line = assert_one_line_error(result, 2)
    assert line == "error: cannot write /nonexistent/preview.html: No such file or directory"
