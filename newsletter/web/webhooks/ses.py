"""``POST /webhooks/ses``: Amazon SES events delivered by SNS, signed by AWS.

Only messages of our own topics (NEWSLETTER_SES_TOPIC_ARNS) are accepted: anyone can create a
topic whose messages AWS signs. The signing certificate is fetched only from
``https://sns.<region>.amazonaws.com/…pem`` (checked before the fetch). A verified
``SubscriptionConfirmation`` is confirmed by a GET of its ``SubscribeURL``, which must be an
https URL on the same SNS hosts, so no request can make us fetch any other address.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from newsletter.bounces.sources.webhooks import ses
from newsletter.errors import InvalidInput
from newsletter.web.context import Services
from newsletter.web.webhooks.base import Headers, Provider, post

router = APIRouter()


def _verify(headers: Headers, body: bytes, secret: object, services: Services) -> None:
    assert isinstance(secret, tuple)
    ses.verify(headers, body, services.fetch, topic_arns=secret)


def _handshake(headers: Headers, body: bytes, services: Services) -> bool:
    message = json.loads(body)  # verified JSON object
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        services.fetch(subscribe_url(message.get("SubscribeURL")))
        return True
    return bool(kind == "UnsubscribeConfirmation")  # nothing to do: we did not ask for it


def subscribe_url(value: object) -> str:
    """The SubscribeURL if it is an https URL on an SNS host; ``InvalidInput`` otherwise."""
    url = value if isinstance(value, str) else ""
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not ses.CERT_HOST.match(parts.hostname or "")
        or parts.port not in (None, 443)
        or parts.username is not None
        or parts.password is not None
    ):
        raise InvalidInput(f"SNS SubscribeURL {url!r} is not https on sns.<region>.amazonaws.com")
    return url


PROVIDER = Provider(
    name="ses",
    secret=lambda settings: settings.ses_topic_arns or None,
    verify=_verify,
    parse=ses.parse,
    handshake=_handshake,
)


@router.post("/webhooks/ses")
async def ses_webhook(request: Request) -> JSONResponse:
    return await post(request, PROVIDER)
