"""An email a reader finishes: masthead, "In this issue", excerpt mode, anchors, web version."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from lxml import html as lxml_html

from newsletter.errors import InvalidInput
from newsletter.issues.modes import IssueMode
from newsletter.render.email import render_email, render_web
from newsletter.render.personalise import MARKER
from newsletter.render.view import ArticleView, IssueView, excerpt_of
from tests.render.samples import SENDER, TEMPLATE_DIR, sample_issue

WEB = "https://example.com/issues/7"


@pytest.fixture
def issue() -> IssueView:
    return replace(sample_issue(), id=7, number=12)


def dom(html: str) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(html)


def test_the_masthead_names_the_newsletter_the_issue_number_and_the_date(issue: IssueView) -> None:
    doc = dom(render_email(issue, SENDER, TEMPLATE_DIR).html)
    (kicker,) = doc.xpath("//p[contains(@class, 'nl-kicker')]")
    (h1,) = doc.xpath("//h1")
    assert kicker.text_content() == "Issue 12"
    assert " ".join(h1.itertext()) == "Central Asia Weekly 11 December 2025"
    assert doc.xpath("//p[contains(@class, 'nl-kicker')]/following::h1")  # above the name


def test_in_this_issue_links_each_article_on_the_web_version_in_order(issue: IssueView) -> None:
    doc = dom(render_email(issue, SENDER, TEMPLATE_DIR).html)
    (title,) = doc.xpath("//p[contains(@class, 'nl-toc-title')]")
    links = doc.xpath("//ul[contains(@class, 'nl-toc')]/li/a")

    assert title.text_content() == "In this issue"
    assert [a.text_content() for a in links] == [a.title for a in issue.articles]
    assert [a.get("href") for a in links] == [
        f"{WEB}#article-{n}" for n in range(1, len(issue.articles) + 1)
    ]


def test_every_article_has_a_stable_anchor(issue: IssueView) -> None:
    for html in (
        render_email(issue, SENDER, TEMPLATE_DIR).html,
        render_email(replace(issue, mode=IssueMode.EXCERPT), SENDER, TEMPLATE_DIR).html,
        render_web(issue, SENDER, TEMPLATE_DIR),
    ):
        ids = [h2.get("id") for h2 in dom(html).xpath("//h2")]
        assert ids == [f"article-{n}" for n in range(1, 7)]


def test_a_one_article_issue_has_no_contents_list(issue: IssueView) -> None:
    single = replace(issue, articles=issue.articles[:1])
    assert dom(render_email(single, SENDER, TEMPLATE_DIR).html).xpath("//ul") == []


def test_without_a_web_version_the_contents_are_not_links() -> None:
    doc = dom(render_email(sample_issue(), SENDER, TEMPLATE_DIR).html)
    items = doc.xpath("//ul[contains(@class, 'nl-toc')]/li")
    assert len(items) == 6
    assert doc.xpath("//ul[contains(@class, 'nl-toc')]//a") == []


def test_excerpt_mode_shows_each_first_paragraph_then_continue_reading(issue: IssueView) -> None:
    email = render_email(replace(issue, mode=IssueMode.EXCERPT), SENDER, TEMPLATE_DIR)
    doc = dom(email.html)
    body = " ".join(doc.text_content().split())

    for number, article in enumerate(issue.articles, start=1):
        assert " ".join(article.paragraphs[0].split()) in body
        for later in article.paragraphs[1:]:
            assert " ".join(later.split()) not in body
        (more,) = doc.xpath(f"//a[@href='{WEB}#article-{number}' and text()='Continue reading']")
        assert more.get("aria-label") == f"Continue reading: {article.title}"  # HTML-11
        assert f"Continue reading:\n{WEB}#article-{number}\n" in email.text
    for later in issue.articles[0].paragraphs[1:]:
        assert " ".join(later.split())[:60] not in " ".join(email.text.split())


def test_excerpt_mode_is_much_smaller_than_full_mode(issue: IssueView) -> None:
    full = render_email(issue, SENDER, TEMPLATE_DIR)
    excerpt = render_email(replace(issue, mode=IssueMode.EXCERPT), SENDER, TEMPLATE_DIR)
    assert excerpt.html_bytes < full.html_bytes * 0.8  # the markup around the text stays
    assert len(excerpt.text) < len(full.text) / 2


def test_an_excerpt_may_be_cut_at_a_number_of_words(issue: IssueView) -> None:
    first = issue.articles[0].paragraphs[0]
    cut = excerpt_of(issue.articles[0].paragraphs, 12)
    assert cut == " ".join(first.split()[:12]).rstrip(",;:–-") + "…"
    assert excerpt_of(("Short one.",), 12) == "Short one."
    email = render_email(
        replace(issue, mode=IssueMode.EXCERPT, excerpt_words=12), SENDER, TEMPLATE_DIR
    )
    assert cut in " ".join(dom(email.html).text_content().split())


def test_without_a_web_version_excerpts_continue_to_the_articles_own_link() -> None:
    article = ArticleView(
        id=1, title="A Piece", paragraphs=("One.", "Two."), url="https://example.com/a"
    )
    issue = replace(sample_issue(), articles=(article,), mode=IssueMode.EXCERPT)
    doc = dom(render_email(issue, SENDER, TEMPLATE_DIR).html)
    assert doc.xpath("//a[text()='Continue reading']/@href") == ["https://example.com/a"]


def test_the_web_version_is_the_full_issue_with_no_personal_data(issue: IssueView) -> None:
    html = render_web(replace(issue, mode=IssueMode.EXCERPT), SENDER, TEMPLATE_DIR)
    doc = dom(html)
    body = " ".join(doc.text_content().split())

    assert not MARKER.search(html)
    assert "%%NL." not in html
    for article in issue.articles:  # full mode whatever the email's mode
        for paragraph in article.paragraphs:
            assert " ".join(paragraph.split()) in body
    assert "Unsubscribe" not in body
    assert "View this email in your browser" not in body
    assert "You are reading the web version of Central Asia Weekly." in body
    assert doc.xpath("//a[text()='All issues']/@href") == ["https://example.com/archive"]
    first_link = doc.xpath("//ul[contains(@class, 'nl-toc')]/li/a")[0]
    assert first_link.get("href") == f"{WEB}#article-1"
    assert SENDER.postal_address in body


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/pixel.gif",
        "https://example.com/p.gif?r=%%NL.email%%",
        "https://user:pw@example.com/p.gif",
    ],
)
def test_an_image_that_could_track_a_reader_is_refused_by_the_view(url: str) -> None:
    with pytest.raises(InvalidInput):
        ArticleView(id=1, title="T", paragraphs=("p",), image_url=url, image_alt="A photo")


def test_article_images_have_alt_text_and_the_columns_fixed_width(issue: IssueView) -> None:
    pictured = replace(
        issue.articles[0], image_url="https://cdn.example.com/sco.jpg", image_alt="The hall"
    )
    for mode in IssueMode:
        email = render_email(
            replace(issue, mode=mode, articles=(pictured, *issue.articles[1:])),
            SENDER,
            TEMPLATE_DIR,
        )
        (img,) = dom(email.html).xpath("//img")
        assert (img.get("src"), img.get("alt"), img.get("width")) == (
            "https://cdn.example.com/sco.jpg",
            "The hall",
            "552",
        )
        assert not re.search(r"%%NL\.[a-z_]+%%", img.get("src"))
