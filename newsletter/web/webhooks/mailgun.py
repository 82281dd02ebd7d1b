"""``POST /webhooks/mailgun``: HMAC of timestamp + token under the signing key, a 5-minute
timestamp window, and each token accepted once (Mailgun does not sign the event itself)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from newsletter.bounces.sources.webhooks import mailgun
from newsletter.web.context import Services
from newsletter.web.webhooks.base import Headers, Provider, post

router = APIRouter()


def _verify(headers: Headers, body: bytes, secret: object, services: Services) -> None:
    mailgun.verify(headers, body, str(secret), now=services.clock())


def _nonce(body: bytes) -> str | None:
    # verify() has parsed this body already: it is a JSON object with a signature object.
    token = json.loads(body)["signature"]["token"]
    return str(token)


PROVIDER = Provider(
    name="mailgun",
    secret=lambda settings: settings.mailgun_webhook_key,
    verify=_verify,
    parse=mailgun.parse,
    nonce=_nonce,
)


@router.post("/webhooks/mailgun")
async def mailgun_webhook(request: Request) -> JSONResponse:
    return await post(request, PROVIDER)
