"""The contrast helper the HTML-10 test relies on agrees with ratios worked out independently.

From the WCAG 2.x definition: (L1 + 0.05) / (L2 + 0.05) of the relative luminances; a grey
that fails AA on a light background, the up and down colours on white, and black on white.
"""

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
