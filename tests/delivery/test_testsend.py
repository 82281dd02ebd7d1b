"""A test send is the real message: a subscriber's headers and parts, signed, with a test token.

Compared on a real aiosmtpd relay with a message of a real campaign of the same issue; the
only differences allowed are the ones a test must have (To, Message-ID, the subject's
"[TEST] ", the token in the unsubscribe links, and what differs between any two campaigns:
the Date, the MIME boundary, the campaign in the Feedback-ID, the signature's own values).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path

import dkim
import pytest
import sqlalchemy as sa

from newsletter import sending
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.testsend import TEST_SUBJECT_PREFIX, send_test
from newsletter.delivery.transports.memory import MemoryTransport
from newsletter.errors import InvalidInput
from newsletter.subscribers.consent import unsubscribe_by_token
from newsletter.subscribers.models import Subscription, SubscriptionStatus
from newsletter.subscribers.tokens import read_test_token, read_unsubscribe_token
from tests.conftest import Run
from tests.delivery import seed
from tests.delivery.conftest import DkimKey
from tests.delivery.relay import Relay, running_relay

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
DOMAIN = "news.example.org"
SELECTOR = "s2025"
LINK = re.compile(r"https://news\.example\.org/u/([a-z0-9.]+)")
MAILTO = re.compile(r"mailto:unsubscribe\+([a-z0-9.]+)@")


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def dns_for(key: DkimKey):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return key[1] if name.decode().rstrip(".") == f"{SELECTOR}._domainkey.{DOMAIN}" else None

    return lookup


def structure(message: Message) -> list[tuple[str, str | None]]:
    return [(part.get_content_type(), part["Content-Transfer-Encoding"]) for part in message.walk()]


def tokens_in(message: EmailMessage) -> set[str]:
    header = str(message["List-Unsubscribe"])
    return set(LINK.findall(header)) | set(MAILTO.findall(header))


@pytest.fixture
def key(dkim_keys: tuple[DkimKey, DkimKey]) -> DkimKey:
    return dkim_keys[0]


@pytest.fixture
def issue(committed_settings: Settings) -> tuple[int, int]:
    """A rendered issue and the list ``weekly`` (one subscriber): (issue id, list id)."""
    issue_id = seed.rendered_issue(committed_settings)
    list_id = seed.subscribers(committed_settings, "weekly", ["ann@example.org"])
    return issue_id, list_id


def test_a_test_send_goes_through_the_transport_it_is_given_signed(
    committed_settings: Settings, issue: tuple[int, int], key: DkimKey
) -> None:
    transport = MemoryTransport()
    signer = DkimSigner.from_pem(key[0], SELECTOR, DOMAIN)

    with session_scope(committed_settings) as session:
        report = send_test(
            session,
            committed_settings,
            issue[0],
            ["Editor@Example.org"],
            transport=transport,
            signer=signer,
            now=NOW,
        )

    (sent,) = transport.sent
    assert sent.recipient == "editor@example.org"
    assert dkim.verify(sent.message, dnsfunc=dns_for(key))
    assert sent.message.isascii()  # signed: 7bit, as a campaign's signed message
    assert (report.list_name, report.signed) == ("weekly", True)
    assert report.as_document()["results"] == [
        {"to": "editor@example.org", "result": "accepted: 2.0.0 Ok: queued as MEM1"}
    ]
    assert parse(sent.message)["Subject"].startswith(TEST_SUBJECT_PREFIX)


def test_the_unsubscribe_links_carry_a_test_token_that_unsubscribes_nobody(
    committed_settings: Settings, issue: tuple[int, int]
) -> None:
    transport = MemoryTransport()
    with session_scope(committed_settings) as session:
        send_test(
            session, committed_settings, issue[0], ["ann@example.org"], transport=transport,
            signer=None, now=NOW,
        )  # fmt: skip
    message = parse(transport.sent[0].message)
    (token,) = tokens_in(message)
    html = message.get_body(("html",))
    assert html is not None

    claim = read_test_token(committed_settings.secret_key, token)

    assert (claim.issue_id, claim.list_id) == issue
    assert f"https://{DOMAIN}/u/{token}" in html.get_content()  # the link in the body too
    with pytest.raises(InvalidInput):
        read_unsubscribe_token(committed_settings.secret_key, token)
    with session_scope(committed_settings) as session, pytest.raises(InvalidInput):
        unsubscribe_by_token(session, committed_settings.secret_key, token, now=NOW)
    with session_scope(committed_settings) as session:
        statuses = set(session.scalars(sa.select(Subscription.status)))
    assert statuses == {SubscriptionStatus.CONFIRMED}  # ann, who got the test, is still in


def test_with_several_lists_a_test_send_needs_to_be_told_which(
    committed_settings: Settings, issue: tuple[int, int]
) -> None:
    seed.subscribers(committed_settings, "alerts", ["bob@example.org"])
    transport = MemoryTransport()

    with (
        session_scope(committed_settings) as session,
        pytest.raises(InvalidInput, match="alerts, weekly"),
    ):
        send_test(
            session, committed_settings, issue[0], ["ed@example.org"], transport=transport,
            signer=None, now=NOW,
        )  # fmt: skip
    with session_scope(committed_settings) as session:
        report = send_test(
            session, committed_settings, issue[0], ["ed@example.org"], transport=transport,
            signer=None, now=NOW, list_name="alerts",
        )  # fmt: skip

    assert report.list_name == "alerts"
    assert "alerts" in str(parse(transport.sent[0].message)["List-Id"])


@pytest.fixture
def relay() -> Iterator[Relay]:
    with running_relay() as running:
        yield running


def test_a_test_send_is_the_message_a_subscriber_gets(
    run_cli: Run, relay: Relay, key: DkimKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sending keeps each campaign's template for the life of the process, keyed by database and
    # campaign id; the tables are emptied between tests, so campaign 1 of an earlier test
    # would stand in for this one's.
    sending.CAMPAIGN_MESSAGES.clear()
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(key[0])
    env = {
        "NEWSLETTER_SMTP_URL": relay.env_url,
        "NEWSLETTER_DKIM_KEY_FILE": str(key_file),
        "NEWSLETTER_DKIM_SELECTOR": SELECTOR,
    }
    people = tmp_path / "people.csv"
    people.write_text("email,name\nann@example.org,Ann\n", encoding="utf-8")
    from tests.conftest import SAMPLE_BULLETIN

    run_cli("import-bulletin", str(SAMPLE_BULLETIN))
    issue_id = run_cli("issue", "create", "--subject", "Weekly — ▲", "--json").json()["id"]
    run_cli("list", "create", "weekly")
    run_cli("subscribers", "import", str(people), "--list", "weekly")
    assert run_cli("send", str(issue_id), "--list", "weekly", "--wait", env=env).exit_code == 0
    tested = run_cli("test-send", str(issue_id), "--to", "editor@example.org", "--json", env=env)

    assert tested.exit_code == 0, tested.stderr
    assert (tested.json()["list"], tested.json()["dkim"]) == ("weekly", True)
    by_rcpt = {accepted.rcpt: accepted.content for accepted in relay.handler.accepted}
    real, test = by_rcpt["ann@example.org"], by_rcpt["editor@example.org"]
    assert dkim.verify(real, dnsfunc=dns_for(key))
    assert dkim.verify(test, dnsfunc=dns_for(key))
    real_message, test_message = parse(real), parse(test)
    assert test_message.keys() == real_message.keys()  # the same headers, in the same order
    assert structure(test_message) == structure(real_message)
    assert str(test_message["Subject"]) == TEST_SUBJECT_PREFIX + str(real_message["Subject"])
    assert str(test_message["To"]) == "editor@example.org"
    assert test_message["Message-ID"] != real_message["Message-ID"]
    assert len(tokens_in(test_message)) == len(tokens_in(real_message)) == 1
    assert tokens_in(test_message) != tokens_in(real_message)
    expected_to_differ = {"to", "message-id", "subject", "date", "dkim-signature"}
    for name in real_message:
        if name.lower() in expected_to_differ:
            continue
        assert same_but_for_instances(str(test_message[name]), str(real_message[name])), name
    assert dkim_tags(test)["h"] == dkim_tags(real)["h"]


def same_but_for_instances(test: str, real: str) -> bool:
    """Equal once the values every message or campaign has its own are blanked."""

    def blank(value: str) -> str:
        value = LINK.sub("https://news.example.org/u/TOKEN", value)
        value = MAILTO.sub("mailto:unsubscribe+TOKEN@", value)
        value = re.sub(r'boundary="[^"]+"', 'boundary="B"', value)
        return re.sub(r"^c\d+:", "cN:", value)  # Feedback-ID: no campaign yet for a test

    return blank(test) == blank(real)


def dkim_tags(raw: bytes) -> dict[str, str]:
    signature = str(parse(raw)["DKIM-Signature"])
    pairs = (t.split("=", 1) for t in re.sub(r"\s+", "", signature).split(";") if t)
    return {k: v for k, v in pairs}
