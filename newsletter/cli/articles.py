"""``newsletter article …``: read an article, correct how an import split it, set its image."""

from __future__ import annotations

from typing import Any

import click

from newsletter.cli.context import emit, json_option, transaction
from newsletter.content.models import Article
from newsletter.content.service import get_articles
from newsletter.errors import InvalidInput
from newsletter.issues.articles import merge_articles, set_article_image, split_article

PREVIEW_CHARS = 72


def register(cli: click.Group) -> None:
    cli.add_command(article)


@click.group()
def article() -> None:
    """Read and correct imported articles."""


@article.command("show")
@click.argument("article_id", type=int)
@json_option
def article_show(article_id: int, as_json: bool) -> None:
    """Show an article with its paragraphs numbered (the numbers `split --at` takes)."""
    with transaction() as session:
        (found,) = get_articles(session, [article_id])
        document = article_document(found)
    emit(document, as_json, _print_numbered)


@article.command("merge")
@click.argument("first_id", type=int)
@click.argument("second_id", type=int)
@json_option
def article_merge(first_id: int, second_id: int, as_json: bool) -> None:
    """Join SECOND_ID to FIRST_ID: its headline becomes a paragraph (a headline found wrongly)."""
    with transaction() as session:
        document = article_document(merge_articles(session, first_id, second_id))
    emit(document, as_json, _print_article)


@article.command("split")
@click.argument("article_id", type=int)
@click.option(
    "--at",
    "paragraph",
    type=int,
    required=True,
    help="Number of the paragraph (1 = first, see `article show`) that is really a headline.",
)
@json_option
def article_split(article_id: int, paragraph: int, as_json: bool) -> None:
    """Make paragraph --at the headline of a new article holding the paragraphs after it."""
    with transaction() as session:
        kept, new = split_article(session, article_id, at=paragraph)
        document = {"articles": [article_document(kept), article_document(new)]}
    emit(document, as_json, _print_articles)


@article.command("image")
@click.argument("article_id", type=int)
@click.argument("url", required=False)
@click.option("--alt", help="What the image shows, for readers who do not load it (required).")
@click.option("--remove", is_flag=True, help="Show no image with this article.")
@json_option
def article_image(
    article_id: int, url: str | None, alt: str | None, remove: bool, as_json: bool
) -> None:
    """Show the https image URL above the article in every issue not yet sent."""
    if remove == (url is not None):
        raise InvalidInput("give either an image URL (with --alt) or --remove")
    with transaction() as session:
        document = article_document(set_article_image(session, article_id, url, alt))
    emit(document, as_json, _print_article)


def article_document(record: Article) -> dict[str, Any]:
    return {
        "id": record.id,
        "title": record.title,
        "lang": record.lang,
        "paragraphs": list(record.paragraphs),
        "image": {"url": record.image_url, "alt": record.image_alt} if record.image_url else None,
    }


def _print_article(document: dict[str, Any]) -> None:
    image = f", image {document['image']['url']}" if document["image"] else ""
    click.echo(
        f"article {document['id']}: {document['title']} ({len(document['paragraphs'])} ¶{image})"
    )


def _print_articles(document: dict[str, Any]) -> None:
    for one in document["articles"]:
        _print_article(one)


def _print_numbered(document: dict[str, Any]) -> None:
    _print_article(document)
    for number, paragraph in enumerate(document["paragraphs"], start=1):
        shown = (
            paragraph if len(paragraph) <= PREVIEW_CHARS else paragraph[: PREVIEW_CHARS - 1] + "…"
        )
        click.echo(f"  {number:>3}  {shown}")
