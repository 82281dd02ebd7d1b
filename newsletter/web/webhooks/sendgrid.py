"""``POST /webhooks/sendgrid``: ECDSA signature over timestamp + body, a 5-minute window.

The body is signed, so a replayed request can only repeat the same events, which the bounce
stage recognises by their ``sg_event_id`` and ignores."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from newsletter.bounces.sources.webhooks import sendgrid
from newsletter.web.context import Services
from newsletter.web.webhooks.base import Headers, Provider, post

router = APIRouter()


def _verify(headers: Headers, body: bytes, secret: object, services: Services) -> None:
    sendgrid.verify(headers, body, str(secret), now=services.clock())


PROVIDER = Provider(
    name="sendgrid",
    secret=lambda settings: settings.sendgrid_webhook_key,
    verify=_verify,
    parse=sendgrid.parse,
)


@router.post("/webhooks/sendgrid")
async def sendgrid_webhook(request: Request) -> JSONResponse:
    return await post(request, PROVIDER)
