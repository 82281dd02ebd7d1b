"""Every ``NEWSLETTER_*`` variable: its name, its default and what it means.

The README's configuration table is checked against this one by a test
(``tests/test_config.py``), so the two cannot drift apart; ``settings.load_settings`` reads
them. A long table, but one job: adding a setting is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def default(name: str) -> str | None:
    return next(v.default for v in VARIABLES if v.name == name)
