"""MJML-02: the linter rejects what MRML would silently drop or fail on, before compiling."""

from __future__ import annotations

import pytest

from newsletter.errors import RenderError
from newsletter.render.lint import lint_mjml


def test_known_components_pass() -> None:
    lint_mjml(
        "<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>"
    )


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("mj-foo", "would be dropped"),
        ("mj-html-attributes", "fails the whole document"),
        ("mj-include", "SEC-07"),
        ("MJ-INCLUDE", "SEC-07"),
    ],
)
def test_unknown_or_refused_tags_raise_with_their_line(tag: str, reason: str) -> None:
    with pytest.raises(RenderError, match=rf"line 2: <{tag.lower()}> is not allowed: .*{reason}"):
        lint_mjml(f"<mjml><mj-body>\n<{tag} path='x' /></mj-body></mjml>")


def test_markup_in_the_preview_raises() -> None:
    with pytest.raises(RenderError, match="mj-preview"):
        lint_mjml("<mjml><mj-head><mj-preview>Hi <b>there</b></mj-preview></mj-head></mjml>")


def test_entities_in_the_preview_are_fine() -> None:
    lint_mjml("<mjml><mj-head><mj-preview>Hi &zwnj;&nbsp;</mj-preview></mj-head></mjml>")
