"""Any segment expression gives a tree (which becomes SQL) or our ``InvalidInput``, never a
RecursionError or another exception; random text, and random sequences of the grammar's own
tokens, which reach far deeper into the parser than random characters do."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.errors import InvalidInput
from newsletter.subscribers.expression import Node, parse_expression
from newsletter.subscribers.segments import condition

TOKENS = st.sampled_from(
    [
        "(", ")", "(", ")", "not", "and", "or", ",", "in", "is", "null", "contains",
        "=", "!=", "<>", "<", "<=", ">", ">=",
        "email", "name", "status", "created_at", "attributes.city", "attributes.age",
        "attributes", "'Almaty'", "'it''s'", "'", "42", "-1.5", "2025-01-01", "2025-02-30",
        "'active'", "'bounced'", "nope",
    ]
)  # fmt: skip
EXPRESSION = st.lists(TOKENS, max_size=60).map(" ".join)
FIELD = st.sampled_from(["email", "name", "status", "created_at", "attributes.city"])
VALUE = st.sampled_from(["'Almaty'", "'active'", "'it''s'", "42", "-1.5", "2025-01-01"])
CONDITION = st.one_of(
    st.builds("{} {} {}".format, FIELD, st.sampled_from(["=", "!=", "<", ">=", "<>"]), VALUE),
    st.builds("{} contains {}".format, FIELD, VALUE),
    st.builds("{} {}in ({})".format, FIELD, st.sampled_from(["", "not "]), VALUE),
    st.builds("{} is {}null".format, FIELD, st.sampled_from(["", "not "])),
)
# Well-formed trees (most of them type-correct), so the SQL builder is reached often.
WELL_FORMED = st.recursive(
    CONDITION,
    lambda inner: st.one_of(
        inner.map("not {}".format),
        inner.map("({})".format),
        st.builds("{} and {}".format, inner, inner),
        st.builds("{} or {}".format, inner, inner),
    ),
    max_leaves=40,
)


def parse(text: str) -> Node | InvalidInput:
    try:
        return parse_expression(text)
    except InvalidInput as exc:
        return exc


def compile_both(node: Node) -> None:
    """The tree as SQL for both databases: our InvalidInput is the only refusal allowed."""
    try:
        clause = condition(node)
    except InvalidInput:
        return
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        assert str(clause.compile(dialect=dialect))


@given(st.text(max_size=300))
def test_any_text_gives_a_tree_or_invalid_input(text: str) -> None:
    result = parse(text)

    assert isinstance(result, InvalidInput) or compile_both(result) is None


@given(EXPRESSION)
def test_any_sequence_of_the_grammars_tokens_gives_a_tree_or_invalid_input(text: str) -> None:
    result = parse(text)

    if not isinstance(result, InvalidInput):
        compile_both(result)


@given(WELL_FORMED)
def test_any_well_formed_expression_gives_a_tree_or_invalid_input(text: str) -> None:
    result = parse(text)

    if not isinstance(result, InvalidInput):
        compile_both(result)


@given(st.integers(0, 2000), st.sampled_from(["(", "not ", "not ("]))
def test_any_nesting_depth_gives_a_tree_or_invalid_input(depth: int, opener: str) -> None:
    closer = ")" * opener.count("(")
    text = opener * depth + "name = 'x'" + closer * depth

    result = parse(text)

    if not isinstance(result, InvalidInput):
        compile_both(result)
