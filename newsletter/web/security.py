"""Security headers on every response, and CSRF tokens for our own forms.

Headers: a CSP without inline scripts and ``frame-ancestors 'none'``; ``Referrer-Policy:
no-referrer`` so a token in our URL never leaks to a site a page links to; ``nosniff``; HSTS
when the public address is https. A route may set its own CSP (the web version of an issue,
which is email HTML full of inline styles, gets a stricter one without scripts at all).

CSRF: a random token kept in the signed session cookie (``HttpOnly``, ``SameSite=Lax``,
``Secure`` behind https) and repeated in a hidden field of each form; a POST whose field does
not match is refused. The one-click unsubscribe is the one POST without it (RFC 8058: no
cookie, no token; the signed token in its URL is the capability).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_SESSION_KEY = "csrf"
CSRF_FIELD = "csrf_token"
SESSION_COOKIE = "nl_session"
SESSION_MAX_AGE_SECONDS = 24 * 3600  # a form left open over night still works
HSTS_SECONDS = 365 * 24 * 3600

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
# The web version is an email: inline styles, https images, and nothing that runs.
EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_FIXED_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)


class SecurityHeaders:
    """Pure ASGI middleware (no per-request task or copy of the body, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        extra = [(b"strict-transport-security", f"max-age={HSTS_SECONDS}".encode())]
        self.headers = _FIXED_HEADERS + (tuple(extra) if hsts else ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in present)
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", DEFAULT_CSP.encode()))
                if b"cache-control" not in present:
                    # Pages carry tokens and CSRF fields: never kept by a shared cache.
                    value = b"public, max-age=3600" if static else b"no-store"
                    headers.append((b"cache-control", value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (made and put in its session on first use)."""
    token = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return token


def check_csrf(request: Request, form: Mapping[str, object]) -> None:
    """403 unless the form's token is this browser's (a cross-site form cannot know it)."""
    expected = request.session.get(CSRF_SESSION_KEY)
    given = form.get(CSRF_FIELD)
    if not (
        isinstance(expected, str)
        and isinstance(given, str)
        and hmac.compare_digest(expected.encode(), given.encode())
    ):
        raise HTTPException(
            status_code=403,
            detail="This form has expired or did not come from our site. Reload the page and "
            "try again (cookies must be allowed for this site).",
        )


def session_secret(secret_key: str) -> str:
    """A key for the session cookie derived from the secret key (never the key itself)."""
    return hmac.new(secret_key.encode(), b"newsletter-web-session", "sha256").hexdigest()
