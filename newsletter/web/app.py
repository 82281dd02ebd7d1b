"""The app factory: ``create_app(settings)`` builds the whole web application.

Run it with ``newsletter web`` (uvicorn, ``factory=True``), or in tests with
``create_app(settings, services=...)``. Middleware, outermost first: trusted-proxy headers
(``X-Forwarded-Proto``/``-For`` from NEWSLETTER_TRUSTED_PROXIES only), request metrics,
security headers, the signed session cookie. In embedded mode (no broker) each web process
also sweeps the transactional outbox every few seconds, so a confirmation that met a relay
that was down goes out once the relay is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from anyio import to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from newsletter import jobs
from newsletter.config import Settings, load_settings
from newsletter.web import archive, errors, ops, public
from newsletter.web.context import Services
from newsletter.web.metrics import RequestMetrics, database_registry
from newsletter.web.pages import STATIC_DIR
from newsletter.web.security import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_SECONDS,
    SecurityHeaders,
    session_secret,
)
from newsletter.web.webhooks import mailgun, postmark, sendgrid, ses

log = logging.getLogger(__name__)
REQUEST_THREADS = 4  # per process; the database pool (db.py) has room for more


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or load_settings()
    services = services or Services.for_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool (40 threads by default). Past a few threads a
        # process only adds contention for the GIL and the database: requests wait in the event
        # loop instead, where waiting is cheap (docs/benchmarks.md, "One-click unsubscribe").
        to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        sweeper = (
            asyncio.create_task(_sweep_outbox(settings, services.outbox_sweep_seconds))
            if services.outbox_sweep_seconds and settings.in_process
            else None
        )
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper

    app = FastAPI(
        title="newsletter",
        # The REST API of a later issue brings its schema; the public pages have none.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # A redirect built from the Host header is a redirect to wherever the client says.
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.metrics = database_registry(settings)
    for router in (
        public.router,
        archive.router,
        ops.router,
        ses.router,
        sendgrid.router,
        postmark.router,
        mailgun.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    errors.install(app)
    # add_middleware wraps: the last one added is the outermost.
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings.secret_key),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_SECONDS,
        same_site="lax",
        https_only=settings.https,
    )
    app.add_middleware(SecurityHeaders, hsts=settings.https)
    app.add_middleware(RequestMetrics)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    return app


async def _sweep_outbox(settings: Settings, every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await asyncio.to_thread(jobs.send_due_transactional, settings)
        except Exception:
            # A long-running loop: the rows stay queued and the next sweep tries them again,
            # so logging and going on loses nothing.
            log.exception("sweeping the transactional outbox failed")
