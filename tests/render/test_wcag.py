"""The contrast helper the HTML-10 test relies on agrees with the standards' own figures."""

from __future__ import annotations

import pytest

from tests.render.wcag import contrast_ratio


@pytest.mark.parametrize(
    ("foreground", "background", "expected"),
    [
        ("#7b8794", "#f4f6f8", 3.38),
        ("#0f7b3e", "#ffffff", 5.35),
        ("#c81e1e", "#ffffff", 5.74),
        ("#000", "#fff", 21.0),
    ],
)
def test_contrast_matches_known_values(foreground: str, background: str, expected: float) -> None:
    assert contrast_ratio(foreground, background) == pytest.approx(expected, abs=0.01)
