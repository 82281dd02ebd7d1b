"""A linter for the MJML that Jinja produces, run before compiling (MJML-02, SEC-07).

MRML (mjml-python) does not validate: it silently drops an unknown ``<mj-foo>`` and fails the
whole document on ``<mj-html-attributes>``. ``mj-include`` would read files, so it is refused
outright; partials are Jinja includes confined to the template directory instead.
"""

from __future__ import annotations

import re

from newsletter.errors import RenderError

# The components MRML 6.0.1 implements (the mj_* modules of its mrml-core crate), minus
# mj-include (SEC-07). Any other tag MRML drops without a word, or fails the whole document on.
ALLOWED_TAGS = frozenset(
    {
        "mjml",
        "mj-head",
        "mj-body",
        "mj-attributes",
        "mj-all",
        "mj-class",
        "mj-breakpoint",
        "mj-font",
        "mj-preview",
        "mj-raw",
        "mj-style",
        "mj-title",
        "mj-section",
        "mj-wrapper",
        "mj-group",
        "mj-column",
        "mj-text",
        "mj-button",
        "mj-image",
        "mj-divider",
        "mj-spacer",
        "mj-table",
        "mj-hero",
        "mj-navbar",
        "mj-navbar-link",
        "mj-social",
        "mj-social-element",
        "mj-carousel",
        "mj-carousel-image",
        "mj-accordion",
        "mj-accordion-element",
        "mj-accordion-title",
        "mj-accordion-text",
    }
)
# Tags with a reason of their own, so the error says what to do instead.
REFUSED_TAGS = {
    "mj-include": "reads files outside Jinja's confined loader (SEC-07); use {% include %}",
    "mj-html-attributes": "MRML does not implement it and fails the whole document",
    "mj-selector": "MRML does not implement it (part of mj-html-attributes)",
    "mj-html-attribute": "MRML does not implement it (part of mj-html-attributes)",
}
MJ_TAG = re.compile(r"<\s*/?\s*(mj[-\w]*)", re.IGNORECASE)
PREVIEW = re.compile(r"<mj-preview\b[^>]*>(.*?)</mj-preview>", re.DOTALL | re.IGNORECASE)


def lint_mjml(source: str) -> None:
    """Raise ``RenderError`` naming the line of the first tag MRML would mishandle."""
    for match in MJ_TAG.finditer(source):
        name = match[1].lower()
        if name in ALLOWED_TAGS:
            continue
        line = source.count("\n", 0, match.start()) + 1
        reason = REFUSED_TAGS.get(name, "not an MJML component MRML knows; it would be dropped")
        raise RenderError(f"MJML line {line}: <{name}> is not allowed: {reason}")
    for match in PREVIEW.finditer(source):
        # MRML rejects markup in mj-preview (jdrouet/mrml#499); entities such as &nbsp; are fine.
        if "<" in match[1]:
            line = source.count("\n", 0, match.start()) + 1
            raise RenderError(f"MJML line {line}: <mj-preview> must hold text only, no tags")
