"""Every rule id the repository cites is explained in ``docs/standards.md``, with its tests.

Comments, templates, tests and docs cite rules by id (``BNC-05``, ``MSG-13``, ...). These tests
keep that followable: an id cited anywhere is defined in ``docs/standards.md``; every test that
document names ("Tested in ``tests/x.py::test_y``") exists, so it cannot rot; a rule cited by
the code names its test (only a rule nobody cites yet may say "Not tested yet"); and no comment
points at a document that is not in the repository.

What is scanned: the text files (code, templates, docs, configuration) under the folders in
``SCANNED_DIRS`` and the files in ``SCANNED_FILES``; not test data (``.eml``, ``.json``,
``.txt`` fixtures: real bounces and bulletins say what they like).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STANDARDS = "docs/standards.md"
SCANNED_DIRS = ("newsletter", "templates", "workers", "tests", "bench", "docs", ".ci")
SCANNED_FILES = ("README.md", "pyproject.toml", "dev.py", "Dockerfile", "docker-compose.yml")
SCANNED_SUFFIXES = frozenset(
    {".py", ".md", ".j2", ".css", ".js", ".toml", ".cfg", ".mako", ".yml", ".yaml", ".sh", ""}
)
SKIPPED_DIRS = frozenset({"__pycache__", ".venv", "node_modules", ".git"})
# This file names ids and document names in its own examples and patterns.
THIS_FILE = "tests/test_standards.py"

RULE_ID = re.compile(r"\b(?:MSG|AUTH|DKIM|SEC|BNC|HTML|MJML|DLV|LAW)-\d{2}\b")
# A rule's definition in docs/standards.md: a list item that starts with its id in bold.
DEFINITION = re.compile(rf"^- \*\*(?P<id>{RULE_ID.pattern})\*\*", re.MULTILINE)
SECTION_END = re.compile(r"^(?:- |#)", re.MULTILINE)
TEST_REFERENCE = re.compile(r"`(?P<path>tests/[\w/.-]+\.py)::(?P<name>\w+(?:::\w+)?)`")
NOT_TESTED = "Not tested yet"

# Documents that live outside the repository (the team's reference notes), and the ways the
# code has cited them. A newcomer cannot open any of them.
OUTSIDE_DOCUMENT = re.compile(
    r"\b(?:performance|peers|style)\.md\b|\bemail-standards\b|(?i:\bthe standards['’])"
    r"|\bfindings? \d+\b"
    r"|\bstyle §\s?\d+"
    r"|\bstandards'?,? (?:section|finding|§)\s?\d+"
    r"|shared/reference"
)
# A design note named by its path, which must exist.
DOCS_PATH = re.compile(r"\bdocs/[\w/-]+\.md\b")
# A section of one, cited as ``docs/delivery.md, "Recovery"``: some heading must start so.
DOCS_SECTION = re.compile(r'\b(?P<path>docs/[\w/-]+\.md),? "(?P<heading>[^"]+)"')
HEADING = re.compile(r"^#+\s+(?P<text>.+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    line: int  # of its definition in docs/standards.md
    text: str  # the whole list item


def scanned_files(root: Path) -> list[Path]:
    files = [root / name for name in SCANNED_FILES if (root / name).is_file()]
    for folder in SCANNED_DIRS:
        for path in sorted((root / folder).rglob("*")):
            if (
                path.is_file()
                and path.suffix in SCANNED_SUFFIXES
                and not SKIPPED_DIRS.intersection(path.relative_to(root).parts)
                and path.relative_to(root).as_posix() != THIS_FILE
            ):
                files.append(path)
    return files


def occurrences(root: Path, pattern: re.Pattern[str]) -> dict[str, list[str]]:
    """Each match of ``pattern`` in the scanned files, with every ``file:line`` it occurs at."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in scanned_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not a text file, whatever its name
        for number, line in enumerate(text.splitlines(), 1):
            for citation in dict.fromkeys(match.group() for match in pattern.finditer(line)):
                found[citation].append(f"{path.relative_to(root).as_posix()}:{number}")
    return dict(found)


