"""The mailbox poller against a real Dovecot: store, then move or delete, then process once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from newsletter.bounces import intake, processing
from newsletter.bounces.event import BounceSource
from newsletter.bounces.models import BounceEventRecord, BounceMessage
from newsletter.bounces.parse import MAX_MESSAGE_BYTES
from newsletter.bounces.sources.mailbox import (
    PROCESSED_FOLDER,
    PollResult,
    parse_mailbox_url,
    poll,
)
from newsletter.cli import main
from newsletter.config import Settings
from newsletter.db import session_scope, utcnow
from newsletter.errors import ConfigError, InvalidInput
from tests.bounces.dovecot import Dovecot, running_dovecot
from tests.bounces.test_processing import dsn
from tests.conftest import make_env


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Dovecot:
    """The shared server, with its folders emptied before each test."""
    with dovecot.imap() as conn:
        for folder in ("INBOX", PROCESSED_FOLDER):
            typ, data = conn.select(folder)
            if typ == "OK" and int(data[0] or 0):
                conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                conn.expunge()
    return dovecot


def delivered(n: int) -> bytes:
    """A bounce as our MTA would file it: Delivered-To names the VERP address."""
    return f"Delivered-To: bounces+b1-{n:029d}@news.example.org\r\n".encode() + dsn(
        f"m{n}@example.org"
    )


def poll_and_process(settings: Settings, url: str) -> PollResult:
    source = BounceSource.IMAP if url.startswith("imap") else BounceSource.POP3

    def store(raw: bytes) -> int:  # as `bounces poll` does: committed before it is acknowledged
        rcpt = intake.envelope_rcpt_from_headers(raw)
        with session_scope(settings) as session:
            return intake.record_raw(session, raw, source=source, envelope_rcpt=rcpt).id

    result = poll(parse_mailbox_url(url), store)
    for bounce_message_id in result.stored_ids:
        with session_scope(settings) as session:
            processing.process_message(session, settings, bounce_message_id, utcnow())
    return result


def counts(settings: Settings) -> tuple[int, int]:
    with session_scope(settings) as session:
        messages = session.scalar(select(func.count()).select_from(BounceMessage)) or 0
        events = session.scalar(select(func.count()).select_from(BounceEventRecord)) or 0
    return messages, events


def test_imap_messages_are_stored_moved_to_processed_and_processed(
    mailbox: Dovecot, committed_settings: Settings
) -> None:
    mailbox.append(*(delivered(n) for n in range(5)))

    result = poll_and_process(committed_settings, mailbox.imap_url())

    assert (result.fetched, result.acknowledged, result.vanished) == (5, 5, 0)
    assert mailbox.count("INBOX") == 0
    assert mailbox.count(PROCESSED_FOLDER) == 5
    assert counts(committed_settings) == (5, 5)
    with session_scope(committed_settings) as session:
        rcpts = set(session.scalars(select(BounceMessage.envelope_rcpt)))
        unprocessed = session.scalar(
            select(func.count()).where(BounceMessage.processed_at.is_(None))
        )
    assert rcpts == {f"bounces+b1-{n:029d}@news.example.org" for n in range(5)}
    assert unprocessed == 0
    # a second run finds nothing new
    assert poll_and_process(committed_settings, mailbox.imap_url()).fetched == 0


def test_two_imap_pollers_at_once_process_each_message_once(
    mailbox: Dovecot, committed_settings: Settings
) -> None:
    count = 40
    mailbox.append(*(delivered(n) for n in range(count)))
    results: list[PollResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(poll_and_process(committed_settings, mailbox.imap_url()))
        except BaseException as exc:  # reported below: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert mailbox.count("INBOX") == 0
    # Dovecot's MOVE is copy-then-expunge: two sessions moving the same UID at the same
    # instant may both copy it, so "Processed" can hold a few duplicates. Ours are stored,
    # matched and applied once all the same.
    assert sum(r.acknowledged for r in results) >= count
    assert mailbox.count(PROCESSED_FOLDER) >= count
    assert counts(committed_settings) == (count, count)


def test_pop3_messages_are_stored_deleted_and_processed(
    mailbox: Dovecot, committed_settings: Settings
) -> None:
    mailbox.append(*(delivered(n) for n in range(4)))

    result = poll_and_process(committed_settings, mailbox.pop3_url())

    assert (result.fetched, result.acknowledged) == (4, 4)
    assert mailbox.count("INBOX") == 0
    assert counts(committed_settings) == (4, 4)


def test_two_pop3_pollers_at_once_process_each_message_once(
    mailbox: Dovecot, committed_settings: Settings
) -> None:
    count = 20
    mailbox.append(*(delivered(n) for n in range(count)))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            poll_and_process(committed_settings, mailbox.pop3_url())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert mailbox.count("INBOX") == 0
    assert counts(committed_settings) == (count, count)


def test_wrong_password_is_a_config_error(mailbox: Dovecot) -> None:
    url = mailbox.imap_url().replace("secret-password", "wrong")
    with pytest.raises(ConfigError):
        poll(parse_mailbox_url(url), lambda raw: 0)


@pytest.mark.parametrize(
    "url", ["http://u:p@host/", "imap://host/INBOX", "pop3://u@host", "imaps://u:p@host:x/"]
)
def test_bad_mailbox_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_mailbox_url(url)


def test_mailbox_url_defaults() -> None:
    url = parse_mailbox_url("imaps://bounce%40example.org:p%2Fw@mail.example.org/Bounces")
    assert (url.host, url.port, url.user, url.password, url.folder, url.tls) == (
        "mail.example.org",
        993,
        "bounce@example.org",
        "p/w",
        "Bounces",
        True,
    )


def test_poll_command_stores_moves_and_processes(
    mailbox: Dovecot,
    committed_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in make_env(committed_settings.database_url).items():
        monkeypatch.setenv(name, value)
    mailbox.append(*(delivered(n) for n in range(3)))

    main(["bounces", "poll", "--imap", mailbox.imap_url(), "--json"])

    assert json.loads(capsys.readouterr().out) == {
        "fetched": 3,
        "acknowledged": 3,
        "vanished": 0,
        "stored": 3,
        "refused": 0,
    }
    assert mailbox.count(PROCESSED_FOLDER) == 3
    assert counts(committed_settings) == (3, 3)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_message_over_the_size_limit_is_left_on_the_server_and_the_rest_stored(
    mailbox: Dovecot, committed_settings: Settings, protocol: str
) -> None:
    huge = delivered(0) + (b"x" * 76 + b"\r\n") * (MAX_MESSAGE_BYTES // 78 + 1)
    mailbox.append(delivered(1), huge, delivered(2))
    url = mailbox.imap_url() if protocol == "imap" else mailbox.pop3_url()

    result = poll_and_process(committed_settings, url)
    again = poll_and_process(committed_settings, url)

    assert (result.fetched, result.acknowledged, result.refused) == (3, 2, 1)
    assert (again.fetched, again.refused, again.stored_ids) == (1, 1, ())
    assert mailbox.count("INBOX") == 1  # the big one, for a person to look at
    assert counts(committed_settings) == (2, 2)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_message_with_lines_longer_than_poplib_allows_is_stored_like_any_other(
    mailbox: Dovecot, committed_settings: Settings, protocol: str
) -> None:
    # Returned messages often carry a whole HTML part on one line; poplib refuses any line
    # over 2,048 bytes and would leave the connection in the middle of the message.
    long_line = delivered(0) + b"X-Returned-Html: " + b"<p>" * 3000 + b"\r\n"
    mailbox.append(delivered(1), long_line, delivered(2))
    url = mailbox.imap_url() if protocol == "imap" else mailbox.pop3_url()

    result = poll_and_process(committed_settings, url)

    assert (result.fetched, result.acknowledged, result.vanished) == (3, 3, 0)
    assert mailbox.count("INBOX") == 0
    assert counts(committed_settings) == (3, 3)
