"""``newsletter import-bulletin``: bring the desk's export into the database, or preview it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from newsletter.cli.context import emit, json_option, settings, transaction
from newsletter.content.models import BulletinImport
from newsletter.content.service import BulletinPreview, import_bulletin, preview_bulletin
from newsletter.errors import file_error


def register(cli: click.Group) -> None:
    cli.add_command(import_bulletin_command)


@click.command("import-bulletin")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--lang",
    help="Language the bulletin is written in (a tag such as en, ru, kk); "
    "default: detected from the articles. Given again, it corrects an earlier import.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would be stored (date, language, rates, each headline with its "
    "paragraphs) and store nothing.",
)
@json_option
def import_bulletin_command(file: Path, lang: str | None, dry_run: bool, as_json: bool) -> None:
    """Import FILE, the desk's text export; importing it again changes nothing."""
    limit = settings().max_bulletin_bytes
    try:
        with file.open("rb") as stream:
            data = stream.read(limit + 1)  # one byte more than allowed is enough to refuse it
    except OSError as exc:
        raise file_error("read", file, exc) from exc
    if dry_run:
        # No database at all: an editor can check the split before anything exists.
        preview = preview_bulletin(data, lang=lang, max_bytes=limit)
        document = preview_document(preview)
        warnings = preview.warnings
    else:
        with transaction() as session:
            result = import_bulletin(session, data, lang=lang, max_bytes=limit)
            document = bulletin_document(result.bulletin_import, created=result.created)
        warnings = result.warnings
    document["warnings"] = list(warnings)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    emit(document, as_json, _print)


def bulletin_document(record: BulletinImport, *, created: bool) -> dict[str, Any]:
    rates = record.snapshot.rates if record.snapshot else []
    return {
        "import": record.id,
        "created": created,
        "dry_run": False,
        "date": record.date.isoformat(),
        "lang": record.lang,
        "rates": [
            {"pair": r.pair, "rate": str(r.rate), "change_pct": str(r.change_pct)} for r in rates
        ],
        "articles": [
            {"id": a.id, "title": a.title, "paragraphs": list(a.paragraphs)}
            for a in record.articles
        ],
    }


def preview_document(preview: BulletinPreview) -> dict[str, Any]:
    """The shape of ``bulletin_document`` with no ids: what an import would store."""
    bulletin = preview.bulletin
    return {
        "import": None,
        "created": False,
        "dry_run": True,
        "date": bulletin.date.isoformat(),
        "lang": preview.lang,
        "lang_detected": preview.lang_detected,
        "rates": [
            {"pair": r.pair, "rate": str(r.rate), "change_pct": str(r.change_pct)}
            for r in bulletin.rates
        ],
        "articles": [
            {"id": None, "line": a.line, "title": a.title, "paragraphs": list(a.paragraphs)}
            for a in bulletin.articles
        ],
    }


def _print(document: dict[str, Any]) -> None:
    counts = f"{len(document['articles'])} articles, {len(document['rates'])} rates"
    if document["dry_run"]:
        how = "detected" if document["lang_detected"] else "given"
        click.echo(
            f"would import the bulletin of {document['date']} "
            f"(language {document['lang']}, {how}): {counts}"
        )
        if document["rates"]:
            rates = ", ".join(
                f"{r['pair']} {r['rate']} {r['change_pct']}%" for r in document["rates"]
            )
            click.echo(f"  rates: {rates}")
        for article in document["articles"]:
            click.echo(
                f"  line {article['line']:>3}  {article['title']} ({len(article['paragraphs'])} ¶)"
            )
        return
    verb = "imported" if document["created"] else "already imported, nothing changed:"
    click.echo(f"{verb} bulletin of {document['date']} (language {document['lang']}): {counts}")
    for article in document["articles"]:
        click.echo(f"  [{article['id']}] {article['title']} ({len(article['paragraphs'])} ¶)")
