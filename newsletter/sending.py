"""What the send loop is given, built from the settings: the relay, the signer, the rate limiter
and each campaign's message. Used by ``jobs`` (Celery tasks and the embedded loops) and by the
CLI's test send.

An edge, like ``jobs``: it opens what the delivery stage takes from its caller (a ``Transport``,
a session factory) and closes what it opened. Nothing here is state that another process needs:
the signer, the limiter and the campaign messages are caches, which a new process rebuilds from
the settings and the stored rendering.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import threading
import uuid
from collections import OrderedDict
from functools import cache
from pathlib import Path

from sqlalchemy.orm import Session

from newsletter.bounces.processing import BounceRejections
from newsletter.config import Settings
from newsletter.db import get_engine, session_factory
from newsletter.delivery import service as delivery_service
from newsletter.delivery.context import CampaignMessage, Progress, SendContext
from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.ratelimit import RateLimiter, limiter_for
from newsletter.delivery.sender import BatchResult, send_batch
from newsletter.delivery.transports import Transport
from newsletter.delivery.transports.smtp import SmtpTransport


def new_transport(settings: Settings) -> Transport:
    """The configured way out (one per batch or test send; the caller closes it)."""
    return SmtpTransport(settings.smtp, require_tls=settings.smtp_require_tls)


def run_batch(
    settings: Settings,
    lane: int,
    progress: Progress | None = None,
    *,
    transport: Transport | None = None,
) -> BatchResult:
    """Send one batch on ``lane`` through ``transport``, or through the configured relay.

    Either way the batch closes the connection before it gives its lane back (the lanes cap
    open connections); a transport connects on first use, so a batch that claims nothing
    opens none, and the caller's transport connects again on its next send.
    """
    ctx = send_context(settings, transport or new_transport(settings))
    if progress is not None:
        ctx = dataclasses.replace(ctx, progress=progress)
    return send_batch(ctx, lane)


def send_context(settings: Settings, transport: Transport) -> SendContext:
    return SendContext(
        settings=settings,
        engine=get_engine(settings),
        sessions=session_factory(settings).begin,
        transport=transport,
        limiter=_limiter(settings.broker_url),
        owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        templates=lambda session, campaign_id: CAMPAIGN_MESSAGES.get(
            settings, session, campaign_id
        ),
        signer=dkim_signer(settings),
        rejections=BounceRejections(settings),
    )


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The configured DKIM signer, or None without a key (loaded once per process)."""
    return _signer(settings.dkim_key_file, settings.dkim_selector, settings.dkim_domain)


class CampaignMessages:
    """Each campaign's message template, built once per process from its stored rendering.

    A campaign's issue is frozen once it starts, so its template never changes; the key names
    the row itself (database, id and creation time: an id alone may be reused by a rebuilt
    SQLite file). Bounded, since a long-lived worker sees campaign after campaign, and locked,
    since the threads of one Celery worker (its send lanes) build and read it side by side.
    """

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._built: OrderedDict[tuple[str, int, dt.datetime], CampaignMessage] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, settings: Settings, session: Session, campaign_id: int) -> CampaignMessage:
        key = (
            settings.database_url,
            campaign_id,
            delivery_service.created_at(session, campaign_id),
        )
        with self._lock:
            if key in self._built:
                self._built.move_to_end(key)
                return self._built[key]
        message = delivery_service.campaign_message(session, settings, campaign_id)
        with self._lock:
            self._built[key] = message
            while len(self._built) > self._size:
                self._built.popitem(last=False)
        return message

    def clear(self) -> None:
        with self._lock:
            self._built.clear()


CAMPAIGN_MESSAGES = CampaignMessages()


@cache
def _limiter(broker_url: str | None) -> RateLimiter:
    return limiter_for(broker_url)


@cache
def _signer(key_file: Path | None, selector: str, domain: str) -> DkimSigner | None:
    return DkimSigner.from_pem(key_file.read_bytes(), selector, domain) if key_file else None
