"""WCAG 2.2 contrast (SC 1.4.3) and a small inline-style reader for the rendered HTML."""

from __future__ import annotations

import re

from lxml import html as lxml_html

HEX = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})\b")
AA_NORMAL_TEXT = 4.5


def parse_hex(colour: str) -> tuple[int, int, int]:
    match = HEX.search(colour)
    if match is None:
        raise ValueError(f"not a hex colour: {colour!r}")
    digits = match[1]
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def relative_luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in parse_hex(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(foreground: str, background: str) -> float:
    lighter, darker = sorted(
        (relative_luminance(foreground), relative_luminance(background)), reverse=True
    )
    return (lighter + 0.05) / (darker + 0.05)


def style_of(element: lxml_html.HtmlElement) -> dict[str, str]:
    """The inline style as {property: value}, last declaration winning like in a browser."""
    declarations: dict[str, str] = {}
    for part in (element.get("style") or "").split(";"):
        name, sep, value = part.partition(":")
        if sep:
            declarations[name.strip().lower()] = value.strip()
    return declarations


def resolved_background(element: lxml_html.HtmlElement) -> str:
    """The nearest background colour set on the element or an ancestor; white if none."""
    node: lxml_html.HtmlElement | None = element
    while node is not None:
        style = style_of(node)
        for value in (style.get("background-color"), style.get("background"), node.get("bgcolor")):
            if value and HEX.search(value):
                return value
        node = node.getparent()
    return "#ffffff"


def is_hidden(element: lxml_html.HtmlElement) -> bool:
    node: lxml_html.HtmlElement | None = element
    while node is not None:
        if style_of(node).get("display", "").replace(" ", "") == "none":
            return True
        node = node.getparent()
    return False
