"""SEC-04 (escaping), SEC-06 (no network from the inliner), SEC-07 (confined templates), and
template faults surfacing as RenderError."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from lxml import html as lxml_html

from newsletter.errors import RenderError
from newsletter.render.email import compile_mjml, render_email
from newsletter.render.personalise import PersonalTemplate
from newsletter.render.view import ArticleView, IssueView
from tests.render.samples import SENDER, TEMPLATE_DIR

HOSTILE = (
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    '"><a href="javascript:alert(3)">x</a>',
)


def hostile_issue(sample: IssueView) -> IssueView:
    article = ArticleView(
        id=99,
        title='Title "><script>alert(4)</script>',
        paragraphs=HOSTILE,
        url="https://example.com/a?x=1&y=2",
        image_url="https://example.com/i.jpg",
        image_alt='alt" onerror="alert(5)',
    )
    return replace(sample, articles=(article, *sample.articles))


def test_sec_04_article_markup_is_shown_as_text_not_run(sample: IssueView) -> None:
    email = render_email(hostile_issue(sample), SENDER, TEMPLATE_DIR)
    doc = lxml_html.document_fromstring(email.html)
    assert doc.xpath("//script") == []
    assert doc.xpath("//*[@onerror]") == []
    assert not [href for href in doc.xpath("//a/@href") if href.startswith("javascript:")]
    (image,) = doc.xpath("//img")
    assert image.get("alt") == 'alt" onerror="alert(5)'
    text = doc.text_content()
    for snippet in (*HOSTILE, 'Title "><script>alert(4)</script>'):
        assert snippet in text  # the reader sees exactly what the desk wrote


def test_sec_04_text_part_keeps_hostile_text_verbatim(sample: IssueView) -> None:
    email = render_email(hostile_issue(sample), SENDER, TEMPLATE_DIR)
    assert "<script>alert(1)</script>" in email.text  # plain text: nothing to escape


def test_desk_text_cannot_forge_a_personalisation_marker(sample: IssueView) -> None:
    article = ArticleView(
        id=1,
        title="%%NL.unsubscribe_url%% headline",
        paragraphs=("Mail %%NL.email%% and %%NL.bogus%%.",),
    )
    email = render_email(replace(sample, articles=(article,)), SENDER, TEMPLATE_DIR)
    bodies: tuple[tuple[str, Literal["html", "text"]], ...] = (
        (email.html, "html"),
        (email.text, "text"),
    )
    for body, escape in bodies:
        template = PersonalTemplate.split(body, escape)  # would raise on %%NL.bogus%%
        assert template.fields.count("unsubscribe_url") == 1  # the footer's only
        assert template.fields.count("email") == 1
    text = lxml_html.document_fromstring(email.html).text_content().replace("\u2060", "")
    text = " ".join(text.split())
    assert "Mail %%NL.email%% and %%NL.bogus%%." in text  # still reads as written


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"p { color: red; }")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[tuple[int, list[str]]]:
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _Recorder.requests
    finally:
        server.shutdown()
        server.server_close()


def test_sec_06_a_remote_stylesheet_is_never_fetched(
    template_copy: Path, sample: IssueView, loopback: tuple[int, list[str]]
) -> None:
    port, requests = loopback
    layout = template_copy / "layout.mjml.j2"
    url = f"http://127.0.0.1:{port}/evil.css"
    layout.write_text(
        layout.read_text().replace(
            "<mj-head>",
            f'<mj-head>\n<mj-raw><link rel="stylesheet" href="{url}" /></mj-raw>'
            f"\n<mj-style>@import url({url}?import);</mj-style>",
        )
    )
    render_email(sample, SENDER, template_copy)
    assert requests == []


def test_sec_07_a_jinja_include_outside_the_template_dir_raises(
    template_copy: Path, sample: IssueView
) -> None:
    (template_copy.parent / "secret.txt").write_text("secret")
    header = template_copy / "partials" / "header.mjml.j2"
    header.write_text('{% include "../../secret.txt" %}' + header.read_text())
    with pytest.raises(RenderError, match=r"secret\.txt"):
        render_email(sample, SENDER, template_copy)


def test_sec_07_mj_include_is_refused_by_the_linter(template_copy: Path, sample: IssueView) -> None:
    header = template_copy / "partials" / "header.mjml.j2"
    header.write_text('<mj-include path="../../x" />' + header.read_text())
    with pytest.raises(RenderError, match="mj-include"):
        render_email(sample, SENDER, template_copy)


def test_sec_07_mj_include_fails_even_if_the_linter_is_bypassed() -> None:
    with pytest.raises(RenderError, match="MJML"):
        compile_mjml('<mjml><mj-body><mj-include path="../../x" /></mj-body></mjml>')


def test_an_undefined_variable_is_a_render_error_not_an_empty_field(
    template_copy: Path, sample: IssueView
) -> None:
    footer = template_copy / "partials" / "footer.mjml.j2"
    footer.write_text(footer.read_text().replace("sender.postal_address", "sender.postal_adress"))
    with pytest.raises(RenderError, match="postal_adress"):
        render_email(sample, SENDER, template_copy)


def test_an_undefined_variable_in_the_text_template_is_a_render_error(
    template_copy: Path, sample: IssueView
) -> None:
    text = template_copy / "text.txt.j2"
    text.write_text(text.read_text() + "{{ issue.editor }}\n")
    with pytest.raises(RenderError, match="editor"):
        render_email(sample, SENDER, template_copy)


def test_a_jinja_syntax_error_names_the_template_and_line(
    template_copy: Path, sample: IssueView
) -> None:
    (template_copy / "partials" / "footer.mjml.j2").write_text("\n{% if %}")
    with pytest.raises(RenderError, match=r"footer\.mjml\.j2 line 2"):
        render_email(sample, SENDER, template_copy)


def test_broken_mjml_is_a_render_error(template_copy: Path, sample: IssueView) -> None:
    footer = template_copy / "partials" / "footer.mjml.j2"
    footer.write_text(footer.read_text().replace("</mj-section>", "", 1))
    with pytest.raises(RenderError, match="MJML did not compile"):
        render_email(sample, SENDER, template_copy)


def test_an_unknown_marker_field_is_a_render_error(template_copy: Path, sample: IssueView) -> None:
    footer = template_copy / "partials" / "footer.mjml.j2"
    footer.write_text(footer.read_text().replace("marker('email')", "marker('phone')"))
    with pytest.raises(RenderError, match="phone"):
        render_email(sample, SENDER, template_copy)
