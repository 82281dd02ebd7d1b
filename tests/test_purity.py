"""A module that calls itself pure is held to it: the import-linter contract lists it.

``lint-imports`` (run by ``dev.py test`` and CI) checks that no module of the contract "Pure
modules do no I/O, indirect imports included" reaches SQLAlchemy, SMTP, IMAP, POP3, Redis or
Celery, even through another module. That only protects the modules listed there; this test
makes sure a module whose docstring says "Pure." or "Pure:" cannot be forgotten in the list.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = "Pure modules do no I/O, indirect imports included"
SAYS_PURE = re.compile(r"\bPure[.:]")


def pure_contract(pyproject: Path) -> dict[str, object]:
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    (contract,) = (c for c in config["tool"]["importlinter"]["contracts"] if c["name"] == CONTRACT)
    return dict(contract)


def modules_that_say_they_are_pure(root: Path) -> list[str]:
    found = []
    for path in sorted((root / "newsletter").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if SAYS_PURE.search(docstring):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            found.append(module.removesuffix(".__init__"))
    return found


def test_the_contract_forbids_indirect_imports_too() -> None:
    contract = pure_contract(ROOT / "pyproject.toml")

    assert contract["allow_indirect_imports"] is False
    assert {"sqlalchemy", "smtplib", "redis", "celery"} <= set(contract["forbidden_modules"])  # type: ignore[call-overload]


def test_every_module_that_says_it_is_pure_is_in_the_contract() -> None:
    listed = set(pure_contract(ROOT / "pyproject.toml")["source_modules"])  # type: ignore[call-overload]
    claimed = modules_that_say_they_are_pure(ROOT)

    assert claimed, "no module says it is pure: the docstring pattern no longer matches"
    assert not [m for m in claimed if m not in listed], (
        f"these say they are pure but the contract {CONTRACT!r} in pyproject.toml does not "
        f"list them: {[m for m in claimed if m not in listed]}"
    )


def test_a_pure_module_missing_from_the_contract_is_found(tmp_path: Path) -> None:
    module = tmp_path / "newsletter" / "stage" / "rules.py"
    module.parent.mkdir(parents=True)
    module.write_text('"""What a thing means. Pure: values in, values out."""\n', encoding="utf-8")
    (tmp_path / "newsletter" / "stage" / "tables.py").write_text(
        '"""The tables."""\n', encoding="utf-8"
    )

    assert modules_that_say_they_are_pure(tmp_path) == ["newsletter.stage.rules"]
