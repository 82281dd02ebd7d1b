"""``newsletter issue …``: assemble, render and check an issue."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from newsletter.cli.context import emit, json_option, reading, settings, transaction
from newsletter.errors import InvalidInput, file_error
from newsletter.issues.models import Issue
from newsletter.issues.modes import IssueMode
from newsletter.issues.service import LATEST, create_issue, get_issue, list_issues, set_mode
from newsletter.render import service as render_service
from newsletter.render.email import SIZE_BUDGET_BYTES


def register(cli: click.Group) -> None:
    cli.add_command(issue)


@click.group()
def issue() -> None:
    """Assemble, render and check issues."""


mode_option = click.option(
    "--mode",
    type=click.Choice([m.value for m in IssueMode]),
    default=IssueMode.FULL.value,
    show_default=True,
    help="full: every paragraph; excerpt: each article's first paragraph, then a "
    "'Continue reading' link to the web version.",
)
excerpt_words_option = click.option(
    "--excerpt-words",
    type=int,
    help="In excerpt mode, cut each first paragraph after this many words.",
)


@issue.command("create")
@click.option("--subject", required=True, help="Subject line of the email.")
@click.option(
    "--articles",
    help="Article ids in the order to show, e.g. 3,1,2. "
    "Default: the articles of the latest import, in their order.",
)
@click.option(
    "--rates",
    default=LATEST,
    show_default=True,
    help="Rate snapshot to show: a date (YYYY-MM-DD) or 'latest'.",
)
@click.option("--preheader", help="Inbox preview text; default: the first article's opening.")
@click.option("--date", "issue_date", help="Issue date (YYYY-MM-DD); default: the articles' date.")
@click.option(
    "--lang",
    help="Language of the issue (en, ru, kk, …): its fixed words, dates and <html lang>. "
    "Default: the language most of its articles are in.",
)
@click.option("--number", type=int, help="Issue number in the masthead; default: the next one.")
@mode_option
@excerpt_words_option
@json_option
def issue_create(
    subject: str,
    articles: str | None,
    rates: str,
    preheader: str | None,
    issue_date: str | None,
    lang: str | None,
    number: int | None,
    mode: str,
    excerpt_words: int | None,
    as_json: bool,
) -> None:
    """Create a draft issue from chosen articles and a rate snapshot."""
    with transaction() as session:
        created = create_issue(
            session,
            subject=subject,
            article_ids=_ids(articles) if articles else None,
            rates=rates if rates == LATEST else _date("--rates", rates),
            preheader=preheader,
            date=_date("--date", issue_date) if issue_date else None,
            lang=lang,
            number=number,
            mode=IssueMode(mode),
            excerpt_words=excerpt_words,
        )
        document = issue_document(created)
    emit(
        document,
        as_json,
        lambda d: click.echo(
            f"created issue {d['id']} ({len(d['articles'])} articles, rates of {d['rates_date']})"
        ),
    )


@issue.command("render")
@click.argument("issue_id", type=int)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML (with sample personal values) to this file.",
)
@click.option(
    "--text",
    "text_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the plain-text part to this file.",
)
@json_option
def issue_render(
    issue_id: int, html_out: Path | None, text_out: Path | None, as_json: bool
) -> None:
    """Render an issue once (HTML and text) and store it for sending."""
    config = settings()
    with transaction() as session:
        rendering = render_service.render_issue(session, config, issue_id)
        summary = render_service.report(rendering)
        preview = render_service.preview(rendering, config)
        full = get_issue(session, issue_id).mode == IssueMode.FULL
        excerpt_bytes = (
            render_service.excerpt_html_bytes(session, config, issue_id)
            if summary.over_budget and full
            else None
        )
    document: dict[str, Any] = {
        "id": issue_id,
        "html_bytes": summary.html_bytes,
        "over_budget": summary.over_budget,
    }
    for path, content, key in ((html_out, preview.html, "html"), (text_out, preview.text, "text")):
        if path is not None:
            try:
                path.write_text(content, encoding="utf-8")
            except OSError as exc:
                raise file_error("write", path, exc) from exc
            document[key] = str(path)
    warn_if_over_budget(issue_id, summary.html_bytes, excerpt_bytes)
    emit(
        document,
        as_json,
        lambda d: click.echo(f"rendered issue {d['id']}: {d['html_bytes'] / 1000:.1f} KB of HTML"),
    )


@issue.command("set-mode")
@click.argument("issue_id", type=int)
@click.argument("mode", type=click.Choice([m.value for m in IssueMode]))
@excerpt_words_option
@json_option
def issue_set_mode(issue_id: int, mode: str, excerpt_words: int | None, as_json: bool) -> None:
    """Switch an unsent issue to full or excerpt mode (it is rendered again before sending)."""
    with transaction() as session:
        document = issue_document(
            set_mode(session, issue_id, IssueMode(mode), excerpt_words=excerpt_words)
        )
    emit(document, as_json, lambda d: click.echo(f"issue {d['id']} is now in {d['mode']} mode"))


@issue.command("check")
@click.argument("issue_id", type=int)
@json_option
def issue_check(issue_id: int, as_json: bool) -> None:
    """Run the pre-send check; exit 1 and list the problems if the issue is not ready."""
    with reading() as session:
        problems = render_service.check_issue(session, settings(), issue_id)
    emit({"id": issue_id, "ok": not problems, "problems": problems}, as_json, _print_check)
    if problems:
        sys.exit(1)


@issue.command("show")
@click.argument("issue_id", type=int)
@json_option
def issue_show(issue_id: int, as_json: bool) -> None:
    """Show an issue's subject, status, articles and rates."""
    with reading() as session:
        document = issue_document(get_issue(session, issue_id))
    emit(document, as_json)


