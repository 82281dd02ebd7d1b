"""Settings, read once from ``NEWSLETTER_*`` environment variables and validated at start.

Every variable is listed in ``VARIABLES`` with its default and meaning; the README's table is
checked against it by a test, so the two cannot drift apart. A bad value raises ``ConfigError``
naming the variable, and the CLI turns that into one line.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from newsletter.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_TEMPLATE_DIR = PACKAGE_DIR.parent / "templates" / "email"
SECRET_KEY_FILE = "newsletter.secret"  # noqa: S105 - a file name, not a secret
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str | None
    help: str


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "NEWSLETTER_DATABASE_URL",
        "sqlite:///newsletter.db",
        "SQLAlchemy URL of the database; a SQLite file in the working directory by default, "
        "`postgresql+psycopg://…` to scale out.",
    ),
    Variable(
        "NEWSLETTER_BROKER_URL",
        None,
        "Celery broker (e.g. `redis://127.0.0.1:6379/0`). Unset: every task runs in-process.",
    ),
    Variable(
        "NEWSLETTER_FROM",
        "Central Asia Weekly <bulletin@news.example.org>",
        "The From mailbox of every message, at your DMARC-aligned domain.",
    ),
    Variable("NEWSLETTER_REPLY_TO", None, "Optional monitored Reply-To mailbox."),
    Variable(
        "NEWSLETTER_BASE_URL",
        "https://news.example.org",
        "Public `https://` address of the web app (`newsletter web`); unsubscribe, "
        "confirmation and view-in-browser links start with it. `http://` only for "
        "`127.0.0.1` or `localhost` (local use, the demo).",
    ),
    Variable(
        "NEWSLETTER_SECRET_KEY",
        None,
        "Key for unsubscribe, confirmation and VERP tokens. Unset in embedded mode: a key is "
        "generated once into `newsletter.secret` in the working directory. Required (≥ 32 "
        "characters) when a broker is set, and the same on every machine.",
    ),
    Variable(
        "NEWSLETTER_POSTAL_ADDRESS",
        None,
        "The sender's postal address, shown in every message (CAN-SPAM). Sending refuses "
        "without it.",
    ),
    Variable(
        "NEWSLETTER_MAX_BULLETIN_BYTES",
        "5242880",
        "Largest bulletin export `import-bulletin` accepts, in bytes (5 MiB); a bigger file is "
        "refused before it is parsed.",
    ),
    Variable(
        "NEWSLETTER_RATES_MAX_AGE_DAYS",
        "7",
        "The pre-send check fails when the issue's rate snapshot is older than the issue "
        "date by more than this many days.",
    ),
    Variable(
        "NEWSLETTER_RATE_FORM",
        "both",
        "How rates show: `both` puts `1 USD = 12,500 UZS` beside the desk's figure for rates "
        "below 0.01 (HTML and text); `desk` shows the desk's figure only.",
    ),
    Variable(
        "NEWSLETTER_TEMPLATE_DIR",
        None,
        "Directory of the email templates; the shipped `templates/email` by default.",
    ),
    Variable(
        "NEWSLETTER_SMTP_URL",
        "smtp://127.0.0.1:25",
        "Relay to send through: `smtp://`, `smtp+starttls://` or `smtps://`, with optional "
        "`user:password@`.",
    ),
    Variable(
        "NEWSLETTER_SMTP_REQUIRE_TLS",
        "false",
        "`true` refuses to send over a connection that is not encrypted.",
    ),
    Variable(
        "NEWSLETTER_BOUNCE_ADDRESS",
        None,
        "Base of the VERP envelope sender, e.g. `bounces@bounces.example.org`; "
        "`bounces@` the From domain by default.",
    ),
    Variable(
        "NEWSLETTER_RETRY_SCHEDULE",
        "60,300,1800,7200",
        "Seconds to wait before each retry of a deferred recipient (and each back-off step "
        "of a throttling domain); after the last one the recipient is `failed`.",
    ),
    Variable(
        "NEWSLETTER_RATE_LIMIT", "0", "Messages per second for all workers together (0: no limit)."
    ),
    Variable(
        "NEWSLETTER_DOMAIN_RATE_LIMIT",
        "0",
        "Messages per second to any one recipient domain (0: no limit).",
    ),
    Variable(
        "NEWSLETTER_DOMAIN_THROTTLE_AFTER",
        "3",
        "A recipient domain backs off (one step of the retry schedule) when this many "
        "different recipients in a row get a 4.7.x throttling reply; a 421 backs it off at once.",
    ),
    Variable(
        "NEWSLETTER_DOMAIN_POLICY_PAUSE_AFTER",
        "10",
        "Policy rejections (5.7.x, block lists) in a row from one domain that hold that "
        "domain for the campaign until `campaign resume`.",
    ),
    Variable(
        "NEWSLETTER_CAMPAIGN_POLICY_PAUSE_RATE",
        "0.02",
        "A campaign pauses itself when policy rejections reach this fraction of its last "
        "`NEWSLETTER_CAMPAIGN_POLICY_WINDOW` attempts.",
    ),
    Variable(
        "NEWSLETTER_CAMPAIGN_POLICY_WINDOW",
        "1000",
        "How many of a campaign's latest attempts the policy-rejection rate is taken over.",
    ),
    Variable(
        "NEWSLETTER_MAX_CONNECTIONS", "4", "Most SMTP connections open at once across all workers."
    ),
    Variable("NEWSLETTER_BATCH_SIZE", "500", "Recipients per batch task."),
    Variable(
        "NEWSLETTER_LEASE_SECONDS",
        "30",
        "How long a worker's claim on a batch and its lane lasts without being renewed; a live "
        "batch renews both every third of it, so a dead worker's rows are taken over within "
        "this (plus one tick).",
    ),
    Variable(
        "NEWSLETTER_DKIM_KEY_FILE",
        None,
        "PEM file of the RSA (≥ 2048 bits) DKIM key; unset: messages are not signed.",
    ),
    Variable("NEWSLETTER_DKIM_SELECTOR", "newsletter", "DKIM selector (`s=`)."),
    Variable(
        "NEWSLETTER_DKIM_DOMAIN", None, "DKIM signing domain (`d=`); the From domain by default."
    ),
    Variable(
        "NEWSLETTER_FEEDBACK_ID_SENDER",
        "nlcentasia",
        "Stable 5–15 character sender id at the end of Gmail's `Feedback-ID`.",
    ),
    Variable(
        "NEWSLETTER_BOUNCE_MAILBOX",
        None,
        "Mailbox the bounces reach, polled by `newsletter worker` (embedded) or Celery beat: "
        "`imaps://user:pass@host/INBOX` or `pop3s://user:pass@host`; unset: not polled.",
    ),
    Variable(
        "NEWSLETTER_BOUNCE_POLL_SECONDS",
        "300",
        "How often the bounce mailbox is polled.",
    ),
    Variable(
        "NEWSLETTER_SOFT_BOUNCE_LIMIT",
        "3",
        "Soft bounces (from distinct campaigns) that mark a subscriber bounced.",
    ),
    Variable(
        "NEWSLETTER_SOFT_BOUNCE_DAYS", "7", "The soft bounces must span at least this many days."
    ),
    Variable(
        "NEWSLETTER_SOFT_BOUNCE_STALE_DAYS",
        "60",
        "Soft bounces older than this many days no longer count.",
    ),
    Variable(
        "NEWSLETTER_HARD_BOUNCE_PAUSE_RATE",
        "0.05",
        "A campaign whose hard-bounce rate passes this fraction is paused.",
    ),
    Variable(
        "NEWSLETTER_COMPLAINT_PAUSE_RATE",
        "0.003",
        "A campaign whose complaint rate passes this fraction is paused.",
    ),
    Variable(
        "NEWSLETTER_TRUSTED_PROXIES",
        None,
        "Comma-separated addresses or networks (e.g. `127.0.0.1,10.0.0.0/8`) of the TLS "
        "proxies in front of `newsletter web`: only their `X-Forwarded-Proto`/`-For` are "
        "believed. Unset: nobody's.",
    ),
    Variable(
        "NEWSLETTER_SIGNUP_LIMIT_PER_IP",
        "20/hour",
        "Sign-ups accepted from one IP address, e.g. `5/minute;20/hour` (the `limits` "
        "notation). Counted in Redis when a broker is set, else in each web process.",
    ),
    Variable(
        "NEWSLETTER_SIGNUP_LIMIT_PER_ADDRESS",
        "3/hour",
        "Sign-ups accepted for one email address (so nobody can flood a stranger's inbox "
        "with confirmation mails).",
    ),
    Variable(
        "NEWSLETTER_SES_TOPIC_ARNS",
        None,
        "Comma-separated ARNs of our SNS topics; enables `POST /webhooks/ses` and accepts "
        "only messages of these topics (anyone can create a validly signed topic).",
    ),
    Variable(
        "NEWSLETTER_SENDGRID_WEBHOOK_KEY",
        None,
        "SendGrid's Signed Event Webhook verification key (base64 or PEM); enables "
        "`POST /webhooks/sendgrid`.",
    ),
    Variable(
        "NEWSLETTER_POSTMARK_WEBHOOK_AUTH",
        None,
        "`user:password` of the HTTP Basic credentials in the Postmark webhook URL; enables "
        "`POST /webhooks/postmark`.",
    ),
    Variable(
        "NEWSLETTER_MAILGUN_WEBHOOK_KEY",
        None,
        "Mailgun's webhook signing key; enables `POST /webhooks/mailgun`.",
    ),
)

# Hosts for which an http:// base URL is accepted: links that only this machine can follow.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_RATE_ITEM = r"\s*\d+\s*(?:/|per)\s*(?:\d+\s*)?(?:second|minute|hour|day|month|year)s?\s*"
_RATE_LIMITS = re.compile(rf"{_RATE_ITEM}(?:[;,]{_RATE_ITEM})*")


def _default(name: str) -> str | None:
    return next(v.default for v in VARIABLES if v.name == name)


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


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    broker_url: str | None
    from_address: Address
    reply_to: Address | None
    base_url: str
    secret_key: str
    postal_address: str | None
    max_bulletin_bytes: int
    rates_max_age_days: int
    rate_form: str  # "both" or "desk" (render.rates.RateForm)
    template_dir: Path
    smtp: SmtpUrl
    smtp_require_tls: bool
    bounce_address: Address
    retry_schedule: tuple[int, ...]
    domain_throttle_after: int
    domain_policy_pause_after: int
    campaign_policy_pause_rate: float
    campaign_policy_window: int
    rate_limit: float
    domain_rate_limit: float
    max_connections: int
    batch_size: int
    lease_seconds: int
    dkim_key_file: Path | None
    dkim_selector: str
    dkim_domain: str
    feedback_id_sender: str
    bounce_mailbox: str | None
    bounce_poll_seconds: int
    soft_bounce_limit: int
    soft_bounce_days: int
    soft_bounce_stale_days: int
    hard_bounce_pause_rate: float
    complaint_pause_rate: float
    trusted_proxies: tuple[str, ...] = ()
    signup_limit_per_ip: str = "20/hour"
    signup_limit_per_address: str = "3/hour"
    ses_topic_arns: tuple[str, ...] = ()
    sendgrid_webhook_key: str | None = None
    postmark_webhook_auth: str | None = None
    mailgun_webhook_key: str | None = None

    @property
    def sending_domain(self) -> str:
        return self.from_address.domain

    @property
    def https(self) -> bool:
        """Whether the public address is https (cookies are then ``Secure``)."""
        return self.base_url.startswith("https://")

    @property
    def in_process(self) -> bool:
        return self.broker_url is None


def load_settings(
    environ: Mapping[str, str] | None = None, *, create_secret_key: bool = True
) -> Settings:
    """Read and validate every setting; raise ``ConfigError`` naming the first bad one.

    ``create_secret_key=False`` is for commands that only read: in embedded mode without a
    key file (or with one they may not read) they get a key for this process only instead of
    writing ``newsletter.secret``; nothing they do signs a link that must verify later.
    """
    env = os.environ if environ is None else environ

    def raw(name: str) -> str | None:
        value = env.get(name)
        if value is None or value.strip() == "":
            return _default(name)
        return value.strip()

    def parsed(name: str, parse: Callable[[str], T]) -> T:
        value = raw(name)
        if value is None:
            raise ConfigError(f"{name} is required")
        try:
            return parse(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{name}={value!r}: {exc}") from exc

    broker_url = raw("NEWSLETTER_BROKER_URL")
    database_url = parsed("NEWSLETTER_DATABASE_URL", _database_url)
    from_address = parsed("NEWSLETTER_FROM", _mailbox)
    reply_to_raw = raw("NEWSLETTER_REPLY_TO")
    reply_to = parsed("NEWSLETTER_REPLY_TO", _mailbox) if reply_to_raw else None
    bounce_raw = raw("NEWSLETTER_BOUNCE_ADDRESS")
    bounce_address = (
        parsed("NEWSLETTER_BOUNCE_ADDRESS", _mailbox)
        if bounce_raw
        else Address(username="bounces", domain=from_address.domain)
    )
    dkim_key_raw = raw("NEWSLETTER_DKIM_KEY_FILE")
    template_raw = raw("NEWSLETTER_TEMPLATE_DIR")
    return Settings(
        database_url=database_url,
        broker_url=broker_url,
        from_address=from_address,
        reply_to=reply_to,
        base_url=parsed("NEWSLETTER_BASE_URL", _base_url),
        secret_key=_secret_key(
            raw("NEWSLETTER_SECRET_KEY"), broker_url, database_url, create=create_secret_key
        ),
        postal_address=raw("NEWSLETTER_POSTAL_ADDRESS"),
        max_bulletin_bytes=parsed("NEWSLETTER_MAX_BULLETIN_BYTES", _positive_int),
        rates_max_age_days=parsed("NEWSLETTER_RATES_MAX_AGE_DAYS", _non_negative_int),
        rate_form=parsed("NEWSLETTER_RATE_FORM", _rate_form),
        template_dir=parsed("NEWSLETTER_TEMPLATE_DIR", _directory)
        if template_raw
        else DEFAULT_TEMPLATE_DIR,
        smtp=parsed("NEWSLETTER_SMTP_URL", parse_smtp_url),
        smtp_require_tls=parsed("NEWSLETTER_SMTP_REQUIRE_TLS", _boolean),
        bounce_address=bounce_address,
        retry_schedule=parsed("NEWSLETTER_RETRY_SCHEDULE", _schedule),
        domain_throttle_after=parsed("NEWSLETTER_DOMAIN_THROTTLE_AFTER", _positive_int),
        domain_policy_pause_after=parsed("NEWSLETTER_DOMAIN_POLICY_PAUSE_AFTER", _positive_int),
        campaign_policy_pause_rate=parsed("NEWSLETTER_CAMPAIGN_POLICY_PAUSE_RATE", _fraction),
        campaign_policy_window=parsed("NEWSLETTER_CAMPAIGN_POLICY_WINDOW", _positive_int),
        rate_limit=parsed("NEWSLETTER_RATE_LIMIT", _non_negative_float),
        domain_rate_limit=parsed("NEWSLETTER_DOMAIN_RATE_LIMIT", _non_negative_float),
        max_connections=parsed("NEWSLETTER_MAX_CONNECTIONS", _positive_int),
        batch_size=parsed("NEWSLETTER_BATCH_SIZE", _positive_int),
        lease_seconds=parsed("NEWSLETTER_LEASE_SECONDS", _positive_int),
        dkim_key_file=parsed("NEWSLETTER_DKIM_KEY_FILE", _readable_file) if dkim_key_raw else None,
        dkim_selector=parsed("NEWSLETTER_DKIM_SELECTOR", _dns_label),
        dkim_domain=raw("NEWSLETTER_DKIM_DOMAIN") or from_address.domain,
        feedback_id_sender=parsed("NEWSLETTER_FEEDBACK_ID_SENDER", _feedback_sender),
        bounce_mailbox=parsed("NEWSLETTER_BOUNCE_MAILBOX", _mailbox_url)
        if raw("NEWSLETTER_BOUNCE_MAILBOX")
        else None,
        bounce_poll_seconds=parsed("NEWSLETTER_BOUNCE_POLL_SECONDS", _positive_int),
        soft_bounce_limit=parsed("NEWSLETTER_SOFT_BOUNCE_LIMIT", _positive_int),
        soft_bounce_days=parsed("NEWSLETTER_SOFT_BOUNCE_DAYS", _non_negative_int),
        soft_bounce_stale_days=parsed("NEWSLETTER_SOFT_BOUNCE_STALE_DAYS", _positive_int),
        hard_bounce_pause_rate=parsed("NEWSLETTER_HARD_BOUNCE_PAUSE_RATE", _fraction),
        complaint_pause_rate=parsed("NEWSLETTER_COMPLAINT_PAUSE_RATE", _fraction),
        trusted_proxies=parsed("NEWSLETTER_TRUSTED_PROXIES", _networks)
        if raw("NEWSLETTER_TRUSTED_PROXIES")
        else (),
        signup_limit_per_ip=parsed("NEWSLETTER_SIGNUP_LIMIT_PER_IP", _rate_limits),
        signup_limit_per_address=parsed("NEWSLETTER_SIGNUP_LIMIT_PER_ADDRESS", _rate_limits),
        ses_topic_arns=_list(raw("NEWSLETTER_SES_TOPIC_ARNS")),
        sendgrid_webhook_key=raw("NEWSLETTER_SENDGRID_WEBHOOK_KEY"),
        postmark_webhook_auth=parsed("NEWSLETTER_POSTMARK_WEBHOOK_AUTH", _basic_credentials)
        if raw("NEWSLETTER_POSTMARK_WEBHOOK_AUTH")
        else None,
        mailgun_webhook_key=raw("NEWSLETTER_MAILGUN_WEBHOOK_KEY"),
    )


# --- parsers: each takes the raw string and returns the value or raises ValueError ---------


def _database_url(value: str) -> str:
    if not value.startswith(("sqlite:", "postgresql")):
        raise ValueError("expected a sqlite:/// or postgresql+psycopg:// URL")
    return value


def _mailbox(value: str) -> Address:
    if "\r" in value or "\n" in value:
        raise ValueError("line breaks are not allowed")
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise ValueError("expected an address such as 'Name <user@example.org>'")
    user, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=user, domain=domain.lower())


# Characters a link built on the base URL cannot carry in an HTML attribute, a header's <…> or
# a plain-text line: checked here, once, rather than by every recipient's message.
_URL_UNSAFE = frozenset(" \t\"'`<>\\^{}|")


def _base_url(value: str) -> str:
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


def _networks(value: str) -> tuple[str, ...]:
    networks = _list(value)
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
    return networks


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _rate_limits(value: str) -> str:
    # The ``limits`` package's notation, checked here without importing it (every process,
    # workers included, reads the settings at start).
    if not _RATE_LIMITS.fullmatch(value):
        raise ValueError("expected limits like '5/minute;20/hour'")
    return value


def _basic_credentials(value: str) -> str:
    if ":" not in value:
        raise ValueError("expected user:password")
    return value


def _mailbox_url(value: str) -> str:
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


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 < number <= 1:
        raise ValueError("must be a fraction between 0 and 1, e.g. 0.05")
    return number


def _schedule(value: str) -> tuple[int, ...]:
    steps = tuple(int(part) for part in value.split(","))
    if not steps or any(step < 0 for step in steps):
        raise ValueError("expected comma-separated seconds, e.g. 60,300,1800")
    return steps


def _rate_form(value: str) -> str:
    # The values of render.rates.RateForm, spelled here: config is below every stage.
    if value.lower() not in ("both", "desk"):
        raise ValueError("expected both or desk")
    return value.lower()


def _directory(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise ValueError("no such directory")
    return path


def _readable_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise ValueError("no such file")
    return path


def _dns_label(value: str) -> str:
    if not value.replace("-", "").replace(".", "").isalnum():
        raise ValueError("expected letters, digits, dots and hyphens")
    return value


def _feedback_sender(value: str) -> str:
    if not (5 <= len(value) <= 15) or not all(c.isalnum() or c in "._-" for c in value):
        raise ValueError("expected 5-15 letters, digits, '.', '_' or '-'")
    return value


def _secret_key(
    value: str | None, broker_url: str | None, database_url: str, *, create: bool
) -> str:
    if value is not None:
        if len(value) < 32:
            raise ConfigError("NEWSLETTER_SECRET_KEY must be at least 32 characters")
        return value
    if broker_url is not None or not database_url.startswith("sqlite"):
        # Workers on other machines must sign and verify with the same key.
        raise ConfigError(
            "NEWSLETTER_SECRET_KEY is required when a broker or PostgreSQL is configured"
        )
    key_file = Path(SECRET_KEY_FILE)
    if not create:
        try:
            stored = key_file.read_text(encoding="utf-8").strip()
        except OSError:  # none yet, or another user's: a reader needs no stored key
            stored = ""
        return stored or secrets.token_urlsafe(48)
    try:
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
            key_file.chmod(0o600)
        return key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"NEWSLETTER_SECRET_KEY is unset and {key_file.resolve()} cannot be "
            f"{'read' if key_file.exists() else 'created'} ({exc.strerror}); set the variable "
            "or run in a directory you can write"
        ) from exc
