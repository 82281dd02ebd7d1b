"""``newsletter import-bulletin``: bring the desk's export into the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from newsletter.cli.context import emit, json_option, settings, transaction
from newsletter.content.models import BulletinImport
from newsletter.content.service import import_bulletin
from newsletter.errors import file_error


def register(cli: click.Group) -> None:
    cli.add_command(import_bulletin_command)


@click.command("import-bulletin")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def import_bulletin_command(file: Path, as_json: bool) -> None:
    """Import FILE, the desk's text export; importing it again changes nothing."""
    limit = settings().max_bulletin_bytes
    try:
        with file.open("rb") as stream:
            data = stream.read(limit + 1)  # one byte more than allowed is enough to refuse it
    except OSError as exc:
        raise file_error("read", file, exc) from exc
    with transaction() as session:
        result = import_bulletin(session, data, max_bytes=limit)
        document = bulletin_document(result.bulletin_import, created=result.created)
    document["warnings"] = list(result.warnings)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    emit(document, as_json, _print_summary)


def bulletin_document(record: BulletinImport, *, created: bool) -> dict[str, Any]:
    rates = record.snapshot.rates if record.snapshot else []
    return {
        "import": record.id,
        "created": created,
        "date": record.date.isoformat(),
        "rates": [
            {"pair": r.pair, "rate": str(r.rate), "change_pct": str(r.change_pct)} for r in rates
        ],
        "articles": [
            {"id": a.id, "title": a.title, "paragraphs": list(a.paragraphs)}
            for a in record.articles
        ],
    }


def _print_summary(document: dict[str, Any]) -> None:
    verb = "imported" if document["created"] else "already imported, nothing changed:"
    click.echo(
        f"{verb} bulletin of {document['date']}: {len(document['articles'])} articles, "
        f"{len(document['rates'])} rates"
    )
    for article in document["articles"]:
        click.echo(f"  [{article['id']}] {article['title']} ({len(article['paragraphs'])} ¶)")
