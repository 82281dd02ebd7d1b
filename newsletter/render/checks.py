"""The pre-send check: every reason an issue must not go out yet. Pure: facts in, problems out."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

from newsletter.config import is_local_url
from newsletter.issues.modes import IssueMode
from newsletter.render.email import SIZE_BUDGET_BYTES

# An image at most this many pixels wide or high is there to be fetched, not seen.
PIXEL_MAX_PX = 2
HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|(?<![-\w])(?:width|height)\s*:\s*[0-2](?:px)?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class IssueFacts:
    html: str  # the rendered HTML, personalised with sample values
    issue_date: dt.date
    rates_date: dt.date | None
    empty_articles: tuple[str, ...]  # titles of articles without text
    rates_max_age_days: int
    postal_address: str | None
    mode: IssueMode = IssueMode.FULL
    # In full mode: how big the same issue is in excerpt mode, to suggest it when over budget.
    excerpt_html_bytes: int | None = None
    issue_id: int | None = None


def find_problems(facts: IssueFacts) -> list[str]:
    problems: list[str] = []
    size = len(facts.html.encode())
    if size > SIZE_BUDGET_BYTES:
        problems.append(_over_budget(facts, size))
    problems += [f"link is not absolute https: {link}" for link in insecure_links(facts.html)]
    problems += [
        f"an image that is tiny or hidden is a tracking pixel: {src}"
        for src in tracking_pixels(facts.html)
    ]
    if facts.rates_date is None:
        problems.append("the issue has no rate snapshot")
    else:
        age = (facts.issue_date - facts.rates_date).days
        if age > facts.rates_max_age_days:
            problems.append(
                f"the rates are from {facts.rates_date}, {age} days before the issue date "
                f"{facts.issue_date} (at most {facts.rates_max_age_days} allowed)"
            )
    problems += [f"the article {title!r} is empty" for title in facts.empty_articles]
    if not facts.postal_address:
        problems.append("NEWSLETTER_POSTAL_ADDRESS is not set; every message must show it")
    return problems


def _over_budget(facts: IssueFacts, size: int) -> str:
    problem = (
        f"the HTML is {size / 1000:.1f} KB, over the {SIZE_BUDGET_BYTES // 1000} KB budget "
        "(Gmail clips at about 102 KB)"
    )
    excerpt = facts.excerpt_html_bytes
    if facts.mode == IssueMode.FULL and excerpt is not None:
        if excerpt <= SIZE_BUDGET_BYTES:
            command = f"newsletter issue set-mode {facts.issue_id} excerpt"
            return f"{problem}; excerpt mode would make it {excerpt / 1000:.1f} KB (`{command}`)"
        return f"{problem}; even excerpt mode would be {excerpt / 1000:.1f} KB: leave out articles"
    return f"{problem}; leave out articles"


def tracking_pixels(html: str) -> list[str]:
    """The src of every <img> too small to see or hidden: what tracks opens, not what shows."""
    collector = _LinkCollector()
    collector.feed(html)
    collector.close()
    return [
        attrs.get("src") or ""
        for attrs in collector.images
        if _tiny(attrs.get("width"))
        or _tiny(attrs.get("height"))
        or HIDDEN_STYLE.search(attrs.get("style") or "")
    ]


def _tiny(size: str | None) -> bool:
    digits = (size or "").strip().removesuffix("px")
    return digits.isdigit() and int(digits) <= PIXEL_MAX_PX


def insecure_links(html: str) -> list[str]:
    """Every href/src in ``html`` that is not an absolute https URL, in document order.

    An http:// link to this machine (a local base URL, see ``config.is_local_url``) passes:
    nobody else can follow it, and the demo sends with one.
    """
    collector = _LinkCollector()
    collector.feed(html)
    collector.close()
    return [
        link
        for link in collector.links
        if not (_is_absolute_https(link) or is_local_url(link.strip()))
    ]


def _is_absolute_https(link: str) -> bool:
    parts = urlsplit(link.strip())
    return parts.scheme == "https" and bool(parts.netloc)


class _LinkCollector(HTMLParser):
    LINK_ATTRIBUTES = frozenset({"href", "src"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k in self.LINK_ATTRIBUTES and v is not None]
        if tag == "img":
            self.images.append(dict(attrs))
