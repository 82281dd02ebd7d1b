"""Segments: a saved filter over one list, turned into SQL at send time.

The expression (see ``expression``) becomes a SQLAlchemy condition made of bound parameters
only, and is always AND-ed with "active, and confirmed on the segment's list": a segment can
narrow an audience, never widen it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.errors import AlreadyExists, InvalidInput, NotFound
from newsletter.subscribers.expression import (
    And,
    Compare,
    Contains,
    Field,
    InList,
    IsNull,
    Literal,
    Node,
    Not,
    Or,
    parse_expression,
)
from newsletter.subscribers.models import Segment, Subscriber, SubscriberStatus
from newsletter.subscribers.service import add_named, checked_name, mailable_subscribers

NUMBER_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def create_segment(session: Session, name: str, list_id: int, expression: str) -> Segment:
    name = checked_name(name, "segment")
    parse_expression(expression)  # refuse a bad expression now, not at send time
    if session.scalar(sa.select(Segment.id).where(Segment.name == name)) is not None:
        raise AlreadyExists(f"a segment named {name!r} exists already")
    segment = Segment(name=name, list_id=list_id, expression=expression)
    add_named(session, segment, f"a segment named {name!r} exists already")
    return segment


def get_segment(session: Session, name: str) -> Segment:
    segment = session.scalar(sa.select(Segment).where(Segment.name == name))
    if segment is None:
        raise NotFound(f"no segment named {name!r}")
    return segment


def segment_subscribers(segment: Segment) -> sa.Select[int]:
    """Ids of the subscribers the segment mails now: mailable on its list AND its filter."""
    return mailable_subscribers([segment.list_id]).where(
        condition(parse_expression(segment.expression))
    )


def count_segment(session: Session, segment: Segment) -> int:
    query = sa.select(sa.func.count()).select_from(segment_subscribers(segment).subquery())
    return session.scalar(query) or 0


def condition(node: Node) -> sa.ColumnElement[bool]:
    """The SQL condition for a parsed expression; every literal is a bound parameter."""
    if isinstance(node, And):
        return sa.and_(*(condition(item) for item in node.items))
    if isinstance(node, Or):
        return sa.or_(*(condition(item) for item in node.items))
    if isinstance(node, Not):
        return sa.not_(condition(node.item))
    if isinstance(node, IsNull):
        column = _text(node.field)
        return column.is_not(None) if node.negated else column.is_(None)
    if isinstance(node, Contains):
        return _text(node.field).icontains(node.value, autoescape=True)
    if isinstance(node, InList):
        if node.field.name in ("created_at", "updated_at"):
            raise InvalidInput(f"'in' does not apply to {node.field.name}")
        if all(isinstance(v, Decimal) for v in node.values) and node.field.name == "attributes":
            inside = _number(node.field).in_([sa.literal(v, sa.Numeric()) for v in node.values])
        else:
            inside = _text(node.field).in_([_text_value(node.field, v) for v in node.values])
        return sa.not_(inside) if node.negated else inside
    return _compare(node)


def _compare(node: Compare) -> sa.ColumnElement[bool]:
    field, op, value = node.field, node.op, node.value
    if field.name in ("created_at", "updated_at"):
        assert isinstance(value, dt.date)
        return _compare_day(getattr(Subscriber, field.name), op, value)
    if isinstance(value, Decimal):  # only attributes take numbers
        return _operate(_number(field), op, sa.literal(value, sa.Numeric()))
    if field.name == "status" and value not in {s.value for s in SubscriberStatus}:
        known = ", ".join(s.value for s in SubscriberStatus)
        raise InvalidInput(f"unknown status {value!r} (known: {known})")
    return _operate(_text(field), op, sa.literal(_text_value(field, value), sa.Text()))


def _compare_day(
    column: sa.ColumnElement[dt.datetime], op: str, day: dt.date
) -> sa.ColumnElement[bool]:
    """A date means the whole UTC day: ``created_at = 2025-01-01`` is any time that day."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    end = start + dt.timedelta(days=1)
    return {
        "=": sa.and_(column >= start, column < end),
        "!=": sa.or_(column < start, column >= end),
        "<": column < start,
        "<=": column < end,
        ">": column >= end,
        ">=": column >= start,
    }[op]


def _operate(
    left: sa.ColumnElement[Any], op: str, right: sa.ColumnElement[Any]
) -> sa.ColumnElement[bool]:
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _text(field: Field) -> sa.ColumnElement[str]:
    if field.name == "attributes":
        assert field.key is not None
        value: sa.ColumnElement[str] = Subscriber.attributes[field.key].as_string()
        return value
    column: sa.ColumnElement[str] = getattr(Subscriber, field.name)
    return column


def _number(field: Field) -> sa.ColumnElement[Decimal]:
    """The attribute as a number, NULL where its text is not a number ("n/a", "")."""
    text = _text(field)
    return sa.case((text.regexp_match(NUMBER_PATTERN), sa.cast(text, sa.Numeric())), else_=None)


def _text_value(field: Field, value: Literal) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return text.lower() if field.name == "email" else text  # addresses are stored lower-case