def rules(root: Path) -> list[Rule]:
    text = (root / STANDARDS).read_text(encoding="utf-8")
    found = []
    for match in DEFINITION.finditer(text):
        rest = text[match.end() :]
        end = SECTION_END.search(rest)
        body = text[match.start() : match.end() + (end.start() if end else len(rest))]
        found.append(Rule(match["id"], text.count("\n", 0, match.start()) + 1, body))
    return found


def undefined_citations(root: Path) -> list[str]:
    defined = {rule.id for rule in rules(root)}
    return [
        f"{rule_id} is cited in {', '.join(places[:3])}"
        + (f" (and {len(places) - 3} more places)" if len(places) > 3 else "")
        + f" but not defined in {STANDARDS}"
        for rule_id, places in sorted(occurrences(root, RULE_ID).items())
        if rule_id not in defined
    ]


def defined_tests(path: Path) -> set[str]:
    """``test_x`` and ``TestY::test_x`` for every test function the module defines."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return {name for name in names if name.rpartition("::")[2].startswith("test")}


def broken_test_references(root: Path) -> list[str]:
    text = (root / STANDARDS).read_text(encoding="utf-8")
    broken = []
    for match in TEST_REFERENCE.finditer(text):
        where = f"{STANDARDS}:{text.count(chr(10), 0, match.start()) + 1}"
        path = root / match["path"]
        if not path.is_file():
            broken.append(f"{where} names {match['path']}::{match['name']}: no such file")
        elif match["name"] not in defined_tests(path):
            broken.append(
                f"{where} names {match['path']}::{match['name']}: "
                f"no test of that name in {match['path']}"
            )
    return broken


def untested_rules_cited(root: Path) -> list[str]:
    untested = {rule.id for rule in rules(root) if NOT_TESTED in rule.text}
    cited = occurrences(root, RULE_ID)
    return [
        f"{rule_id} is cited in {', '.join(places[:3])} but {STANDARDS} says it is not tested "
        f"yet: name the test that holds it there"
        for rule_id in sorted(untested)
        if (places := [p for p in cited.get(rule_id, []) if not p.startswith(f"{STANDARDS}:")])
    ]


def test_every_rule_id_cited_is_defined_in_the_standards() -> None:
    undefined = undefined_citations(ROOT)
    assert not undefined, "\n".join(undefined)


def test_every_test_the_standards_name_exists() -> None:
    broken = broken_test_references(ROOT)
    assert not broken, "\n".join(broken)


def test_every_rule_names_its_test_or_says_it_has_none() -> None:
    silent = [
        f"{STANDARDS}:{rule.line}: {rule.id} names no test (`tests/x.py::test_y`) "
        f"and does not say {NOT_TESTED!r}"
        for rule in rules(ROOT)
        if not TEST_REFERENCE.search(rule.text) and NOT_TESTED not in rule.text
    ]
    assert not silent, "\n".join(silent)


def test_a_rule_the_repository_cites_is_tested() -> None:
    cited_untested = untested_rules_cited(ROOT)
    assert not cited_untested, "\n".join(cited_untested)


def test_each_rule_is_defined_once() -> None:
    lines: dict[str, list[int]] = defaultdict(list)
    for rule in rules(ROOT):
        lines[rule.id].append(rule.line)
    twice = {rule_id: at for rule_id, at in lines.items() if len(at) > 1}
    assert not twice, f"defined more than once in {STANDARDS} (id: lines): {twice}"


def test_no_comment_cites_a_document_outside_the_repository() -> None:
    cited = occurrences(ROOT, OUTSIDE_DOCUMENT) | {
        path: found
        for path, found in occurrences(ROOT, DOCS_PATH).items()
        if not (ROOT / path).is_file()
    }
    places = sorted(
        ((place, citation) for citation, found in cited.items() for place in found),
        key=lambda found: (found[0].rpartition(":")[0], int(found[0].rpartition(":")[2])),
    )
    assert not places, (
        "these cite a document that is not in the repository; point to a docs/benchmarks.md "
        "section (for a measured figure), a docs/*.md note or a rule id of "
        f"{STANDARDS}, or explain in place:\n"
        + "\n".join(f"{place}: {citation!r}" for place, citation in places)
    )


def unknown_sections(root: Path) -> list[str]:
    """``file:line: citation`` for each cited section that no heading of its document starts
    with (a heading renamed, a section that was never written)."""
    found = []
    for citation, places in occurrences(root, DOCS_SECTION).items():
        match = DOCS_SECTION.fullmatch(citation)
        assert match is not None
        document = root / match["path"]
        headings = (
            [h["text"] for h in HEADING.finditer(document.read_text(encoding="utf-8"))]
            if document.is_file()
            else []
        )
        if not any(heading.startswith(match["heading"]) for heading in headings):
            found.extend(f"{place}: {citation}" for place in places)
    return sorted(found)


def test_every_cited_section_of_a_design_note_exists() -> None:
    assert not unknown_sections(ROOT), (
        "these name a section that no heading of that document starts with:\n"
        + "\n".join(unknown_sections(ROOT))
    )


# The checks themselves, on a small repository of their own.


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def tiny_repository(tmp_path: Path) -> Path:
    write(tmp_path, "tests/test_rule.py", "def test_held():\n    pass\n")
    write(
        tmp_path,
        STANDARDS,
        "# Rules\n\n"
        "- **MSG-01** Held.\n  Tested in `tests/test_rule.py::test_held`.\n"
        "- **MSG-02** Not tested yet: nothing does this.\n"
        "- **MSG-03** Held, they say.\n  Tested in `tests/test_rule.py::test_gone`.\n",
    )
    return tmp_path


def test_an_undefined_rule_is_reported_with_the_file_and_line_citing_it(
    tiny_repository: Path,
) -> None:
    write(tiny_repository, "newsletter/x.py", "import os\n\nA = 1  # MSG-01, MSG-19\n")
    assert undefined_citations(tiny_repository) == [
        f"MSG-19 is cited in newsletter/x.py:3 but not defined in {STANDARDS}"
    ]


def test_a_test_the_standards_name_that_does_not_exist_is_reported(
    tiny_repository: Path,
) -> None:
    assert broken_test_references(tiny_repository) == [
        f"{STANDARDS}:7 names tests/test_rule.py::test_gone: no test of that name in "
        "tests/test_rule.py"
    ]


def test_an_untested_rule_may_be_defined_but_not_cited(tiny_repository: Path) -> None:
    assert untested_rules_cited(tiny_repository) == []
    write(tiny_repository, "templates/email/x.mjml.j2", "{#- MSG-02 -#}\n")
    assert untested_rules_cited(tiny_repository) == [
        f"MSG-02 is cited in templates/email/x.mjml.j2:1 but {STANDARDS} says it is not tested "
        "yet: name the test that holds it there"
    ]


@pytest.mark.parametrize(
    "comment",
    [
        "# see performance.md §2a",
        "# (finding 7)",
        "# peers.md §4",
        "# style §18",
        "# the standards, section 7",
        "# ../shared/reference/email-standards.md",
        "# The standards' corrected settings",
    ],
)
def test_a_citation_of_an_outside_document_is_found(tiny_repository: Path, comment: str) -> None:
    write(tiny_repository, "bench/x.py", f"{comment}\n")
    found = occurrences(tiny_repository, OUTSIDE_DOCUMENT)
    assert found
    assert all(places == ["bench/x.py:1"] for places in found.values())


def test_a_cited_section_must_start_a_heading_of_its_document(tiny_repository: Path) -> None:
    write(tiny_repository, "docs/notes.md", "# Notes\n\n## Recovery: after a crash\n\nText.\n")
    write(
        tiny_repository,
        "newsletter/x.py",
        '# (docs/notes.md, "Recovery")\n# (docs/notes.md, "Speed")\n# (docs/gone.md, "Recovery")\n',
    )

    assert unknown_sections(tiny_repository) == [
        'newsletter/x.py:2: docs/notes.md, "Speed"',
        'newsletter/x.py:3: docs/gone.md, "Recovery"',
    ]
