"""The caller owns the session: only the edges open, commit or roll back a transaction.

Library code takes a ``Session`` (or, where it must commit as it goes, a session factory, or a
``Transport``, a clock) from its caller; the CLI command, the web request and the task wrapper
(``newsletter/jobs.py``) each own their transactions. This walks every module outside the
edges and fails on a session opened from the settings (``db.session_scope``,
``db.session_factory``, an engine) or a ``.commit()`` / ``.rollback()``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "newsletter"
EDGES = (
    "newsletter/cli/",
    "newsletter/web/",
    "newsletter/jobs.py",
    "newsletter/sending.py",
    "newsletter/db.py",
)
SKIPPED = ("newsletter/migrations/",)
# What opens a transaction from the settings rather than taking one from the caller.
OPENERS = frozenset(
    {"session_scope", "session_factory", "get_engine", "create_database_engine", "sessionmaker"}
)
ENDINGS = frozenset({"commit", "rollback"})


def library_modules(root: Path) -> list[Path]:
    return [
        path
        for path in sorted((root / PACKAGE).rglob("*.py"))
        if not path.relative_to(root).as_posix().startswith(EDGES + SKIPPED)
    ]


def offences(root: Path, path: Path, allowed: frozenset[str] = frozenset()) -> list[str]:
    """``file:line: what`` for each session opened or ended in ``path`` outside ``allowed``
    (names of its top-level functions)."""
    relative = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in allowed:
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and inner.id in OPENERS:
                found.append(f"{relative}:{inner.lineno}: {inner.id}")
            elif isinstance(inner, ast.Attribute) and inner.attr in OPENERS:
                found.append(f"{relative}:{inner.lineno}: .{inner.attr}")
            elif (
                isinstance(inner, ast.Call)
                and isinstance(inner.func, ast.Attribute)
                and inner.func.attr in ENDINGS
            ):
                found.append(f"{relative}:{inner.lineno}: .{inner.func.attr}()")
    return found


def test_only_the_edges_open_or_commit_a_session() -> None:
    found = [offence for path in library_modules(ROOT) for offence in offences(ROOT, path)]
    assert not found, (
        "library code opens or ends a transaction; take a Session (or a session factory) from "
        "the caller, and open it in cli/, web/ or jobs.py:\n" + "\n".join(found)
    )


# The check itself, on a small package of its own.


@pytest.mark.parametrize(
    "code",
    [
        "from newsletter.db import session_scope\n\ndef f(s):\n    with session_scope(s):\n"
        "        pass\n",
        "from newsletter import db\n\ndef f(s):\n    return db.session_factory(s)\n",
        "def f(session):\n    session.commit()\n",
        "def f(session):\n    session.rollback()\n",
        "from sqlalchemy.orm import sessionmaker\n\nFACTORY = sessionmaker()\n",
    ],
)
def test_a_library_module_that_opens_or_ends_a_session_is_found(tmp_path: Path, code: str) -> None:
    path = tmp_path / PACKAGE / "stage" / "thing.py"
    path.parent.mkdir(parents=True)
    path.write_text(code, encoding="utf-8")

    assert library_modules(tmp_path) == [path]
    assert offences(tmp_path, path)


def test_a_module_that_takes_its_session_passes_and_the_edges_are_not_checked(
    tmp_path: Path,
) -> None:
    library = tmp_path / PACKAGE / "stage" / "thing.py"
    edge = tmp_path / PACKAGE / "cli" / "command.py"
    for path in (library, edge):
        path.parent.mkdir(parents=True)
    library.write_text(
        "def f(session, factory):\n    session.flush()\n    with factory() as s:\n"
        "        s.add(1)\n",
        encoding="utf-8",
    )
    edge.write_text("def g(session):\n    session.commit()\n", encoding="utf-8")

    assert library_modules(tmp_path) == [library]
    assert offences(tmp_path, library) == []
