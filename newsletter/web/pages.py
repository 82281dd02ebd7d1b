"""Server-rendered pages: one Jinja2 environment (autoescaped) for every template in
``web/templates``, and the context every page shares (publication, postal address, CSRF)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from newsletter.render.service import PUBLICATION
from newsletter.web.context import settings_of
from newsletter.web.security import CSRF_FIELD, csrf_token

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

# auto_reload off: the templates ship with the code, and checking each file's mtime on every
# render cost a fifth of the server's time on the one-click path.
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(TEMPLATE_DIR), autoescape=select_autoescape(), auto_reload=False
    )
)


def render(
    request: Request,
    template_name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    with_csrf: bool = False,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The page ``template_name`` with ``context``; ``with_csrf`` puts the form token in the
    context (and so sets the session cookie: only pages with a form ask for it)."""
    settings = settings_of(request)
    shared: dict[str, Any] = {
        # Links are built under the base URL's path, so the app may live below a prefix.
        "root": urlsplit(settings.base_url).path.rstrip("/"),
        "indexable": template_name == "archive.html",
        "publication": settings.from_address.display_name or PUBLICATION,
        "postal_address": settings.postal_address,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request) if with_csrf else None,
    }
    return templates.TemplateResponse(
        request,
        template_name,
        {**shared, **(context or {})},
        status_code=status_code,
        headers=headers,
    )
