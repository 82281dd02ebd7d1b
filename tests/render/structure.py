"""A normalised view of an HTML document's tag structure, for the MJML-01 golden test.

One token per line: start and end tags with sorted attributes (style declarations sorted too),
the text of <style> blocks with whitespace collapsed, and Outlook conditional comments expanded
so their hidden tables count. Text content is dropped: the golden test is about what the engine
generates around our content, not about the content.
"""

from __future__ import annotations

from html.parser import HTMLParser


class _Tokens(HTMLParser):
    def __init__(self, prefix: str = "") -> None:
        super().__init__(convert_charrefs=True)
        self.prefix = prefix
        self.tokens: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        self.tokens.append(f"{self.prefix}<{tag}{_attributes(attrs)}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tokens.append(f"{self.prefix}<{tag}{_attributes(attrs)} />")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False
        self.tokens.append(f"{self.prefix}</{tag}>")

    def handle_data(self, data: str) -> None:
        if self._in_style and data.strip():
            self.tokens.append(f"{self.prefix}css: {' '.join(data.split())}")

    def handle_comment(self, data: str) -> None:
        if data.startswith("[if") and "<![endif]" in data:  # <!--[if mso]> ... <![endif]-->
            condition, _, rest = data.partition("]>")
            inner = _Tokens(prefix=f"{self.prefix}  ")
            inner.feed(rest.rpartition("<![endif]")[0])
            inner.close()
            self.tokens.append(f"{self.prefix}<!--{condition}]>")
            self.tokens.extend(inner.tokens)
            self.tokens.append(f"{self.prefix}<![endif]-->")
        else:  # <!--[if !mso]><!--> and <!--<![endif]-->: markers around visible content
            self.tokens.append(f"{self.prefix}<!--{data}-->")


def _attributes(attrs: list[tuple[str, str | None]]) -> str:
    parts = []
    for name, value in sorted(attrs, key=lambda a: a[0]):
        if name == "style" and value:
            value = ";".join(sorted(d.strip() for d in value.split(";") if d.strip()))
        parts.append(name if value is None else f'{name}="{value}"')
    return "".join(f" {part}" for part in parts)


def structure(html: str) -> str:
    parser = _Tokens()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.tokens) + "\n"
