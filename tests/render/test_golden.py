"""MJML-01: the engine is pinned by a snapshot of the sample's compiled structure.

mjml-python bundles MRML; a new release can change the generated tables, attributes or head CSS
without any error (MJML-01 in docs/standards.md). This test fails on any such change, so the
upgrade is a reviewed diff. After a deliberate template or engine change, regenerate with::

    NL_UPDATE_GOLDEN=1 /work/venv/bin/pytest tests/render/test_golden.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from newsletter.render.email import compile_mjml, environment, render_mjml
from newsletter.render.view import IssueView
from tests.render.samples import SENDER, TEMPLATE_DIR
from tests.render.structure import structure

GOLDEN = Path(__file__).parent / "golden" / "sample-structure.txt"


def test_sample_mjml_output_structure_matches_the_snapshot(sample: IssueView) -> None:
    html = compile_mjml(render_mjml(sample, SENDER, environment(TEMPLATE_DIR)))
    actual = structure(html)
    if os.environ.get("NL_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(actual, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            "golden",
            "now",
            n=1,
        )
    )
    assert actual == expected, f"MRML output changed; review and regenerate:\n{diff[:4000]}"
