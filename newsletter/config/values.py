"""The parsers of one setting's value each: the raw string in, the value out or ``ValueError``.

``settings.load_settings`` turns a ``ValueError`` into a ``ConfigError`` naming the variable.
Pure: nothing here reads the environment; ``directory`` and ``readable_file`` look at the disk.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

# Hosts for which an http:// base URL is accepted: links that only this machine can follow.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_RATE_ITEM = r"\s*\d+\s*(?:/|per)\s*(?:\d+\s*)?(?:second|minute|hour|day|month|year)s?\s*"
_RATE_LIMITS = re.compile(rf"{_RATE_ITEM}(?:[;,]{_RATE_ITEM})*")
# Characters a link built on the base URL cannot carry in an HTML attribute, a header's <…> or
# a plain-text line: checked here, once, rather than by every recipient's message.
_URL_UNSAFE = frozenset(" \t\"'`<>\\^{}|")


@dataclass(frozen=True, slots=True)
class SmtpUrl:
    scheme: str  # "smtp", "smtp+starttls" or "smtps"
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def encrypted(self) -> bool:
        return self.scheme != "smtp"


def database_url(value: str) -> str:
    if not value.startswith(("sqlite:", "postgresql")):
        raise ValueError("expected a sqlite:/// or postgresql+psycopg:// URL")
    return value


def mailbox(value: str) -> Address:
    if "\r" in value or "\n" in value:
        raise ValueError("line breaks are not allowed")
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise ValueError("expected an address such as 'Name <user@example.org>'")
    user, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=user, domain=domain.lower())


def base_url(value: str) -> str:
    unsafe = (c for c in value if c in _URL_UNSAFE or not c.isprintable() or not c.isascii())
    bad = next(unsafe, None)
    if bad is not None:
        raise ValueError(
            f"{bad!r} cannot be part of a link: a plain URL without spaces, quotes or <> "
            "(percent-encode it, or remove it)"
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an absolute http(s):// URL")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError("links are made by adding a path: no ?query or #fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from exc
    if parts.scheme == "http" and not is_local_url(value):
        raise ValueError("must be https:// (http:// only for 127.0.0.1 or localhost)")
    return value.rstrip("/")


def is_local_url(url: str) -> bool:
    """An http:// URL only this machine can open: accepted where https is otherwise required."""
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in LOCAL_HOSTS


def networks(value: str) -> tuple[str, ...]:
    networks = comma_list(value)
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
    return networks


def comma_list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def rate_limits(value: str) -> str:
    # The ``limits`` package's notation, checked here without importing it (every process,
    # workers included, reads the settings at start).
    if not _RATE_LIMITS.fullmatch(value):
        raise ValueError("expected limits like '5/minute;20/hour'")
    return value


def basic_credentials(value: str) -> str:
    if ":" not in value:
        raise ValueError("expected user:password")
    return value


def mailbox_url(value: str) -> str:
    # Parsed in full where it is used (bounces.sources.mailbox); only its kind is checked here.
    if urlsplit(value).scheme not in ("imap", "imaps", "pop3", "pop3s") or "@" not in value:
        raise ValueError("expected imaps://user:pass@host/FOLDER or pop3s://user:pass@host")
    return value


def parse_smtp_url(value: str) -> SmtpUrl:
    parts = urlsplit(value)
    default_ports = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
    if parts.scheme not in default_ports:
        raise ValueError("scheme must be smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("a host is required")
    return SmtpUrl(
        scheme=parts.scheme,
        host=parts.hostname,
        port=parts.port or default_ports[parts.scheme],
        username=parts.username,
        password=parts.password,
    )


def boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def fraction(value: str) -> float:
    number = float(value)
    if not 0 < number <= 1:
        raise ValueError("must be a fraction between 0 and 1, e.g. 0.05")
    return number


def schedule(value: str) -> tuple[int, ...]:
    steps = tuple(int(part) for part in value.split(","))
    if not steps or any(step < 0 for step in steps):
        raise ValueError("expected comma-separated seconds, e.g. 60,300,1800")
    return steps


def rate_form(value: str) -> str:
    # The values of render.rates.RateForm, spelled here: config is below every stage.
    if value.lower() not in ("both", "desk"):
        raise ValueError("expected both or desk")
    return value.lower()


def directory(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise ValueError("no such directory")
    return path


def readable_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise ValueError("no such file")
    return path


def dns_label(value: str) -> str:
    if not value.replace("-", "").replace(".", "").isalnum():
        raise ValueError("expected letters, digits, dots and hyphens")
    return value


def feedback_sender(value: str) -> str:
    if not (5 <= len(value) <= 15) or not all(c.isalnum() or c in "._-" for c in value):
        raise ValueError("expected 5-15 letters, digits, '.', '_' or '-'")
    return value
