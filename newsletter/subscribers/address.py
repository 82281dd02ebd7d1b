"""Email addresses and names as we store them: validated, normalised, safe in a header.

Pure: no database, no clock. ``normalise_email`` is email-validator's normalised form, lower-cased,
because the address is the case-insensitive unique key of a subscriber (``Ann@Example.com`` and
``ann@example.com`` are one subscriber).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from newsletter.errors import InvalidInput

EMAIL_MAX_CHARS = 254
LOCAL_PART_MAX_CHARS = 64
DOMAIN_CACHE_SIZE = 65_536  # distinct domains remembered; bounds memory on any file

# The everyday ASCII local part (RFC 5322 dot-atom). email-validator accepts it unchanged, so
# only the domain needs its (slow: ~20 µs) checks, and those are cached per domain: a
# million-row file has a few thousand domains. Anything else takes the full path.
_SIMPLE_LOCAL_PART = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)


def normalise_email(raw: str, *, check_deliverability: bool = False) -> str:
    """The stored form of ``raw``: normalised by email-validator, then lower-cased.

    Raises ``InvalidInput`` with email-validator's explanation. With ``check_deliverability``
    the domain's DNS is queried (once per domain thanks to the cache).
    """
    address = raw.strip()
    if not address:
        raise InvalidInput("the email address is empty")
    local, at, domain = address.rpartition("@")
    if at and len(local) <= LOCAL_PART_MAX_CHARS and _SIMPLE_LOCAL_PART.fullmatch(local):
        normalised_domain = _normalise_domain(domain, check_deliverability)
        result = f"{local}@{normalised_domain}"
        if len(result) > EMAIL_MAX_CHARS:
            return _full_validation(address, check_deliverability)  # for its exact message
        return result.lower()
    return _full_validation(address, check_deliverability)


def _full_validation(address: str, check_deliverability: bool) -> str:
    try:
        checked = validate_email(address, check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise InvalidInput(str(exc)) from exc
    return checked.normalized.lower()


def _normalise_domain(domain: str, check_deliverability: bool) -> str:
    outcome = _checked_domain(domain, check_deliverability)
    if outcome.startswith("!"):
        raise InvalidInput(outcome[1:])
    return outcome


@lru_cache(maxsize=DOMAIN_CACHE_SIZE)
def _checked_domain(domain: str, check_deliverability: bool) -> str:
    """The normalised domain, or "!" + the reason it is refused (errors are cached too)."""
    try:
        checked = validate_email(f"x@{domain}", check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        return "!" + str(exc)
    return checked.domain


NEEDS_SMTPUTF8 = "has a non-ASCII local part: only a relay that offers SMTPUTF8 can deliver it"


def delivery_warning(email: str) -> str | None:
    """What the operator should know about a valid, normalised address that not every relay
    can carry, or None.

    A local part that is not ASCII (``üser@example.com``, RFC 6531) goes out only through a
    relay that offers SMTPUTF8; through any other the delivery stage ends the recipient's row
    ``failed`` ("address not deliverable through this relay"). An internationalised domain
    (``v8@пример.рф``) is no such case: it is IDNA-encoded at send, which every relay takes.
    """
    if email.isascii():  # nearly every address: one C-speed scan
        return None
    local = email.rpartition("@")[0]
    if local.isascii():
        return None
    return f"{email} {NEEDS_SMTPUTF8}"


def forget_domains() -> None:
    """Empty the per-domain cache: DNS answers (``check_deliverability``) go stale, so a
    long-running worker starts every deliverability-checked file afresh."""
    _checked_domain.cache_clear()


def erasure_hash(secret_key: str, email: str) -> str:
    """The peppered hash kept for an erased address (LAW-06): HMAC-SHA256, hex.

    ``email`` must already be normalised; without the secret key the hash cannot be reversed
    by hashing a dictionary of addresses.
    """
    return hmac.new(secret_key.encode(), email.encode(), hashlib.sha256).hexdigest()


def erasure_hasher(secret_key: str) -> Callable[[str], str]:
    """``erasure_hash`` with the key set up once: for hashing a whole batch of addresses."""
    keyed = hmac.new(secret_key.encode(), digestmod=hashlib.sha256)

    def digest(email: str) -> str:
        mac = keyed.copy()
        mac.update(email.encode())
        return mac.hexdigest()

    return digest


def check_name(name: str) -> str:
    """``name`` as given, or ``InvalidInput`` if it holds a control character.

    CR, LF and NUL in a display name are a header-injection attempt; other control characters
    have no business in a name either. Commas, quotes and non-ASCII letters are fine: the
    delivery stage encodes names with ``email.headerregistry.Address``.
    """
    # isprintable() is the fast test; it is also False for spaces other than U+0020 (e.g.
    # NBSP), which are fine, so the categories decide.
    if not name.isprintable() and any(unicodedata.category(c) in _CONTROL for c in name):
        raise InvalidInput("the name contains a line break or another control character")
    return name


_CONTROL = frozenset({"Cc", "Zl", "Zp"})  # C0/C1 controls (CR, LF, NUL, ...), U+2028, U+2029
_TEXT_CONTROLS_ALLOWED = frozenset("\t\n\r")


def control_character(text: str) -> str | None:
    """The first control character of free text (a description, an attribute) other than a
    tab or a line break, or None. PostgreSQL refuses a NUL where SQLite stores it, and the
    other controls break the XML of a rendered email later."""
    if text.isprintable():
        return None
    return next(
        (c for c in text if unicodedata.category(c) == "Cc" and c not in _TEXT_CONTROLS_ALLOWED),
        None,
    )
