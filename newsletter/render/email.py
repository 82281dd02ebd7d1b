"""Render one issue into the HTML and text bodies of its email, once per issue.

The pipeline, in the order MJML-04 requires (docs/standards.md: an HTML parser moves a Jinja
loop that sits between table rows out of the table, so every loop runs first)::

    IssueView ─Jinja (layout.mjml.j2)─▶ MJML ─lint─▶ mjml-python (MRML) ─▶ HTML ─css-inline─▶ HTML
    IssueView ─Jinja (text.txt.j2)──▶ text

Every loop runs in Jinja, before any HTML parser. Per-recipient fields are left as markers
(``personalise.marker``) and filled later by ``PersonalTemplate``, so nothing here runs per
recipient. The templates' fixed words go through ``_()``, translated into the issue's language
from the gettext catalogue (``locale.py``); one Jinja environment per template directory and
language is built once and cached. Pure: no database, network or clock; the only I/O is reading
the template directory and the catalogues.

Two audiences, from the same templates: ``render_email`` makes the message in the issue's mode
(full or excerpt), with markers; ``render_web`` makes the web version (always full, no markers,
no unsubscribe link): what ``{base_url}/issues/{id}`` serves and excerpt mode links to.
"""

from __future__ import annotations

import functools
import gettext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import css_inline
import jinja2
import mjml
from markupsafe import Markup

from newsletter.errors import RenderError
from newsletter.issues.modes import IssueMode
from newsletter.render.lint import lint_mjml
from newsletter.render.locale import translations
from newsletter.render.personalise import MARKER, marker
from newsletter.render.text import heading, rate_table, wrap_text
from newsletter.render.view import IssueView, Sender

# HTML-01: Gmail clips at about 102 KB of decoded HTML; 90 KB leaves room for link rewriting.
SIZE_BUDGET_BYTES = 90_000
LAYOUT_TEMPLATE = "layout.mjml.j2"
TEXT_TEMPLATE = "text.txt.j2"
INLINE_CSS_FILE = "inline.css"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    html: str  # inlined, with %%NL.*%% markers still in it
    text: str  # wrapped at 78, with markers
    html_bytes: int  # UTF-8 size of ``html``; compare with SIZE_BUDGET_BYTES


@dataclass(frozen=True, slots=True)
class _Templates:
    """What is loaded once per template directory and reused for every issue."""

    css: str
    inliner: css_inline.CSSInliner


def render_email(issue: IssueView, sender: Sender, template_dir: Path) -> RenderedEmail:
    """Render ``issue`` in its mode with the templates in ``template_dir`` (RenderError on a
    template fault)."""
    template_dir = template_dir.resolve()
    env = _environment(template_dir, issue.lang)
    html = inline_css(compile_mjml(render_mjml(issue, sender, env)), _load(template_dir).inliner)
    text = _render(env, TEXT_TEMPLATE, issue=issue, sender=sender, web=False)
    return RenderedEmail(html=html, text=text, html_bytes=len(html.encode("utf-8")))


def render_web(issue: IssueView, sender: Sender, template_dir: Path) -> str:
    """The web version of ``issue``: full mode whatever the email's, and no personal data."""
    template_dir = template_dir.resolve()
    full = replace(issue, mode=IssueMode.FULL)
    env = _environment(template_dir, issue.lang)
    source = _render(env, LAYOUT_TEMPLATE, issue=full, sender=sender, web=True)
    lint_mjml(source)
    html = inline_css(compile_mjml(source), _load(template_dir).inliner)
    if MARKER.search(html):
        # A template that calls marker() in the web branch would publish a reader's address.
        raise RenderError("the web version must not contain personal fields (%%NL.…%%)")
    return html


def render_mjml(issue: IssueView, sender: Sender, env: jinja2.Environment) -> str:
    """Jinja step: the MJML document with every loop expanded, linted for MRML."""
    source = _render(env, LAYOUT_TEMPLATE, issue=issue, sender=sender, web=False)
    lint_mjml(source)
    return source


def compile_mjml(source: str) -> str:
    """MJML → HTML with mjml-python; its ValueError becomes a RenderError."""
    try:
        # fonts={}: MRML's default font list would add a Google Fonts <link> and @import
        # (HTML-12) whenever a font-family names Ubuntu; the templates use a system stack.
        return mjml.mjml2html(source, fonts={}, include_loader=_refuse_include)
    except ValueError as exc:
        raise RenderError(f"MJML did not compile: {exc}") from exc


def inline_css(html: str, inliner: css_inline.CSSInliner) -> str:
    """Inline inline.css into style attributes; <style> blocks (media queries) stay as they are."""
    try:
        return inliner.inline(html)
    except ValueError as exc:  # css_inline.InlineError subclasses ValueError
        raise RenderError(f"CSS inlining failed: {exc}") from exc


