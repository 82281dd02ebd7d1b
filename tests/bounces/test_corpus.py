"""Every message in ``corpus/<source>/<case>.eml`` parses to exactly the events in ``<case>.json``.

Each ``.json`` names where its format came from (``source``). To add a case, drop the
``.eml`` beside a ``.json`` holding the events you expect; the comparison covers kind,
recipient, status, classifier and the returned Message-ID, for the whole list, in order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from newsletter.bounces.parse import parse_bounce

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.rglob("*.eml"))
COMPARED = ("kind", "recipient", "status", "classifier", "original_message_id")


def test_corpus_is_not_empty_and_every_case_names_its_source() -> None:
    assert len(CASES) >= 30
    for eml in CASES:
        expected = json.loads(eml.with_suffix(".json").read_text())
        assert expected["source"].strip(), eml


@pytest.mark.parametrize("eml", CASES, ids=lambda p: str(p.relative_to(CORPUS).with_suffix("")))
def test_corpus_message_parses_to_expected_events(eml: Path) -> None:
    expected: dict[str, Any] = json.loads(eml.with_suffix(".json").read_text())
    envelope_rcpt = expected["envelope_rcpt"]

    events = parse_bounce(eml.read_bytes(), envelope_rcpt)

    got = [
        {
            field: str(getattr(e, field)) if field == "kind" else getattr(e, field)
            for field in COMPARED
        }
        for e in events
    ]
    assert got == expected["events"]
    # The parser lower-cases addresses: VERP tokens are case-insensitive by design (BNC-01).
    expected_rcpt = envelope_rcpt.lower() if envelope_rcpt else envelope_rcpt
    assert all(event.envelope_rcpt == expected_rcpt for event in events)
