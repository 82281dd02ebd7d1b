"""What every route is given: the settings, the I/O services, a transaction, the client.

``Services`` holds the app's I/O behind small interfaces so tests can swap them: the clock,
the sign-up rate limiter, the store of webhook nonces and the https fetcher (SNS). Nothing in
it keeps state another process needs: limits and nonces live in Redis when a broker is
configured (the nonces otherwise in the database).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache

import httpx
from fastapi import Request
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.db import session_scope, utcnow
from newsletter.subscribers.consent import Evidence
from newsletter.web.ratelimit import SignupLimiter
from newsletter.web.webhooks.replay import NonceStore, nonce_store

FETCH_TIMEOUT_SECONDS = 10.0
FETCH_MAX_BYTES = 64 * 1024  # an SNS certificate is ~2 KB, a confirmation answer less
USER_AGENT_MAX_CHARS = 512
_SQLITE_WRITER = threading.Lock()


@dataclass(frozen=True)
class Services:
    clock: Callable[[], dt.datetime]
    limiter: SignupLimiter
    nonces: NonceStore
    fetch: Callable[[str], bytes]  # GET an https URL that the caller has already vetted
    # Embedded mode: how often this process sends due transactional mail (None: never).
    outbox_sweep_seconds: float | None = 5.0

    @classmethod
    def for_settings(cls, settings: Settings) -> Services:
        return cls(
            clock=utcnow,
            limiter=SignupLimiter.for_settings(settings),
            nonces=nonce_store(settings),
            fetch=fetch_https,
            outbox_sweep_seconds=5.0 if settings.in_process else None,
        )


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@contextmanager
def transaction(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed when the block ends, before the answer is sent.

    On SQLite every transaction takes the database's write lock (``BEGIN IMMEDIATE``, see
    ``db.py``), and a thread that finds it taken sleeps in growing steps of up to 100 ms
    before it looks again. The threads of one process therefore queue on an in-process lock
    first, which hands over at once; only the processes compete for the file's lock.
    """
    settings = settings_of(request)
    with (
        _SQLITE_WRITER if settings.database_url.startswith("sqlite") else nullcontext(),
        session_scope(settings) as session,
    ):
        yield session


def client_ip(request: Request) -> str | None:
    """The visitor's address; a trusted proxy's X-Forwarded-For is applied by the middleware."""
    return request.client.host if request.client else None


def evidence(request: Request, form_path: str | None = None) -> Evidence:
    """The facts of this request that a consent record keeps (LAW-04)."""
    user_agent = request.headers.get("user-agent", "")[:USER_AGENT_MAX_CHARS] or None
    form_url = f"{settings_of(request).base_url}{form_path}" if form_path else None
    return Evidence(ip=client_ip(request), user_agent=user_agent, form_url=form_url)


@lru_cache(maxsize=64)
def fetch_https(url: str) -> bytes:
    """GET a URL the caller has checked (SNS hosts only), without following redirects.

    Cached per process: SNS certificates rarely change, and a confirmation is fetched once.
    """
    with httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client:
        response = client.get(url)
        response.raise_for_status()
        if len(response.content) > FETCH_MAX_BYTES:
            raise ValueError(f"{url} answered {len(response.content)} bytes, too many")
        return response.content
