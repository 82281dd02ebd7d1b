"""The exception tree drawn in ``newsletter/errors.py``'s docstring is the tree of its classes.

The drawing is what a newcomer reads to learn which error to raise and which one the CLI maps to
exit 2, so it must not drift: every class drawn exists under the parent it is drawn under, and
every subclass of ``NewsletterError`` anywhere in the package is drawn, in ``errors.py``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass

import pytest

import newsletter
from newsletter import errors
from newsletter.errors import NewsletterError

# Not importable on their own: Alembic's env.py needs a migration context, and __main__ runs
# the CLI.
_NOT_IMPORTED = ("newsletter.migrations", "newsletter.__main__")
# A drawn class: the box-drawing branch, then its name (the text after it is its description).
_BRANCH = re.compile(r"[├└]── (?P<name>\w+)")
_INDENT = 4  # columns per level of the drawing


@dataclass(frozen=True, slots=True)
class Drawn:
    name: str
    parent: str | None
    line: int  # 1-based, within the docstring


def drawn_tree(doc: str) -> list[Drawn]:
    """The classes of the ``The tree::`` block, each with the class it is drawn under."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "The tree::") + 1
    while not lines[start].strip():
        start += 1
    margin = len(lines[start]) - len(lines[start].lstrip())
    root = lines[start].strip()
    assert re.fullmatch(r"\w+", root), f"docstring line {start + 1}: the root {root!r} is no name"
    found = [Drawn(root, None, start + 1)]
    stack: list[tuple[int, str]] = [(0, root)]  # (column of the name, name) of each ancestor
    for number, line in enumerate(lines[start + 1 :], start + 2):
        if not line.strip():
            break  # the literal block ends at the first blank line
        branch = _BRANCH.search(line)
        if branch is None:
            continue  # a description wrapped onto the next line
        column = branch.start("name") - margin
        while stack and stack[-1][0] >= column:
            stack.pop()
        assert stack, f"docstring line {number}: {branch['name']} is drawn left of the root"
        parent_column, parent = stack[-1]
        assert column == parent_column + _INDENT, (
            f"docstring line {number}: {branch['name']} is indented {column - parent_column} "
            f"columns under {parent}, not {_INDENT}: the drawing is ambiguous"
        )
        found.append(Drawn(branch["name"], parent, number))
        stack.append((column, branch["name"]))
    return found


def defined_tree() -> dict[str, type[NewsletterError]]:
    """Every subclass of ``NewsletterError`` in the package, by name, after importing it all."""
    for module in pkgutil.walk_packages(newsletter.__path__, "newsletter."):
        if not module.name.startswith(_NOT_IMPORTED):
            importlib.import_module(module.name)
    classes: dict[str, type[NewsletterError]] = {}
    pending: list[type[NewsletterError]] = [NewsletterError]
    while pending:
        cls = pending.pop()
        if not cls.__module__.startswith("newsletter"):
            continue  # a test's own subclass, not part of the library
        other = classes.setdefault(cls.__name__, cls)
        assert other is cls, f"two error classes named {cls.__name__}: {other} and {cls}"
        pending.extend(cls.__subclasses__())
    return classes


def parent_of(cls: type[NewsletterError]) -> str | None:
    parents = [base for base in cls.__bases__ if issubclass(base, NewsletterError)]
    assert len(parents) <= 1, f"{cls.__name__} has two parents in the tree: {parents}"
    return parents[0].__name__ if parents else None


def test_the_drawn_root_is_newsletter_error() -> None:
    assert errors.__doc__ is not None
    assert drawn_tree(errors.__doc__)[0].name == "NewsletterError"


def test_every_class_drawn_exists_under_the_parent_it_is_drawn_under() -> None:
    assert errors.__doc__ is not None
    classes = defined_tree()
    wrong = []
    for node in drawn_tree(errors.__doc__):
        if node.name not in classes:
            wrong.append(f"line {node.line}: {node.name} is drawn but no such error class exists")
        elif (actual := parent_of(classes[node.name])) != node.parent:
            wrong.append(
                f"line {node.line}: {node.name} is drawn under {node.parent} "
                f"but its parent is {actual}"
            )
    assert not wrong, "newsletter/errors.py's drawn tree is out of date:\n" + "\n".join(wrong)


def test_every_error_class_is_drawn() -> None:
    assert errors.__doc__ is not None
    drawn = {node.name for node in drawn_tree(errors.__doc__)}
    missing = [
        f"{cls.__module__}.{name} (a {parent_of(cls)})"
        for name, cls in sorted(defined_tree().items())
        if name not in drawn
    ]
    assert not missing, (
        "error classes missing from the tree in newsletter/errors.py's docstring: "
        + ", ".join(missing)
    )


def test_each_class_is_drawn_once() -> None:
    assert errors.__doc__ is not None
    names = [node.name for node in drawn_tree(errors.__doc__)]
    assert sorted(names) == sorted(set(names)), "a class is drawn twice"


def test_every_error_class_lives_in_the_errors_module() -> None:
    elsewhere = [
        f"{cls.__module__}.{name}"
        for name, cls in sorted(defined_tree().items())
        if cls.__module__ != errors.__name__
    ]
    assert not elsewhere, f"error classes outside newsletter/errors.py: {', '.join(elsewhere)}"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            "The tree::\n\n    NewsletterError\n    ├── UserError\n    │     └── NotFound\n",
            "NotFound is indented 6 columns under UserError",
        ),
        ("The tree::\n\n    NewsletterError\n└── UserError\n", "UserError is drawn left"),
    ],
)
def test_an_ambiguous_drawing_is_refused_with_its_line(doc: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        drawn_tree(doc)


def test_the_parser_reads_nesting_and_skips_wrapped_descriptions() -> None:
    doc = (
        "Intro.\n\nThe tree::\n\n"
        "    NewsletterError\n"
        "    ├── UserError          the caller's mistake\n"
        "    │   └── NotFound       a thing that is not\n"
        "    │                      there at all\n"
        "    └── DeliveryError\n"
        "\nAfter the tree: └── NotAClass\n"
    )
    assert [(n.name, n.parent) for n in drawn_tree(doc)] == [
        ("NewsletterError", None),
        ("UserError", "NewsletterError"),
        ("NotFound", "UserError"),
        ("DeliveryError", "NewsletterError"),
    ]
