"""The fixed words of the email in the issue's language, from the gettext catalogue (Babel)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from lxml import html as lxml_html

from newsletter.issues.modes import IssueMode
from newsletter.render.email import render_email, render_web
from newsletter.render.locale import CATALOGUE_LANGUAGES, LOCALE_DIR, translations
from newsletter.render.view import ArticleView
from tests.render.samples import SENDER, TEMPLATE_DIR, fixture_issue, sample_issue

ENGLISH_FIXED_WORDS = (
    "View this email in your browser",
    "In this issue",
    "Exchange rates",
    "Currency",
    "unchanged over the week",
    "You receive",
    "Unsubscribe",
    "View in browser",
    "Continue reading",
)


def template_messages() -> set[str]:
    found = extract_from_dir(
        str(TEMPLATE_DIR),
        method_map=[("**.j2", "jinja2.ext:babel_extract")],
        options_map={"**.j2": {"trim_blocks": "true", "lstrip_blocks": "true"}},
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def test_the_templates_have_fixed_words_to_translate() -> None:
    messages = template_messages()
    assert {"In this issue", "Continue reading", "View in browser"} <= messages


@pytest.mark.parametrize("lang", CATALOGUE_LANGUAGES)
def test_each_catalogue_translates_exactly_the_templates_words(lang: str) -> None:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "email.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    entries = {m.id: m for m in catalog if m.id}

    assert set(entries) == template_messages()  # nothing missing, nothing stale
    for message in entries.values():
        assert isinstance(message.string, str), message.id
        assert message.string.strip(), message.id
        assert not message.fuzzy, message.id
    assert [(m.id, errors) for m, errors in catalog.check() if errors] == []  # placeholders


def test_the_translation_template_lists_the_templates_words() -> None:
    with (LOCALE_DIR / "email.pot").open("rb") as handle:
        catalog = read_po(handle)
    assert {m.id for m in catalog if m.id} == template_messages()


def test_catalogues_are_read_from_the_po_files_with_no_build_step() -> None:
    assert not list(LOCALE_DIR.rglob("*.mo"))  # nothing compiled to forget to rebuild
    assert translations("ru").gettext("In this issue") == "В этом выпуске"
    assert translations("ru-RU").gettext("In this issue") == "В этом выпуске"
    assert translations("ky").gettext("In this issue") == "In this issue"  # English fallback


def visible_text(html: str) -> str:
    return " ".join(lxml_html.document_fromstring(html).text_content().split())


def test_a_russian_issue_has_russian_fixed_words_in_html_and_text() -> None:
    issue = fixture_issue("ru")
    email = render_email(issue, SENDER, TEMPLATE_DIR)
    html_text = visible_text(email.html)

    doc = lxml_html.document_fromstring(email.html)
    assert (doc.get("lang"), doc.get("dir")) == ("ru", "ltr")
    for words in (
        "Открыть письмо в браузере",
        "В этом выпуске",
        "Курсы валют, 18 декабря 2025",
        "▲ рост, ▼ снижение, ▬ без изменений за неделю.",
        "Вы получаете Central Asia Weekly, потому что адрес %%NL.email%% подписан на",
        "Отписаться от Central Asia Weekly",
        "Открыть в браузере",
        "Выпуск 7",
    ):
        assert words in html_text, words
    assert "Киргизский сом" in html_text  # currency names from CLDR
    for words in ("▲ рост, ▼ снижение, ▬ без изменений за неделю.", "Отписаться:"):
        assert words in email.text, words
    for english in ENGLISH_FIXED_WORDS:
        assert english not in html_text, english
        assert english not in email.text, english


def test_a_kazakh_issue_has_kazakh_fixed_words() -> None:
    email = render_email(fixture_issue("kk"), SENDER, TEMPLATE_DIR)
    html_text = visible_text(email.html)
    assert "Бұл шығарылымда" in html_text
    assert "18 желтоқсан 2025" in html_text
    assert "Жазылымнан бас тарту" in email.text
    for english in ENGLISH_FIXED_WORDS:
        assert english not in html_text, english


def test_excerpt_mode_reads_on_in_the_issues_language() -> None:
    email = render_email(replace(fixture_issue("ru"), mode=IssueMode.EXCERPT), SENDER, TEMPLATE_DIR)
    doc = lxml_html.document_fromstring(email.html)
    labels = [a.get("aria-label") for a in doc.xpath("//a[text()='Читать дальше']")]
    assert len(labels) == 4
    assert labels[0].startswith("Читать дальше: Казахстан и Китай")


def test_a_language_without_a_catalogue_keeps_its_tag_and_reads_in_english() -> None:
    issue = replace(sample_issue(), lang="ky")
    doc = lxml_html.document_fromstring(render_email(issue, SENDER, TEMPLATE_DIR).html)
    assert doc.get("lang") == "ky"
    assert "In this issue" in doc.text_content()


def test_zero_width_non_joiners_survive_the_whole_pipeline() -> None:
    title = "ایران به قزاقستان فناوری آبیاری می\u200cدهد"
    paragraph = "شرکت\u200cهای ایرانی آماده\u200cاند."
    article = ArticleView(id=1, title=title, paragraphs=(paragraph, paragraph))
    issue = replace(sample_issue(), lang="fa", articles=(article, article))
    email = render_email(issue, SENDER, TEMPLATE_DIR)

    doc = lxml_html.document_fromstring(email.html)
    assert doc.get("dir") == "rtl"
    assert [h2.text_content() for h2 in doc.xpath("//h2")] == [title, title]
    assert paragraph in doc.text_content()
    assert title in email.text
    assert paragraph in email.text


def test_the_web_version_is_in_the_issues_language_too() -> None:
    html = render_web(fixture_issue("ru"), SENDER, TEMPLATE_DIR)
    assert "Вы читаете веб-версию Central Asia Weekly." in visible_text(html)
    assert not re.search(r"%%NL\.", html)


def test_the_catalogue_directory_ships_with_the_package() -> None:
    assert LOCALE_DIR.is_relative_to(Path(__file__).resolve().parents[2] / "newsletter")
