"""Settings come from NEWSLETTER_* variables, are validated at start and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.config import VARIABLES, load_settings
from newsletter.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_work_with_no_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})

    assert settings.database_url == "sqlite:///newsletter.db"
    assert settings.in_process
    assert len(settings.secret_key) >= 32
    assert load_settings({}).secret_key == settings.secret_key  # generated once, then reused
    assert settings.retry_schedule == (60, 300, 1800, 7200)
    assert settings.bounce_address.domain == settings.from_address.domain


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NEWSLETTER_DATABASE_URL", "mysql://x", "sqlite:/// or postgresql"),
        ("NEWSLETTER_FROM", "not an address", "expected an address"),
        ("NEWSLETTER_FROM", "Evil <a@b.org>\r\nBcc: x@y.org", "line breaks"),
        ("NEWSLETTER_BASE_URL", "news.example.org", "absolute"),
        ("NEWSLETTER_BASE_URL", 'https://news.example.org/"x', "cannot be part of a link"),
        ("NEWSLETTER_BASE_URL", "https://news.example.org/a b", "cannot be part of a link"),
        ("NEWSLETTER_BASE_URL", "https://news.example.org/?a=1", "no ?query"),
        ("NEWSLETTER_BASE_URL", "https://news.example.org:x/", "port"),
        ("NEWSLETTER_SMTP_URL", "http://relay:25", "scheme"),
        ("NEWSLETTER_RETRY_SCHEDULE", "60,soon", "invalid literal"),
        ("NEWSLETTER_RATE_LIMIT", "-1", "must not be negative"),
        ("NEWSLETTER_BATCH_SIZE", "0", "positive"),
        ("NEWSLETTER_SMTP_REQUIRE_TLS", "maybe", "true or false"),
        ("NEWSLETTER_FEEDBACK_ID_SENDER", "abc", "5-15"),
        ("NEWSLETTER_SECRET_KEY", "short", "at least 32"),
        ("NEWSLETTER_BASE_URL", "http://news.example.org", "must be https"),
        ("NEWSLETTER_BASE_URL", 'https://news.example.org/"x', "without spaces, quotes"),
        ("NEWSLETTER_TRUSTED_PROXIES", "10.0.0.1,proxy.local", "does not appear to be"),
        ("NEWSLETTER_SIGNUP_LIMIT_PER_IP", "lots", "lots"),
        ("NEWSLETTER_POSTMARK_WEBHOOK_AUTH", "nocolon", "user:password"),
    ],
)
def test_a_bad_value_names_its_variable(
    name: str, value: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=name if name != "NEWSLETTER_SECRET_KEY" else "SECRET"
    ) as caught:
        load_settings({name: value})
    assert message in str(caught.value)


def test_scale_out_requires_an_explicit_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY is required"):
        load_settings({"NEWSLETTER_BROKER_URL": "redis://127.0.0.1:6379/0"})


def test_smtp_urls_of_every_scheme_parse() -> None:
    settings = load_settings(
        {
            "NEWSLETTER_SMTP_URL": "smtps://user:pa%40ss@relay.example:2465",
            "NEWSLETTER_SECRET_KEY": "k" * 32,
        }
    )
    assert (settings.smtp.scheme, settings.smtp.host, settings.smtp.port) == (
        "smtps",
        "relay.example",
        2465,
    )
    assert settings.smtp.username == "user"
    assert settings.smtp.encrypted


def test_every_variable_is_documented_in_the_readme() -> None:
    documented = set(re.findall(r"`(NEWSLETTER_[A-Z_]+)`", README.read_text(encoding="utf-8")))
    assert {v.name for v in VARIABLES} <= documented


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:8000/", "https://news.example.org"]
)
def test_http_base_urls_are_accepted_only_for_this_machine(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"NEWSLETTER_BASE_URL": url})
    assert settings.base_url == url.rstrip("/")
    assert settings.https == url.startswith("https")


def test_trusted_proxies_and_webhook_secrets_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        {
            "NEWSLETTER_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8",
            "NEWSLETTER_SES_TOPIC_ARNS": "arn:aws:sns:eu-west-1:1:a,arn:aws:sns:eu-west-1:1:b",
        }
    )
    assert settings.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert len(settings.ses_topic_arns) == 2
    assert settings.mailgun_webhook_key is None
