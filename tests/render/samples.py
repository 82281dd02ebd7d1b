"""The issues the render tests use: the sample bulletin, and a 12-article issue with links."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from newsletter.content.bulletin import Bulletin, decode_bulletin, parse_bulletin
from newsletter.content.service import preview_bulletin
from newsletter.issues.modes import IssueMode
from newsletter.render.view import IssueView, RateView, Sender

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = REPO / "templates" / "email"
SAMPLE_BULLETIN = REPO / "newsletter" / "samples" / "bulletin-2025-12-11.txt"


def sample_bulletin() -> Bulletin:
    return parse_bulletin(decode_bulletin(SAMPLE_BULLETIN.read_bytes()))


def sample_issue() -> IssueView:
    return IssueView.from_bulletin(
        sample_bulletin(),
        subject="Central Asia Weekly – 11 December 2025",
        preheader=(
            "The SCO summit seen from the West, China in Kazakhstan and Tajikistan, and rates"
        ),
    )


def big_issue() -> IssueView:
    """Twelve articles (the sample's six twice), each with a link and an image, one decorative."""
    base = sample_issue()
    articles = tuple(
        replace(
            article,
            id=number,
            title=f"{article.title} ({number})",
            url=f"https://example.com/news/{number}",
            image_url=f"https://example.com/img/{number}.jpg",
            image_alt="" if number == 1 else f"Photo for story {number}",
        )
        for number, article in enumerate(base.articles * 2, start=1)
    )
    # One falling rate so every direction is on show.
    rates = (
        *base.rates,
        RateView(
            pair="RUB/USD",
            base_code="RUB",
            base_name="Russian ruble",
            quote_code="USD",
            rate=Decimal("0.01250"),
            change_pct=Decimal("-1.20"),
        ),
    )
    return replace(base, articles=articles, rates=rates)


SENDER = Sender(
    publication="Central Asia Weekly",
    postal_address="Example Media LLC, 12 Abai Avenue, Almaty 050000, Kazakhstan",
    base_url="https://example.com",
)


BULLETINS = REPO / "tests" / "content" / "bulletins"
# The hand-written bulletins by language, and the sample, each as an issue with a web version.
FIXTURES = {
    "sample": SAMPLE_BULLETIN,
    "ru": BULLETINS / "bulletin-ru-2025-12-18.txt",
    "kk": BULLETINS / "bulletin-kk-2025-12-18.txt",
    "en": BULLETINS / "bulletin-en-sentence-case-2025-12-18.txt",
}
SUBJECTS = {
    "sample": "Central Asia Weekly – 11 December 2025",
    "ru": "Central Asia Weekly – 18 декабря 2025",
    "kk": "Central Asia Weekly – 18 желтоқсан 2025",
    "en": "Central Asia Weekly – 18 December 2025",
}


def fixture_issue(name: str, mode: IssueMode = IssueMode.FULL) -> IssueView:
    """Issue 7 (number 7) made of every article of a fixture, in its detected language."""
    preview = preview_bulletin(FIXTURES[name].read_bytes())
    issue = IssueView.from_bulletin(
        preview.bulletin, subject=SUBJECTS[name], lang=preview.lang, issue_id=7, number=7
    )
    return replace(issue, mode=mode)
