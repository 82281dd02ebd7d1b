"""Rendering a stored issue and its pre-send check."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from newsletter.config import Settings, load_settings
from newsletter.content.models import Article
from newsletter.content.service import import_bulletin
from newsletter.errors import ConfigError, NotFound
from newsletter.issues.models import IssueStatus
from newsletter.issues.modes import IssueMode
from newsletter.issues.service import create_issue, set_mode
from newsletter.render import service
from newsletter.render.checks import IssueFacts, find_problems, insecure_links
from newsletter.render.models import IssueRendering
from tests.conftest import SAMPLE_BULLETIN, make_env


def test_rendering_is_stored_once_and_marks_the_issue_rendered(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly")

    rendering = service.render_issue(session, settings, issue.id)

    assert issue.status == IssueStatus.RENDERED
    assert rendering.html_bytes == len(rendering.html.encode())
    assert "%%NL.unsubscribe_url%%" in rendering.html
    assert service.stored_rendering(session, issue.id) is rendering


def test_the_sample_issue_passes_its_check(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly")

    assert service.check_issue(session, settings, issue.id) == []


def test_the_check_lists_every_problem(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly", date=dt.date(2026, 1, 30))
    empty = Article(
        title="An Empty Piece",
        paragraphs=[" "],
        source_date=dt.date(2026, 1, 30),
        fingerprint="0" * 64,
    )
    session.add(empty)
    session.flush()
    issue.entries[0].article = empty
    insecure = dataclasses.replace(
        settings, base_url="http://news.example.org", postal_address=None
    )

    problems = service.check_issue(session, insecure, issue.id)

    assert any("rates are from 2025-12-11" in p for p in problems)
    assert any("'An Empty Piece' is empty" in p for p in problems)
    assert any("base_url must be an absolute https URL" in p for p in problems)
    assert any("NEWSLETTER_POSTAL_ADDRESS" in p for p in problems)


def test_a_link_that_is_not_https_fails_the_check() -> None:
    html = (
        '<a href="https://ok.example/">a</a><a href="http://x.example/">b</a><img src="/logo.png">'
    )
    assert insecure_links(html) == ["http://x.example/", "/logo.png"]


def test_an_issue_without_rates_fails_the_check(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly", rates=None)

    assert service.check_issue(session, settings, issue.id) == ["the issue has no rate snapshot"]


BULLETINS = Path(__file__).parents[1] / "content" / "bulletins"
FIXTURES = [SAMPLE_BULLETIN, *sorted(BULLETINS.glob("*.txt"))]


@pytest.mark.parametrize("mode", list(IssueMode))
@pytest.mark.parametrize("bulletin", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_every_fixture_passes_its_check_in_both_modes(
    session: Session, settings: Settings, bulletin: Path, mode: IssueMode
) -> None:
    import_bulletin(session, bulletin.read_bytes())
    issue = create_issue(session, subject="Central Asia Weekly", mode=mode)

    assert service.check_issue(session, settings, issue.id) == []


def big_bulletin(articles: int, paragraphs: int) -> bytes:
    paragraph = "The regional markets moved in step with the rouble this week. " * 12
    body = "".join(
        f"Market Note Number {n} On Regional Trade\n\n" + f"{paragraph}\n\n" * paragraphs
        for n in range(articles)
    )
    return f"• KGS/USD = 0.01144 0%\n11 December 2025\n\n{body}".encode()


def test_an_issue_over_the_size_budget_is_told_what_excerpt_mode_would_weigh(
    session: Session, settings: Settings
) -> None:
    import_bulletin(session, big_bulletin(articles=16, paragraphs=6))
    issue = create_issue(session, subject="Big")

    (problem,) = service.check_issue(session, settings, issue.id)

    assert "over the 90 KB budget" in problem
    excerpt_kb = float(problem.split("excerpt mode would make it ")[1].split(" KB")[0])
    assert excerpt_kb < 90
    assert f"newsletter issue set-mode {issue.id} excerpt" in problem
    assert service.excerpt_html_bytes(session, settings, issue.id) / 1000 == pytest.approx(
        excerpt_kb, abs=0.1
    )
    set_mode(session, issue.id, IssueMode.EXCERPT)
    assert service.check_issue(session, settings, issue.id) == []


def test_an_issue_too_big_even_for_excerpt_mode_is_told_to_lose_articles(
    session: Session, settings: Settings
) -> None:
    import_bulletin(session, big_bulletin(articles=40, paragraphs=2))
    issue = create_issue(session, subject="Huge")

    (problem,) = service.check_issue(session, settings, issue.id)

    assert "even excerpt mode would be" in problem
    assert problem.endswith("leave out articles")
    set_mode(session, issue.id, IssueMode.EXCERPT)
    (problem,) = service.check_issue(session, settings, issue.id)
    assert problem.endswith("(Gmail clips at about 102 KB); leave out articles")


def test_an_image_shaped_like_a_tracking_pixel_fails_the_check() -> None:
    facts = IssueFacts(
        html='<p>x</p><img src="https://t.example/o.gif" width="1" height="1" alt="">'
        '<img src="https://t.example/h.gif" style="display:none" alt="">'
        '<img src="https://cdn.example/photo.jpg" width="552" alt="A photo">',
        issue_date=dt.date(2025, 12, 11),
        rates_date=dt.date(2025, 12, 11),
        empty_articles=(),
        rates_max_age_days=7,
        postal_address="1 Road",
    )
    problems = find_problems(facts)
    assert problems == [
        "an image that is tiny or hidden is a tracking pixel: https://t.example/o.gif",
        "an image that is tiny or hidden is a tracking pixel: https://t.example/h.gif",
    ]


def test_the_web_version_of_a_stored_issue_is_full_and_impersonal(
    session: Session, settings: Settings
) -> None:
    import_bulletin(session, (BULLETINS / "bulletin-ru-2025-12-18.txt").read_bytes())
    issue = create_issue(session, subject="Выпуск", mode=IssueMode.EXCERPT)

    html = service.web_version(session, settings, issue.id)

    assert "%%NL." not in html
    assert 'lang="ru"' in html
    for article in issue.articles:
        assert article.paragraphs[-1].split(",")[0] in html
    assert f"{settings.base_url}/issues/{issue.id}#article-1" in html


def test_the_rate_form_is_a_setting(session: Session, settings: Settings) -> None:
    import_bulletin(session, SAMPLE_BULLETIN.read_bytes())
    issue = create_issue(session, subject="Weekly")

    both = service.render_issue(session, settings, issue.id)
    assert "1 USD = 12,500&nbsp;UZS" in both.html  # the serialiser writes the no-break space
    assert "1 USD = 12,500\xa0UZS" in both.text
    desk = service.render_issue(session, dataclasses.replace(settings, rate_form="desk"), issue.id)
    assert "1 USD =" not in desk.html
    assert "1 USD =" not in desk.text
    with pytest.raises(ConfigError, match="NEWSLETTER_RATE_FORM"):
        load_settings(make_env(settings.database_url, NEWSLETTER_RATE_FORM="inverse"))


def test_the_stored_issue_renders_with_its_number_language_and_mode(
    session: Session, settings: Settings
) -> None:
    import_bulletin(session, (BULLETINS / "bulletin-kk-2025-12-18.txt").read_bytes())
    issue = create_issue(session, subject="Апта", number=12, mode=IssueMode.EXCERPT)

    rendering = service.render_issue(session, settings, issue.id)

    assert "№ 12 шығарылым" in rendering.html
    assert "Әрі қарай оқу" in rendering.html
    assert f"{settings.base_url}/issues/{issue.id}#article-4" in rendering.text


def test_the_stored_rendering_is_read_never_made(
    session: Session, settings: Settings, sample_bulletin: bytes
) -> None:
    import_bulletin(session, sample_bulletin)
    issue = create_issue(session, subject="Weekly")

    with pytest.raises(NotFound, match="has not been rendered since it last changed"):
        service.stored_rendering(session, issue.id)
    assert session.get(IssueRendering, issue.id) is None  # and nothing was stored
