"""DKIM signatures (RFC 6376) for each outgoing message, made with OpenSSL instead of dkimpy.

dkimpy spends about 7 ms per message, mostly in pure-Python RSA; here the relaxed/relaxed
canonicalisation is a few C-speed ``bytes`` operations and the RSA-SHA256 signature comes from
``cryptography`` (about 0.34 ms: docs/benchmarks.md, "Building each recipient's message").
dkimpy is still what the tests verify with.

Policy (DKIM-01…05): ``a=rsa-sha256``, ``c=relaxed/relaxed``, no ``l=``, keys of at least 2048
bits, and an ``h=`` that covers every header a mailbox provider or a replayer cares about, with
From, Subject, List-Unsubscribe and List-Unsubscribe-Post listed once more than they occur so
nobody can add a second copy after signing (RFC 6376 §8.15, RFC 8058 §4). Sign last, over the
exact CRLF bytes that go to SMTP.

Pure: no clock (pass ``timestamp`` for ``t=``), no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from newsletter.errors import ConfigError, InvalidInput

MIN_KEY_BITS = 2048  # RFC 8301 §3.2
# Signed when present, in this order (DKIM-02).
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "reply-to",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
)
# Listed once more than they occur, even when they do not occur at all.
OVERSIGNED_HEADERS = frozenset({"from", "subject", "list-unsubscribe", "list-unsubscribe-post"})

_WSP_RUN = re.compile(rb"[ \t]+")
_LABEL = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_B64_LINE = 72  # characters of b= per folded line, so the signature header stays under 78


@dataclass(frozen=True, slots=True)
class DkimSigner:
    """Signs messages for one domain with one selector's key."""

    private_key: rsa.RSAPrivateKey
    selector: str
    domain: str

    @classmethod
    def from_pem(cls, pem: bytes, selector: str, domain: str) -> DkimSigner:
        """Load an unencrypted PEM RSA key; ConfigError if it is unusable or under 2048 bits."""
        for label, value in (("selector", selector), ("domain", domain)):
            if not _LABEL.fullmatch(value):
                raise ConfigError(f"DKIM {label} {value!r} is not a DNS name")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigError(f"DKIM key cannot be loaded: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError("DKIM key must be an RSA key (a=rsa-sha256)")
        if key.key_size < MIN_KEY_BITS:
            raise ConfigError(f"DKIM key has {key.key_size} bits; at least {MIN_KEY_BITS} needed")
        return cls(private_key=key, selector=selector, domain=domain.lower())

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """The message with a DKIM-Signature header prepended. ``message`` must use CRLF."""
        head, separator, body = message.partition(b"\r\n\r\n")
        if not separator:
            raise InvalidInput("message has no blank line between header and body")
        fields = _header_fields(head + b"\r\n")
        counts = Counter(name for name, _ in fields)
        signed: list[str] = []
        for name in SIGNED_HEADERS:
            signed += [name] * (counts[name] + (name in OVERSIGNED_HEADERS))
        tags = [
            "v=1",
            "a=rsa-sha256",
            "c=relaxed/relaxed",
            f"d={self.domain}",
            f"s={self.selector}",
        ]
        if timestamp is not None:
            tags.append(f"t={timestamp}")
        tags += [
            "h=" + ":".join(signed),
            "bh=" + base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest()).decode(),
            "b=",
        ]
        # Folded between tags; relaxed canonicalisation makes the folding irrelevant to the hash.
        unsigned = "DKIM-Signature: " + ";\r\n\t".join(tags)
        data = _relaxed_headers(fields, signed) + _relaxed_field(unsigned.encode("ascii"))
        signature = self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        b64 = base64.b64encode(signature).decode("ascii")
        folded = "\r\n\t".join(b64[i : i + _B64_LINE] for i in range(0, len(b64), _B64_LINE))
        return (unsigned + folded + "\r\n").encode("ascii") + message


def _header_fields(head: bytes) -> list[tuple[str, bytes]]:
    """(lower-case name, whole raw field without its final CRLF), in message order."""
    fields: list[tuple[str, bytes]] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + b"\r\n" + line)
        else:
            name = line.partition(b":")[0].strip().lower().decode("ascii", "replace")
            fields.append((name, line))
    return fields


def _relaxed_headers(fields: list[tuple[str, bytes]], signed: list[str]) -> bytes:
    """RFC 6376 §5.4.2: each listed name takes the last unused instance, bottom up."""
    remaining: dict[str, list[bytes]] = {}
    for name, raw in fields:
        remaining.setdefault(name, []).append(raw)
    out = []
    for name in signed:
        instances = remaining.get(name)
        if instances:  # a name listed more often than it occurs contributes nothing (§5.4)
            out.append(_relaxed_field(instances.pop()) + b"\r\n")
    return b"".join(out)


def _relaxed_field(raw: bytes) -> bytes:
    """RFC 6376 §3.4.2, without the trailing CRLF."""
    name, _, value = raw.partition(b":")
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" \t")
    return name.strip(b" \t").lower() + b":" + value


def _relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4: WSP runs to one SP, no WSP at line ends, no empty lines at the end."""
    # Quoted-printable bodies seldom hold a WSP run or trailing WSP: skip the regex for them.
    if b"  " in body or b"\t" in body:
        body = _WSP_RUN.sub(b" ", body)
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    if b" \r\n" in body:
        body = body.replace(b" \r\n", b"\r\n")
    while body.endswith(b"\r\n\r\n"):
        body = body.rstrip(b"\r\n") + b"\r\n"
    return b"" if body == b"\r\n" else body
