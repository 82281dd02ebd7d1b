"""The cheap per-recipient step: fill a rendered email's placeholders with one subscriber's values.

Rendering (Jinja2 → MJML → CSS inlining) runs once per issue with every per-recipient field
replaced by a marker such as ``%%NL.unsubscribe_url%%``. ``PersonalTemplate`` splits the finished
HTML or text at the markers once; ``fill`` then only joins pre-split chunks with escaped values,
so no template logic, MJML or inliner ever runs per recipient.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

FIELDS = ("name", "email", "unsubscribe_url", "view_url")
MARKER_PREFIX = "%%NL."
MARKER_SUFFIX = "%%"
MARKER = re.compile(r"%%NL\.([a-z_]+)%%")
LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")


def marker(field: str) -> str:
    """The placeholder that stands for ``field`` in a rendered template."""
    if field not in FIELDS:
        raise ValueError(f"unknown personal field {field!r}")
    return f"{MARKER_PREFIX}{field}{MARKER_SUFFIX}"


@dataclass(frozen=True, slots=True)
class PersonalTemplate:
    """A rendered body split at its markers: ``chunks[0] field[0] chunks[1] field[1] ...``."""

    chunks: tuple[str, ...]
    fields: tuple[str, ...]
    escape: Literal["html", "text"]

    @classmethod
    def split(cls, rendered: str, escape: Literal["html", "text"]) -> PersonalTemplate:
        parts = MARKER.split(rendered)
        fields = tuple(parts[1::2])
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown personal fields in template: {', '.join(unknown)}")
        return cls(chunks=tuple(parts[0::2]), fields=fields, escape=escape)

    def fill(self, values: Mapping[str, str]) -> str:
        """Join the chunks with ``values`` (escaped for HTML, line breaks removed for text)."""
        clean = {name: _clean(values.get(name, ""), self.escape) for name in set(self.fields)}
        out = [self.chunks[0]]
        for field, chunk in zip(self.fields, self.chunks[1:], strict=True):
            out.append(clean[field])
            out.append(chunk)
        return "".join(out)


def _clean(value: str, escape: Literal["html", "text"]) -> str:
    # A subscriber's name is stored as given; it must never break a line or inject markup.
    value = LINE_BREAKS.sub(" ", value)
    return html.escape(value, quote=True) if escape == "html" else value
