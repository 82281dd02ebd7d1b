"""The one fixed way every provider webhook is handled: verify → (replay) → parse → store → 200.

A provider module fills in a ``Provider``: how to verify a request (signature, secret or
credentials), optionally how to find its replay nonce and how to answer a handshake (SNS).
``post`` then does the same for all of them, in this order:

1. the body is read (bounded) and **verified before anything is stored**: unverified → 403;
2. a handshake (SNS subscription confirmation) is answered and nothing else happens;
3. a nonce already seen (a replay) → 403; the nonce is handed back if storing fails;
4. the body is parsed: not the provider's format → 400;
5. the events go, in one transaction, to the bounce stage (``_store``: the one call into it),
   which applies the evidence rules and ignores an event it has seen (a retried webhook
   changes nothing);
6. **200 only after the commit**; a storage failure is a 500, so the provider retries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from newsletter.bounces.event import BounceEvent
from newsletter.bounces.processing import process_webhook_events
from newsletter.bounces.sources.webhooks.payload import MAX_BODY_BYTES
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.errors import InvalidInput
from newsletter.web.context import Services, services_of, settings_of

Headers = Mapping[str, str]


@dataclass(frozen=True)
class Provider:
    name: str
    # The provider's secret from the settings; None: the endpoint is not enabled (404).
    secret: Callable[[Settings], object | None]
    # Raise InvalidInput unless the request is authentic.
    verify: Callable[[Headers, bytes, object, Services], None]
    parse: Callable[[bytes], list[BounceEvent]]
    nonce: Callable[[bytes], str | None] | None = None
    # Answer a protocol handshake; True when the request was one (nothing more to do).
    handshake: Callable[[Headers, bytes, Services], bool] | None = None


async def post(request: Request, provider: Provider) -> JSONResponse:
    settings, services = settings_of(request), services_of(request)
    secret = provider.secret(settings)
    if secret is None:
        raise HTTPException(status_code=404, detail=f"the {provider.name} webhook is not enabled")
    body = await _body(request)
    headers = dict(request.headers)
    # Verifying may fetch a certificate, and storing talks to the database: off the loop.
    count = await run_in_threadpool(_handle, provider, settings, services, headers, body, secret)
    return JSONResponse({"events": count})


def _handle(
    provider: Provider,
    settings: Settings,
    services: Services,
    headers: Headers,
    body: bytes,
    secret: object,
) -> int:
    try:
        provider.verify(headers, body, secret, services)
    except InvalidInput as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from exc
    try:
        if provider.handshake is not None and provider.handshake(headers, body, services):
            return 0
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    nonce = provider.nonce(body) if provider.nonce else None
    if nonce is not None and not services.nonces.claim(provider.name, nonce, services.clock()):
        raise HTTPException(status_code=403, detail="this webhook request was seen before")
    try:
        events = provider.parse(body)
        with session_scope(settings) as session:
            _store(session, settings, events, services.clock())
    except InvalidInput as exc:
        _release(services, provider, nonce)
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    except BaseException:
        _release(services, provider, nonce)  # not stored: the provider's retry must work
        raise
    return len(events)


def _store(
    session: Session, settings: Settings, events: Sequence[BounceEvent], now: dt.datetime
) -> None:
    """The one place where a verified webhook's events enter the bounce stage."""
    process_webhook_events(session, settings, events, now)


def _release(services: Services, provider: Provider, nonce: str | None) -> None:
    if nonce is not None:
        services.nonces.release(provider.name, nonce)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail="the body is too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(status_code=413, detail="the body is too large")
        chunks.append(chunk)
    return b"".join(chunks)