def environment(template_dir: Path, lang: str = "en") -> jinja2.Environment:
    """The cached Jinja environment for ``template_dir`` in ``lang`` (for tools and the bench)."""
    return _environment(template_dir.resolve(), lang)


def css_inliner(template_dir: Path) -> css_inline.CSSInliner:
    """The cached css-inline inliner loaded with ``template_dir``'s inline.css."""
    return _load(template_dir.resolve()).inliner


@functools.lru_cache(maxsize=8)
def _load(template_dir: Path) -> _Templates:
    try:
        css = (template_dir / INLINE_CSS_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise RenderError(f"cannot read {INLINE_CSS_FILE} in {template_dir}: {exc}") from exc
    # Juice-style, measured against premailer in docs/render.md ("Inliner"): inline only this
    # file. inline_style_tags=False leaves MJML's head CSS and our media queries in <style>
    # untouched, !important included; load_remote_stylesheets=False keeps a stray <link> from
    # fetching anything (SEC-06).
    inliner = css_inline.CSSInliner(
        inline_style_tags=False,
        keep_style_tags=True,
        extra_css=css,
        load_remote_stylesheets=False,
    )
    return _Templates(css=css, inliner=inliner)


@functools.lru_cache(maxsize=32)
def _environment(template_dir: Path, lang: str) -> jinja2.Environment:
    _load(template_dir)  # a directory without inline.css fails here, before any template
    env = jinja2.Environment(
        # FileSystemLoader refuses names with ".." segments and absolute paths (SEC-07).
        loader=jinja2.FileSystemLoader(template_dir),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("mjml.j2", "mjml", "html.j2", "html"),
            disabled_extensions=("txt.j2", "txt"),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,  # a typo must fail the render, never send an empty field
        finalize=_neutralise_markers,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["marker"] = _marker
    env.globals["_"] = env.globals["gettext"] = _gettext(translations(lang))
    env.filters["wrap"] = wrap_text
    env.filters["heading"] = heading
    env.filters["rate_table"] = rate_table
    return env


def _gettext(catalogue: gettext.NullTranslations) -> Any:
    """``_("Unsubscribe from %(publication)s", publication=…)`` in the templates.

    Like Jinja's "new style" gettext: the translation is escaped for HTML templates and filled
    with %-style keyword values, each escaped too. The values also get the marker neutralising
    of ``finalize``, which a call's arguments would otherwise bypass: a headline quoted in a
    translated label must not become a personalisation marker either.
    """

    # Words without values are the same in every issue: looked up and escaped once.
    fixed: dict[tuple[str, bool], str] = {}

    @jinja2.pass_context
    def translate(context: jinja2.runtime.Context, message: str, **values: Any) -> str:
        html = bool(context.eval_ctx.autoescape)
        if not values and (message, html) in fixed:
            return fixed[message, html]
        translated = catalogue.gettext(message)
        values = {name: _neutralise_markers(value) for name, value in values.items()}
        # Safe: the catalogue is ours; every value is escaped by Markup's % operator.
        result = Markup(translated) % values if html else translated % values  # noqa: S704
        if not values:
            fixed[message, html] = result
        return result

    return translate


def _render(env: jinja2.Environment, name: str, **context: Any) -> str:
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        where = f"template {exc.name or name} line {exc.lineno}"
        raise RenderError(f"{where}: {exc.message}") from exc
    except jinja2.TemplateError as exc:  # UndefinedError, TemplateNotFound, ...
        raise RenderError(f"template {name}: {type(exc).__name__}: {exc}") from exc


def _marker(field: str) -> Markup:
    # Markup exempts the marker from autoescaping and from _neutralise_markers below.
    try:
        # Safe: marker() only returns "%%NL.<known field>%%", no markup characters.
        return Markup(marker(field))  # noqa: S704
    except ValueError as exc:
        raise RenderError(str(exc)) from exc


def _neutralise_markers(value: Any) -> Any:
    """Stop desk text such as "%%NL.email%%" from becoming a personalisation marker.

    Only ``marker()`` may produce one: a stray marker would be filled with the recipient's data,
    and an unknown one would make ``PersonalTemplate.split`` fail for the whole issue.
    """
    if isinstance(value, Markup) or not isinstance(value, str) or "%%" not in value:
        return value
    # U+2060 WORD JOINER: invisible, survives MRML and html5ever (an entity such as &#37; would
    # be decoded back to "%" by the inliner), and the text still reads "%%".
    return value.replace("%%", "%\u2060%")


def _refuse_include(path: str) -> str:
    # The linter already rejects mj-include; this keeps MRML from reading files if it is bypassed.
    raise ValueError(f"mj-include is disabled (SEC-07): {path!r}")
