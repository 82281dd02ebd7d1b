"""Signed tokens for unsubscribe, confirmation and test-send links (SEC-05). Pure: pass ``now``.

Format: ``<kind><key id>.<subscriber>.<list>[.<issued>].<mac>``, e.g. ``u3f9a.2s.1.k7…``:
ids in base 36, the MAC a 128-bit HMAC-SHA256 in lower-case base 32. Everything is lower-case
letters, digits and dots, so a token survives a mail system that lower-cases the local part of
``unsubscribe+TOKEN@…``, and is short (about 40 characters; a local part may have 64).

- The key id is the first 4 hex digits of SHA-256 of the secret key: after a key change, old
  links are recognised as "signed by another key" (pass the old key in ``old_secrets`` to keep
  honouring them).
- Unsubscribe tokens never expire (LAW-02: a link from a 400-day-old message still works);
  list 0 means "every list".
- Confirmation tokens expire after ``CONFIRM_TOKEN_SECONDS``. They are single-use because
  ``service.confirm`` accepts one only while the subscription is unconfirmed and its status
  has not changed since the token was issued.
- Test-send tokens (kind ``t``) stand where a subscriber's unsubscribe token stands in a
  ``test-send`` message, so the test is the real message, link and length included. They
  name the issue and the list, never a subscriber: ``read_unsubscribe_token`` refuses them
  (the kind letter is under the MAC), so nothing can unsubscribe anyone with one. The web
  page behind ``/u/TOKEN`` reads a token it cannot read as an unsubscribe token with
  ``read_test_token`` and answers "this was a test", changing nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.errors import InvalidInput, LinkExpired

CONFIRM_TOKEN_SECONDS = 48 * 3600
CLOCK_SKEW_SECONDS = 300  # a token "issued" this far in the future is still accepted
MAC_BYTES = 16
UNSUBSCRIBE = "u"
CONFIRM = "c"
TEST_SEND = "t"


@dataclass(frozen=True, slots=True)
class UnsubscribeClaim:
    subscriber_id: int
    list_id: int | None  # None: every list


@dataclass(frozen=True, slots=True)
class ConfirmClaim:
    subscriber_id: int
    list_id: int
    issued_at: dt.datetime


def unsubscribe_token(secret: str, subscriber_id: int, list_id: int | None) -> str:
    return _sign(secret, UNSUBSCRIBE, [subscriber_id, list_id or 0])


def read_unsubscribe_token(
    secret: str, token: str, *, old_secrets: Sequence[str] = ()
) -> UnsubscribeClaim:
    """The claim in ``token``, or ``InvalidInput`` if it is forged, tampered or malformed."""
    numbers = _verify(secret, old_secrets, UNSUBSCRIBE, token, 2)
    return UnsubscribeClaim(numbers[0], numbers[1] or None)


@dataclass(frozen=True, slots=True)
class IssueTestClaim:
    """What a test-send token says: a test of this issue, as the subscribers of this list get
    it. No subscriber: it can only ever show a "this was a test" page."""

    issue_id: int
    list_id: int


def sign_test_token(secret: str, issue_id: int, list_id: int) -> str:
    return _sign(secret, TEST_SEND, [issue_id, list_id])


def read_test_token(secret: str, token: str, *, old_secrets: Sequence[str] = ()) -> IssueTestClaim:
    """The claim in a test-send token, or ``InvalidInput`` if it is forged, tampered,
    malformed, or another kind of token (an unsubscribe token is never a test)."""
    issue_id, list_id = _verify(secret, old_secrets, TEST_SEND, token, 2)
    return IssueTestClaim(issue_id, list_id)


def confirm_token(secret: str, subscriber_id: int, list_id: int, now: dt.datetime) -> str:
    return _sign(secret, CONFIRM, [subscriber_id, list_id, int(now.timestamp())])


def read_confirm_token(
    secret: str, token: str, now: dt.datetime, *, old_secrets: Sequence[str] = ()
) -> ConfirmClaim:
    """The claim in ``token``; ``InvalidInput`` if forged, tampered or older than 48 hours."""
    subscriber_id, list_id, issued = _verify(secret, old_secrets, CONFIRM, token, 3)
    age = now.timestamp() - issued
    if age > CONFIRM_TOKEN_SECONDS or age < -CLOCK_SKEW_SECONDS:
        raise LinkExpired("the confirmation link has expired; subscribe again for a new one")
    return ConfirmClaim(subscriber_id, list_id, dt.datetime.fromtimestamp(issued, dt.UTC))


def key_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:4]


def _sign(secret: str, kind: str, numbers: list[int]) -> str:
    body = ".".join([kind + key_id(secret), *(_base36(n) for n in numbers)])
    return f"{body}.{_mac(secret, body)}"


def _verify(
    secret: str, old_secrets: Sequence[str], kind: str, token: str, count: int
) -> list[int]:
    parts = token.strip().lower().split(".")
    if len(parts) != count + 2 or len(parts[0]) != 5 or parts[0][0] != kind:
        raise InvalidInput("the link is not valid (malformed token)")
    body, mac = ".".join(parts[:-1]), parts[-1]
    keys = [s for s in (secret, *old_secrets) if key_id(s) == parts[0][1:]]
    # compare_digest: the time taken must not tell an attacker how many characters matched.
    if not any(hmac.compare_digest(_mac(key, body), mac) for key in keys):
        raise InvalidInput("the link is not valid (bad signature)")
    try:
        return [int(p, 36) for p in parts[1:-1]]
    except ValueError:  # cannot happen with our own MAC, but the MAC is not a parser
        raise InvalidInput("the link is not valid (malformed token)") from None


def _mac(secret: str, body: str) -> str:
    # A key derived for subscriber tokens: a MAC that another stage makes with the same secret
    # key (VERP addresses) never verifies here. The kind letter is inside the MACed body.
    key = hmac.new(secret.encode(), b"newsletter-subscriber-token", hashlib.sha256).digest()
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.b32encode(digest).decode().rstrip("=").lower()


def _base36(number: int) -> str:
    if number < 0:
        raise ValueError("ids are not negative")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def unsubscribe_url(settings: Settings, token: str) -> str:
    """The one-click (RFC 8058) and landing-page address: ``{base_url}/u/{token}``."""
    return f"{settings.base_url}/u/{token}"


def unsubscribe_mailto(settings: Settings, token: str) -> str:
    """``mailto:unsubscribe+TOKEN@<bounce domain>?subject=unsubscribe`` for List-Unsubscribe.

    The token is in the local part (≤ 64 octets: "unsubscribe+" and a token of ~45
    characters) because some clients drop the ``subject``; it is lower-case for the servers
    that fold case. Mail to that address must reach the bounce intake, which unsubscribes.
    """
    return f"mailto:unsubscribe+{token}@{settings.bounce_address.domain}?subject=unsubscribe"
