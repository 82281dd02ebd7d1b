"""Hand-written bulletins in the export's format, one per language the desk writes in.

Each ``bulletins/<name>.txt`` is a bulletin as the desk's export would give it (repeated ticker
lines, blank and non-breaking-space lines, trailing and doubled spaces); ``<name>.json`` is what
it says: date, language, rates exactly as written, every headline with its paragraphs. The
headlines are in sentence case, so only the structure of the export tells them apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from newsletter.content.bulletin import Bulletin, decode_bulletin, parse_bulletin
from newsletter.content.language import detect_language

BULLETINS = Path(__file__).parent / "bulletins"
CASES = sorted(BULLETINS.glob("*.txt"))


def meaning(bulletin: Bulletin) -> dict[str, Any]:
    return {
        "date": bulletin.date.isoformat(),
        "lang": detect_language(
            [text for a in bulletin.articles for text in (a.title, *a.paragraphs)]
        ),
        "rates": [[r.pair, str(r.rate), str(r.change_pct)] for r in bulletin.rates],
        "articles": [
            {"title": a.title, "paragraphs": list(a.paragraphs)} for a in bulletin.articles
        ],
    }


def test_there_is_a_russian_a_kazakh_and_a_sentence_case_english_bulletin() -> None:
    assert {json.loads(c.with_suffix(".json").read_text())["lang"] for c in CASES} >= {
        "ru",
        "kk",
        "en",
    }


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_each_bulletin_parses_exactly_as_written(case: Path) -> None:
    expected = json.loads(case.with_suffix(".json").read_text(encoding="utf-8"))
    assert meaning(parse_bulletin(decode_bulletin(case.read_bytes()))) == expected
