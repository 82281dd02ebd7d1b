"""VERP envelope senders: which delivery a bounce belongs to, read from the address it came back to.

Every message goes out with its own envelope sender (``MAIL FROM``), e.g.
``bounces+b1-<token>@bounces.example.org``, so a bounce that arrives there names its delivery
even when the DSN itself is unreadable (BNC-01). The token is lowercase base32 (no padding) of
the delivery id (8 bytes, big-endian) followed by a truncated HMAC-SHA256 over it, so nobody can
forge a bounce for someone else's delivery and mark them bounced.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from email.headerregistry import Address

from newsletter.errors import ConfigError, InvalidInput

# The tag names the key derivation ("b" for bounce, "1" for its version). A new derivation gets a
# new digit, and decoding can accept the old one for as long as bounces for it may still arrive.
TAG = "b1-"
DELIVERY_ID_BYTES = 8
MAC_BYTES = 10  # 80 bits: forging one delivery's address takes ~2**79 tries against our MX
TOKEN_CHARS = 29  # len(base32(8 + 10 bytes)) without its padding
MAX_LOCAL_PART_OCTETS = 64  # RFC 5321 §4.5.3.1.1
_KEY_LABEL = b"newsletter.verp.v1"
_PADDING = "==="  # 29 base32 characters need 3 "=" to make a multiple of 8


def verp_address(delivery_id: int, bounce_address: Address, secret: str) -> str:
    """The envelope sender for one delivery, e.g. ``bounces+b1-…@bounces.example.org``."""
    if not 0 <= delivery_id < 2 ** (8 * DELIVERY_ID_BYTES):
        raise InvalidInput(f"delivery id {delivery_id} does not fit in {DELIVERY_ID_BYTES} bytes")
    raw = delivery_id.to_bytes(DELIVERY_ID_BYTES, "big")
    token = base64.b32encode(raw + _mac(secret, raw)).decode("ascii").rstrip("=").lower()
    local = f"{bounce_address.username}+{TAG}{token}"
    if len(local.encode("utf-8")) > MAX_LOCAL_PART_OCTETS:
        raise ConfigError(
            f"bounce address user {bounce_address.username!r} is too long for VERP "
            f"(local part {len(local)} > {MAX_LOCAL_PART_OCTETS} octets)"
        )
    return f"{local}@{bounce_address.domain}"


def delivery_id_from_verp(
    address: str,
    bounce_address: Address,
    secret: str,
    *,
    retired_secrets: Sequence[str] = (),
) -> int | None:
    """The delivery id in a VERP address, or None when it is not ours or was tampered with.

    Case does not matter: some MTAs fold the local part to upper or lower case. While the secret
    key is being rotated, pass the old keys as ``retired_secrets`` so bounces for messages sent
    before the rotation still resolve.
    """
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or domain.lower() != bounce_address.domain.lower():
        return None
    prefix = f"{bounce_address.username}+{TAG}".lower()
    local = local.lower()
    if not local.startswith(prefix):
        return None
    token = local[len(prefix) :]
    if len(token) != TOKEN_CHARS:
        return None
    try:
        decoded = base64.b32decode(token.upper() + _PADDING)
    except (binascii.Error, ValueError):
        return None
    if base64.b32encode(decoded).decode("ascii").rstrip("=").lower() != token:
        # 29 characters carry 145 bits for 144: the last one's spare bit must be zero, so no
        # second spelling of a token is accepted.
        return None
    raw, mac = decoded[:DELIVERY_ID_BYTES], decoded[DELIVERY_ID_BYTES:]
    # Check every key, not just until one matches, so the time taken does not reveal which one.
    matches = [hmac.compare_digest(mac, _mac(key, raw)) for key in (secret, *retired_secrets)]
    if not any(matches):
        return None
    return int.from_bytes(raw, "big")


def _mac(secret: str, raw: bytes) -> bytes:
    # A key of its own for VERP, so a token of another kind (unsubscribe, confirm) signed with the
    # same secret can never double as a VERP token.
    key = hmac.new(secret.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, raw, hashlib.sha256).digest()[:MAC_BYTES]
