"""Use cases of the render stage: render an issue once and store it; run the pre-send check."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.errors import CheckFailed, InvalidInput, RenderError
from newsletter.issues.models import Issue, IssueStatus
from newsletter.issues.service import get_issue
from newsletter.render.checks import IssueFacts, find_problems
from newsletter.render.currencies import currency_name
from newsletter.render.email import SIZE_BUDGET_BYTES, RenderedEmail, render_email
from newsletter.render.models import IssueRendering
from newsletter.render.personalise import PersonalTemplate
from newsletter.render.view import ArticleView, IssueView, RateView, Sender

PUBLICATION = "Central Asia Weekly"


@dataclass(frozen=True, slots=True)
class RenderReport:
    issue_id: int
    html_bytes: int
    over_budget: bool  # the CLI warns: Gmail clips long messages


def render_issue(session: Session, settings: Settings, issue_id: int) -> IssueRendering:
    """Render the issue (Jinja2 → MJML → inlined HTML, and text) and store the result."""
    issue = get_issue(session, issue_id)
    rendered = render_email(issue_view(issue), sender(settings), settings.template_dir)
    rendering = session.get(IssueRendering, issue.id) or IssueRendering(issue_id=issue.id)
    rendering.html, rendering.text, rendering.html_bytes = (
        rendered.html,
        rendered.text,
        rendered.html_bytes,
    )
    session.add(rendering)
    issue.transition(IssueStatus.RENDERED)
    session.flush()
    return rendering


def rendering_for(session: Session, settings: Settings, issue_id: int) -> IssueRendering:
    """The stored rendering, made now if the issue changed since (or was never rendered)."""
    issue = get_issue(session, issue_id)
    rendering = session.get(IssueRendering, issue.id)
    if rendering is None or issue.status == IssueStatus.DRAFT:
        rendering = render_issue(session, settings, issue_id)
    return rendering


def report(rendering: IssueRendering) -> RenderReport:
    return RenderReport(
        issue_id=rendering.issue_id,
        html_bytes=rendering.html_bytes,
        over_budget=rendering.html_bytes > SIZE_BUDGET_BYTES,
    )


def check_issue(session: Session, settings: Settings, issue_id: int) -> list[str]:
    """Every problem that must be fixed before the issue may be sent (empty: ready)."""
    issue = get_issue(session, issue_id)
    problems: list[str] = []
    html = ""
    try:
        html = preview(
            render_email(issue_view(issue), sender(settings), settings.template_dir), settings
        ).html
    except (RenderError, InvalidInput) as exc:
        problems.append(f"the email does not render: {exc}")
    facts = IssueFacts(
        html=html,
        issue_date=issue.date,
        rates_date=issue.snapshot.date if issue.snapshot else None,
        empty_articles=tuple(
            a.title for a in issue.articles if not any(p.strip() for p in a.paragraphs)
        ),
        rates_max_age_days=settings.rates_max_age_days,
        postal_address=settings.postal_address,
    )
    return problems + find_problems(facts)


def require_sendable(session: Session, settings: Settings, issue_id: int) -> None:
    problems = check_issue(session, settings, issue_id)
    if problems:
        raise CheckFailed(problems)


@dataclass(frozen=True, slots=True)
class Preview:
    html: str
    text: str


def preview(rendered: RenderedEmail | IssueRendering, settings: Settings) -> Preview:
    """The email as one fictional reader would get it: what editors look at before sending."""
    values = {
        "name": "Reader",
        "email": "reader@example.org",
        "unsubscribe_url": f"{settings.base_url}/u/sample-token",
        "view_url": f"{settings.base_url}/issues/sample",
    }
    return Preview(
        html=PersonalTemplate.split(rendered.html, "html").fill(values),
        text=PersonalTemplate.split(rendered.text, "text").fill(values),
    )


def issue_view(issue: Issue) -> IssueView:
    snapshot = issue.snapshot
    return IssueView(
        subject=issue.subject,
        preheader=issue.preheader,
        date=issue.date,
        lang=issue.lang,
        articles=tuple(
            ArticleView(
                id=a.id,
                title=a.title,
                paragraphs=tuple(a.paragraphs),
                url=a.url,
                image_url=a.image_url,
                image_alt=a.image_alt or "",
            )
            for a in issue.articles
        ),
        rates=tuple(
            RateView(
                pair=r.pair,
                base_code=r.pair.split("/")[0],
                base_name=currency_name(r.pair.split("/")[0]),
                quote_code=r.pair.split("/")[1],
                rate=r.rate,
                change_pct=r.change_pct,
            )
            for r in (snapshot.rates if snapshot else [])
        ),
        rates_date=snapshot.date if snapshot else None,
    )


def sender(settings: Settings) -> Sender:
    return Sender(
        publication=settings.from_address.display_name or PUBLICATION,
        postal_address=settings.postal_address or "",
        base_url=settings.base_url,
    )