@issue.command("ls")
@json_option
def issue_ls(as_json: bool) -> None:
    """List issues."""
    with reading() as session:
        documents = [issue_document(i) for i in list_issues(session)]
    emit(documents, as_json, _print_issues)


def _print_issues(documents: list[dict[str, Any]]) -> None:
    for d in documents:
        click.echo(f"{d['id']:>4}  {d['date']}  {d['status']:<9} {d['subject']}")


def issue_document(record: Issue) -> dict[str, Any]:
    return {
        "id": record.id,
        "subject": record.subject,
        "preheader": record.preheader,
        "date": record.date.isoformat(),
        "number": record.number,
        "lang": record.lang,
        "mode": str(record.mode),
        "excerpt_words": record.excerpt_words,
        "status": str(record.status),
        "articles": [{"id": a.id, "title": a.title} for a in record.articles],
        "rates_date": record.snapshot.date.isoformat() if record.snapshot else None,
    }


def warn_if_over_budget(issue_id: int, html_bytes: int, excerpt_bytes: int | None) -> None:
    if html_bytes <= SIZE_BUDGET_BYTES:
        return
    hint = ""
    if excerpt_bytes is not None and excerpt_bytes <= SIZE_BUDGET_BYTES:
        hint = (
            f"; in excerpt mode it would be {excerpt_bytes / 1000:.1f} KB: "
            f"newsletter issue set-mode {issue_id} excerpt"
        )
    click.echo(
        f"warning: the HTML is {html_bytes / 1000:.1f} KB, over the "
        f"{SIZE_BUDGET_BYTES // 1000} KB budget; Gmail clips messages at about 102 KB{hint}",
        err=True,
    )


def _print_check(document: dict[str, Any]) -> None:
    if document["ok"]:
        click.echo(f"issue {document['id']} is ready to send")
        return
    click.echo(f"issue {document['id']} is not ready:")
    for problem in document["problems"]:
        click.echo(f"  - {problem}")


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise InvalidInput(
            f"--articles must be comma-separated ids, e.g. 3,1,2; got {text!r}"
        ) from exc


def _date(option: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{option} must be a date like 2025-12-11; got {text!r}") from exc
