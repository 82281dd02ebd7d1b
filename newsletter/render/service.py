"""Use cases of the render stage: render an issue once and store it; run the pre-send check."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.content.bulletin import Rate
from newsletter.errors import CheckFailed, InvalidInput, NotFound, RenderError
from newsletter.issues.models import Issue, IssueStatus
from newsletter.issues.modes import IssueMode
from newsletter.issues.service import get_issue
from newsletter.render.checks import IssueFacts, find_problems
from newsletter.render.email import SIZE_BUDGET_BYTES, RenderedEmail, render_email, render_web
from newsletter.render.models import IssueRendering
from newsletter.render.personalise import PersonalTemplate
from newsletter.render.rates import RateForm
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
    view, who = issue_view(issue, settings), sender(settings)
    rendered = render_email(view, who, settings.template_dir)
    rendering = session.get(IssueRendering, issue.id) or IssueRendering(issue_id=issue.id)
    rendering.html, rendering.text, rendering.html_bytes = (
        rendered.html,
        rendered.text,
        rendered.html_bytes,
    )
    rendering.web_html = render_web(view, who, settings.template_dir)
    session.add(rendering)
    issue.transition(IssueStatus.RENDERED)
    session.flush()
    return rendering


def stored_rendering(session: Session, issue_id: int) -> IssueRendering:
    """The rendering every recipient gets, as stored: read, never made here.

    Raises ``NotFound`` when the issue changed since it was last rendered (or never was):
    rendering is a step of its own (``render_issue``, ``render_if_changed``), so one send
    renders once and every later step reads what that render stored.
    """
    issue = get_issue(session, issue_id)
    rendering = session.get(IssueRendering, issue.id)
    if rendering is None or issue.status == IssueStatus.DRAFT:
        raise NotFound(
            f"issue {issue_id} has not been rendered since it last changed: "
            f"run `newsletter issue render {issue_id}`"
        )
    return rendering


def render_if_changed(session: Session, settings: Settings, issue_id: int) -> IssueRendering:
    """Render the issue now if it changed since its last rendering; else the stored one.

    The step a send takes once, before anything reads the rendering.
    """
    issue = get_issue(session, issue_id)
    rendering = session.get(IssueRendering, issue.id)
    if rendering is None or issue.status == IssueStatus.DRAFT:
        return render_issue(session, settings, issue_id)
    return rendering


def report(rendering: IssueRendering) -> RenderReport:
    return RenderReport(
        issue_id=rendering.issue_id,
        html_bytes=rendering.html_bytes,
        over_budget=rendering.html_bytes > SIZE_BUDGET_BYTES,
    )


def check_issue(
    session: Session,
    settings: Settings,
    issue_id: int,
    rendering: IssueRendering | None = None,
) -> list[str]:
    """Every problem that must be fixed before the issue may be sent (empty: ready).

    With ``rendering`` (the issue's current one, as a send has just stored it) the check reads
    it instead of rendering the issue again.
    """
    issue = get_issue(session, issue_id)
    problems: list[str] = []
    html = ""
    excerpt_bytes: int | None = None
    try:
        view = issue_view(issue, settings)
        if rendering is None:
            rendered: RenderedEmail | IssueRendering = render_email(
                view, sender(settings), settings.template_dir
            )
        else:
            rendered = rendering
        html = preview(rendered, settings).html
        if issue.mode == IssueMode.FULL and len(html.encode()) > SIZE_BUDGET_BYTES:
            excerpt_bytes = _excerpt_bytes(view, settings)
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
        mode=issue.mode,
        excerpt_html_bytes=excerpt_bytes,
        issue_id=issue.id,
    )
    return problems + find_problems(facts)


def excerpt_html_bytes(session: Session, settings: Settings, issue_id: int) -> int:
    """How big the issue's HTML would be in excerpt mode (what an over-budget warning offers)."""
    return _excerpt_bytes(issue_view(get_issue(session, issue_id), settings), settings)


def _excerpt_bytes(view: IssueView, settings: Settings) -> int:
    excerpt = replace(view, mode=IssueMode.EXCERPT)
    rendered = render_email(excerpt, sender(settings), settings.template_dir)
    return len(preview(rendered, settings).html.encode())


def web_version(session: Session, settings: Settings, issue_id: int) -> str:
    """The issue's web version: full mode, no personal data (``{base_url}/issues/{id}``).

    The one stored with the rendering while it is current; for a draft (or a rendering made
    before web versions were stored) it is rendered now, and not stored: a getter writes nothing.
    """
    issue = get_issue(session, issue_id)
    rendering = session.get(IssueRendering, issue.id)
    if rendering is not None and rendering.web_html and issue.status != IssueStatus.DRAFT:
        return rendering.web_html
    return render_web(issue_view(issue, settings), sender(settings), settings.template_dir)


def require_sendable(
    session: Session, settings: Settings, issue_id: int, rendering: IssueRendering | None = None
) -> None:
    problems = check_issue(session, settings, issue_id, rendering)
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


def issue_view(issue: Issue, settings: Settings) -> IssueView:
    snapshot = issue.snapshot
    form = RateForm(settings.rate_form)
    return IssueView(
        subject=issue.subject,
        preheader=issue.preheader,
        date=issue.date,
        lang=issue.lang,
        id=issue.id,
        number=issue.number,
        mode=issue.mode,
        excerpt_words=issue.excerpt_words,
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
            RateView.from_rate(
                Rate(pair=r.pair, rate=r.rate, change_pct=r.change_pct), lang=issue.lang, form=form
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
