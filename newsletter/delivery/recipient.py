"""The recipient's address as it goes on the wire, decided before the row is marked in flight.

A subscriber's address is stored as the importer normalised it: an internationalised domain in
Unicode (``v8@пример.рф``), and possibly a local part that is not ASCII (``üser@example.com``).
SMTP carries the first everywhere once the domain is IDNA-encoded (``v8@xn--e1afmkfd.xn--p1ai``,
in the envelope and in the To header alike); the second only through a relay that offers
SMTPUTF8 (RFC 6531). ``wire_address`` returns the form to send, or raises
``UndeliverableAddress``: the row then ends ``failed`` with the reason, never ``possibly_sent``,
and the batch goes on with the next recipient (docs/delivery.md, "Checked before the fence").

Pure: no I/O; ``idna`` is a pure-Python codec.
"""

from __future__ import annotations

import re
from functools import lru_cache

import idna

from newsletter.errors import UndeliverableAddress

NOT_THROUGH_THIS_RELAY = "address not deliverable through this relay"
DOMAIN_CACHE_SIZE = 4096  # distinct non-ASCII domains remembered per process

# Wire addresses go into SMTP command lines and the To header, so nothing that could end a line
# or a parameter may pass (SEC-03): a dot-atom local part and a hostname in A-labels.
_ASCII_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
# With SMTPUTF8 (RFC 6531) the local part may also hold non-ASCII characters, none of them a
# control, a space or a line break.
_UTF8_ADDRESS = re.compile(
    r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]|[^\x00-\x7f\x85\xa0\u2028\u2029\s]){1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
MAX_ADDRESS_OCTETS = 254  # RFC 5321 §4.5.3.1.3, less the angle brackets


def wire_address(email: str, *, smtputf8: bool) -> str:
    """``email`` ready for RCPT TO and To; ``smtputf8``: the relay offered SMTPUTF8."""
    if email.isascii():
        return email  # every address the importer stores in ASCII is already the wire form
    local, _, domain = email.rpartition("@")
    ascii_domain = _a_labels(domain)
    if not local.isascii() and not smtputf8:
        raise UndeliverableAddress(f"{NOT_THROUGH_THIS_RELAY} (it has no SMTPUTF8)")
    return f"{local}@{ascii_domain}"


def carries(address: str, *, smtputf8: bool) -> bool:
    """Whether ``address`` (a wire address) can go into RCPT TO and To as it is.

    ``smtputf8``: a non-ASCII local part may pass (the relay offered SMTPUTF8).
    """
    pattern = _UTF8_ADDRESS if smtputf8 and not address.isascii() else _ASCII_ADDRESS
    return len(address.encode()) <= MAX_ADDRESS_OCTETS and pattern.fullmatch(address) is not None


@lru_cache(maxsize=DOMAIN_CACHE_SIZE)
def _a_labels(domain: str) -> str:
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise UndeliverableAddress(f"the domain {domain!r} has no IDNA form: {exc}") from exc
