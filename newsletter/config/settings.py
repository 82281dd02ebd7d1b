"""``Settings``, read once from the ``NEWSLETTER_*`` variables (``variables``) and validated.

A bad value raises ``ConfigError`` naming the variable, and the CLI turns that into one line.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from pathlib import Path
from typing import TypeVar

from newsletter.config import values
from newsletter.config.values import SmtpUrl
from newsletter.config.variables import default
from newsletter.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # newsletter/
DEFAULT_TEMPLATE_DIR = PACKAGE_DIR.parent / "templates" / "email"
SECRET_KEY_FILE = "newsletter.secret"  # noqa: S105 - a file name, not a secret
T = TypeVar("T")


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
            return default(name)
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
    database_url = parsed("NEWSLETTER_DATABASE_URL", values.database_url)
    from_address = parsed("NEWSLETTER_FROM", values.mailbox)
    reply_to_raw = raw("NEWSLETTER_REPLY_TO")
    reply_to = parsed("NEWSLETTER_REPLY_TO", values.mailbox) if reply_to_raw else None
    bounce_raw = raw("NEWSLETTER_BOUNCE_ADDRESS")
    bounce_address = (
        parsed("NEWSLETTER_BOUNCE_ADDRESS", values.mailbox)
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
        base_url=parsed("NEWSLETTER_BASE_URL", values.base_url),
        secret_key=_secret_key(
            raw("NEWSLETTER_SECRET_KEY"), broker_url, database_url, create=create_secret_key
        ),
        postal_address=raw("NEWSLETTER_POSTAL_ADDRESS"),
        max_bulletin_bytes=parsed("NEWSLETTER_MAX_BULLETIN_BYTES", values.positive_int),
        rates_max_age_days=parsed("NEWSLETTER_RATES_MAX_AGE_DAYS", values.non_negative_int),
        rate_form=parsed("NEWSLETTER_RATE_FORM", values.rate_form),
        template_dir=parsed("NEWSLETTER_TEMPLATE_DIR", values.directory)
        if template_raw
        else DEFAULT_TEMPLATE_DIR,
        smtp=parsed("NEWSLETTER_SMTP_URL", values.parse_smtp_url),
        smtp_require_tls=parsed("NEWSLETTER_SMTP_REQUIRE_TLS", values.boolean),
        bounce_address=bounce_address,
        retry_schedule=parsed("NEWSLETTER_RETRY_SCHEDULE", values.schedule),
        domain_throttle_after=parsed("NEWSLETTER_DOMAIN_THROTTLE_AFTER", values.positive_int),
        domain_policy_pause_after=parsed(
            "NEWSLETTER_DOMAIN_POLICY_PAUSE_AFTER", values.positive_int
        ),
        campaign_policy_pause_rate=parsed("NEWSLETTER_CAMPAIGN_POLICY_PAUSE_RATE", values.fraction),
        campaign_policy_window=parsed("NEWSLETTER_CAMPAIGN_POLICY_WINDOW", values.positive_int),
        rate_limit=parsed("NEWSLETTER_RATE_LIMIT", values.non_negative_float),
        domain_rate_limit=parsed("NEWSLETTER_DOMAIN_RATE_LIMIT", values.non_negative_float),
        max_connections=parsed("NEWSLETTER_MAX_CONNECTIONS", values.positive_int),
        batch_size=parsed("NEWSLETTER_BATCH_SIZE", values.positive_int),
        lease_seconds=parsed("NEWSLETTER_LEASE_SECONDS", values.positive_int),
        dkim_key_file=parsed("NEWSLETTER_DKIM_KEY_FILE", values.readable_file)
        if dkim_key_raw
        else None,
        dkim_selector=parsed("NEWSLETTER_DKIM_SELECTOR", values.dns_label),
        dkim_domain=raw("NEWSLETTER_DKIM_DOMAIN") or from_address.domain,
        feedback_id_sender=parsed("NEWSLETTER_FEEDBACK_ID_SENDER", values.feedback_sender),
        bounce_mailbox=parsed("NEWSLETTER_BOUNCE_MAILBOX", values.mailbox_url)
        if raw("NEWSLETTER_BOUNCE_MAILBOX")
        else None,
        bounce_poll_seconds=parsed("NEWSLETTER_BOUNCE_POLL_SECONDS", values.positive_int),
        soft_bounce_limit=parsed("NEWSLETTER_SOFT_BOUNCE_LIMIT", values.positive_int),
        soft_bounce_days=parsed("NEWSLETTER_SOFT_BOUNCE_DAYS", values.non_negative_int),
        soft_bounce_stale_days=parsed("NEWSLETTER_SOFT_BOUNCE_STALE_DAYS", values.positive_int),
        hard_bounce_pause_rate=parsed("NEWSLETTER_HARD_BOUNCE_PAUSE_RATE", values.fraction),
        complaint_pause_rate=parsed("NEWSLETTER_COMPLAINT_PAUSE_RATE", values.fraction),
        trusted_proxies=parsed("NEWSLETTER_TRUSTED_PROXIES", values.networks)
        if raw("NEWSLETTER_TRUSTED_PROXIES")
        else (),
        signup_limit_per_ip=parsed("NEWSLETTER_SIGNUP_LIMIT_PER_IP", values.rate_limits),
        signup_limit_per_address=parsed("NEWSLETTER_SIGNUP_LIMIT_PER_ADDRESS", values.rate_limits),
        ses_topic_arns=values.comma_list(raw("NEWSLETTER_SES_TOPIC_ARNS")),
        sendgrid_webhook_key=raw("NEWSLETTER_SENDGRID_WEBHOOK_KEY"),
        postmark_webhook_auth=parsed("NEWSLETTER_POSTMARK_WEBHOOK_AUTH", values.basic_credentials)
        if raw("NEWSLETTER_POSTMARK_WEBHOOK_AUTH")
        else None,
        mailgun_webhook_key=raw("NEWSLETTER_MAILGUN_WEBHOOK_KEY"),
    )


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
