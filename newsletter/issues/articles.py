"""Correcting articles after an import: merge two, split one, give one an image.

The importer tells headlines from paragraphs by their shape, and an editor who sees a wrong split
(``import-bulletin --dry-run`` shows it) corrects it here. ``merge_articles(a, b)`` makes b's
headline a paragraph of a, followed by b's paragraphs; ``split_article(a, at=n)`` makes a's
paragraph n the headline of a new article holding the paragraphs after it. The two undo each
other. Every import and unsent issue that holds the article follows the change (a rendered
issue becomes a draft again); an article in a sent issue is frozen with it.

This lives in the issue stage because it must see the issues that hold an article.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.content.images import check_image
from newsletter.content.models import Article, BulletinImport, BulletinImportArticle
from newsletter.content.service import article_fingerprint, get_articles
from newsletter.errors import InvalidInput
from newsletter.issues.models import Issue, IssueArticle


def merge_articles(session: Session, first_id: int, second_id: int) -> Article:
    """Append the second article (its headline as a paragraph) to the first; delete it."""
    if first_id == second_id:
        raise InvalidInput(f"article {first_id} cannot be merged with itself")
    first, second = get_articles(session, [first_id, second_id])
    imports, issues = _holders(session, [first.id, second.id])
    for issue in issues:
        issue.mark_changed()
    paragraphs = [*first.paragraphs, second.title, *second.paragraphs]
    _rewrite(session, first, first.title, paragraphs)
    holders: list[BulletinImport | Issue] = [*imports, *issues]
    for holder in holders:
        articles = holder.articles
        if first in articles:
            _reorder(holder, [a for a in articles if a is not second])
        else:
            _reorder(holder, [first if a is second else a for a in articles])
    session.flush()
    session.delete(second)
    session.flush()
    return first


def split_article(session: Session, article_id: int, *, at: int) -> tuple[Article, Article]:
    """Make paragraph ``at`` (1-based) the headline of a new article holding what follows it."""
    (article,) = get_articles(session, [article_id])
    paragraphs = list(article.paragraphs)
    if not 2 <= at <= len(paragraphs) - 1:
        raise InvalidInput(
            f"article {article.id} has {len(paragraphs)} paragraphs; split it at a paragraph "
            f"between 2 and {len(paragraphs) - 1} (one must stay, one must follow the new "
            f"headline), not at {at}"
        )
    imports, issues = _holders(session, [article.id])
    for issue in issues:
        issue.mark_changed()
    title, rest = paragraphs[at - 1], paragraphs[at:]
    new = session.scalar(
        select(Article).where(Article.fingerprint == article_fingerprint(title, rest))
    ) or Article(
        title=title,
        paragraphs=rest,
        source_date=article.source_date,
        lang=article.lang,
        fingerprint=article_fingerprint(title, rest),
    )
    _rewrite(session, article, article.title, paragraphs[: at - 1])
    holders: list[BulletinImport | Issue] = [*imports, *issues]
    for holder in holders:
        articles = [a for a in holder.articles if a is not new]
        index = articles.index(article)
        _reorder(holder, [*articles[: index + 1], new, *articles[index + 1 :]])
    session.flush()
    return article, new


def set_article_image(
    session: Session, article_id: int, url: str | None, alt: str | None
) -> Article:
    """Show ``url`` (https, with ``alt`` text) above the article, or no image with None."""
    (article,) = get_articles(session, [article_id])
    image = check_image(url, alt or "") if url is not None else None
    for issue in _holders(session, [article.id])[1]:
        issue.mark_changed()
    article.image_url, article.image_alt = image if image else (None, None)
    session.flush()
    return article


def _holders(
    session: Session, article_ids: Sequence[int]
) -> tuple[list[BulletinImport], list[Issue]]:
    imports = session.scalars(
        select(BulletinImport)
        .join(BulletinImportArticle)
        .where(BulletinImportArticle.article_id.in_(article_ids))
        .distinct()
    )
    issues = session.scalars(
        select(Issue).join(IssueArticle).where(IssueArticle.article_id.in_(article_ids)).distinct()
    )
    return list(imports), list(issues)


def _rewrite(session: Session, article: Article, title: str, paragraphs: list[str]) -> None:
    fingerprint = article_fingerprint(title, paragraphs)
    twin = session.scalar(
        select(Article.id).where(Article.fingerprint == fingerprint, Article.id != article.id)
    )
    if twin is not None:
        raise InvalidInput(f"the result would be identical to article {twin}; use that one")
    article.title, article.paragraphs, article.fingerprint = title, paragraphs, fingerprint


def _reorder(holder: BulletinImport | Issue, articles: list[Article]) -> None:
    # Rebuilt rather than edited in place: positions are part of the primary key, and
    # SQLAlchemy turns a deleted and re-added (holder, position) into one UPDATE.
    if isinstance(holder, Issue):
        holder.entries = [IssueArticle(position=i, article=a) for i, a in enumerate(articles)]
    else:
        holder.entries = [
            BulletinImportArticle(position=i, article=a) for i, a in enumerate(articles)
        ]
