"""Segments: the filter language, its SQL, and that it only ever narrows a list."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.errors import InvalidInput
from newsletter.subscribers.expression import (
    MAX_DEPTH,
    And,
    Compare,
    Contains,
    Field,
    InList,
    IsNull,
    Not,
    Or,
    parse_expression,
)
from newsletter.subscribers.models import MailingList, Subscriber, SubscriberStatus
from newsletter.subscribers.segments import count_segment, create_segment, segment_subscribers
from newsletter.subscribers.service import create_list
from tests.subscribers.conftest import ImportText

PEOPLE = (
    "email,name,city,age\n"
    "ann@example.com,Ann Doe,Almaty,31\n"
    "bob@example.com,Bob,Bishkek,9\n"
    "cat@example.com,Cat O'Hara,Almaty,n/a\n"
    "dan@example.com,Dan,,45\n"
)


def test_the_grammar_builds_the_expected_tree() -> None:
    tree = parse_expression(
        "NOT attributes.city is null and (age_ok = 1 or name contains 'Doe')".replace(
            "age_ok", "attributes.age"
        )
    )

    assert tree == And(
        (
            Not(IsNull(Field("attributes", "city"))),
            Or(
                (
                    Compare(Field("attributes", "age"), "=", Decimal(1)),
                    Contains(Field("name"), "Doe"),
                )
            ),
        )
    )


def test_literals_are_strings_numbers_and_dates() -> None:
    assert parse_expression("attributes.city in ('Osh', 'It''s', 3)") == InList(
        Field("attributes", "city"), ("Osh", "It's", Decimal(3))
    )
    assert parse_expression("created_at >= 2025-01-01") == Compare(
        Field("created_at"), ">=", dt.date(2025, 1, 1)
    )


@pytest.mark.parametrize(
    ("expression", "column"),
    [
        ("name = ", 8),
        ("name = 'x", 8),
        ("colour = 'red'", 1),
        ("name == 'x'", 7),
        ("(name = 'a'", 12),
        ("name = 'a' or", 14),
        ("attributes.city in ()", 21),
        ("created_at > 'yesterday'", 14),
        ("name = 'a'; DROP TABLE subscribers", 11),
        ("created_at = 2025-13-01", 14),
    ],
)
def test_a_syntax_error_names_its_column(expression: str, column: int) -> None:
    with pytest.raises(InvalidInput, match=f"column {column}:"):
        parse_expression(expression)


def test_a_quote_trick_stays_inside_the_string(
    session: Session, import_text: ImportText, weekly: MailingList
) -> None:
    import_text(PEOPLE)
    segment = create_segment(session, "sneaky", weekly.id, "name = 'x'' or 1=1 --'")

    assert count_segment(session, segment) == 0
    assert "1=1" not in str(segment_subscribers(segment))  # the literal is a bound parameter


def matches(session: Session, mailing_list: MailingList, expression: str) -> list[str]:
    segment = create_segment(session, f"s{abs(hash(expression))}", mailing_list.id, expression)
    ids = segment_subscribers(segment)
    return sorted(session.scalars(sa.select(Subscriber.email).where(Subscriber.id.in_(ids))))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("attributes.city = 'Almaty'", ["ann", "cat"]),
        ("attributes.age > 10", ["ann", "dan"]),  # numeric, not text ('9' > '10' as text)
        ("attributes.age <= 9", ["bob"]),
        ("attributes.city is null", ["dan"]),
        ("attributes.city in ('Bishkek', 'Osh')", ["bob"]),
        ("not attributes.city in ('Bishkek', 'Osh')", ["ann", "cat"]),
        ("name contains 'o''h'", ["cat"]),
        ("name contains '%'", []),
        ("email = 'ANN@example.com'", ["ann"]),
        ("attributes.city = 'Almaty' and not name contains 'cat'", ["ann"]),
        ("created_at >= 2020-01-01 and status = 'active'", ["ann", "bob", "cat", "dan"]),
    ],
)
def test_segments_select_the_expected_subscribers(
    session: Session,
    import_text: ImportText,
    weekly: MailingList,
    expression: str,
    expected: list[str],
) -> None:
    import_text(PEOPLE)

    assert matches(session, weekly, expression) == [f"{name}@example.com" for name in expected]


def test_a_segment_only_narrows_its_list_to_mailable_subscribers(
    session: Session, import_text: ImportText, weekly: MailingList
) -> None:
    other = create_list(session, "other")
    import_text(PEOPLE)
    import_text("email,city\nzed@example.com,Almaty\n", mailing_list=other)
    session.execute(
        sa.update(Subscriber)
        .where(Subscriber.email == "cat@example.com")
        .values(status=SubscriberStatus.BOUNCED)
    )

    assert matches(
        session, weekly, "attributes.city = 'Almaty' or 1 = 1".replace("1 = 1", "name contains ''")
    ) == [
        "ann@example.com",
        "bob@example.com",
        "dan@example.com",
    ]


def test_an_unknown_status_is_refused(session: Session, weekly: MailingList) -> None:
    segment = create_segment(session, "odd", weekly.id, "status = 'sleeping'")

    with pytest.raises(InvalidInput, match="unknown status"):
        count_segment(session, segment)


@pytest.mark.parametrize(
    "expression",
    [
        "(" * 400 + "name = 'x'" + ")" * 400,
        "not " * 400 + "name = 'x'",
        "(" * 33 + "name = 'x'" + ")" * 33,
    ],
    ids=["400 parentheses", "400 nots", "one level too deep"],
)
def test_an_expression_nested_too_deep_is_refused_not_a_recursion_error(expression: str) -> None:
    with pytest.raises(InvalidInput, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse_expression(expression)


def test_the_deepest_expression_allowed_still_becomes_sql(
    session: Session, weekly: MailingList
) -> None:
    expression = "(" * MAX_DEPTH + "name = 'x'" + ")" * MAX_DEPTH

    segment = create_segment(session, "deep", weekly.id, expression)

    assert count_segment(session, segment) == 0
