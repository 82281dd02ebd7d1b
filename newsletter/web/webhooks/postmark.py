"""``POST /webhooks/postmark``: HTTP Basic credentials from the webhook URL (Postmark does not
sign); a repeated record is recognised by its ``ID`` and changes nothing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from newsletter.bounces.sources.webhooks import postmark
from newsletter.web.context import Services
from newsletter.web.webhooks.base import Headers, Provider, post

router = APIRouter()


def _verify(headers: Headers, body: bytes, secret: object, services: Services) -> None:
    postmark.verify(headers, body, str(secret))


PROVIDER = Provider(
    name="postmark",
    secret=lambda settings: settings.postmark_webhook_auth,
    verify=_verify,
    parse=postmark.parse,
)


@router.post("/webhooks/postmark")
async def postmark_webhook(request: Request) -> JSONResponse:
    return await post(request, PROVIDER)
