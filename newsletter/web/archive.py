"""The public archive: ``GET /archive`` (and ``/``) lists sent issues, newest first;
``GET /issues/{id}`` is an issue's web version, the "view in browser" link of every message.
Both show nobody's data, so they may be cached."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from newsletter.render.web_version import published_issues, published_web_version
from newsletter.web.context import settings_of, transaction
from newsletter.web.pages import render
from newsletter.web.security import EMAIL_CSP

router = APIRouter()
PUBLIC_CACHE = "public, max-age=300"


@router.get("/", response_class=HTMLResponse)
@router.get("/archive", response_class=HTMLResponse)
def archive(request: Request) -> HTMLResponse:
    with transaction(request) as session:
        issues = published_issues(session)
    return render(
        request, "archive.html", {"issues": issues}, headers={"Cache-Control": PUBLIC_CACHE}
    )


@router.get("/issues/{issue_id}", response_class=HTMLResponse)
def issue_web_version(request: Request, issue_id: int) -> HTMLResponse:
    with transaction(request) as session:
        html = published_web_version(session, settings_of(request), issue_id)
    return HTMLResponse(
        html, headers={"Content-Security-Policy": EMAIL_CSP, "Cache-Control": PUBLIC_CACHE}
    )
