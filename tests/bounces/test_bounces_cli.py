"""``newsletter bounces process|report`` and ``newsletter subscriber reinstate``: JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.db import Base, session_scope
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.bounces.test_processing import World, dsn
from tests.conftest import Run

EVENT_KEYS = {
    "file",
    "message",
    "event",
    "kind",
    "email",
    "delivery",
    "campaign",
    "status",
    "evidence",
    "action",
    "reason",
}


@pytest.fixture
def verp_reader(committed_settings: Settings) -> tuple[int, str]:
    """A subscriber with one sent delivery: (delivery id, its VERP address)."""
    with session_scope(committed_settings) as session:
        world = World(session, committed_settings)
        reader = world.subscriber("cli@example.org")
        delivery = world.delivery(world.campaign(), reader)
        return delivery.id, world.verp(delivery)


def test_process_with_rcpt_prints_one_json_line_per_event(
    run_cli: Run, tmp_path: Path, verp_reader: tuple[int, str]
) -> None:
    delivery_id, verp = verp_reader
    (tmp_path / "a.eml").write_bytes(dsn("cli@example.org"))

    result = run_cli("bounces", "process", str(tmp_path / "a.eml"), "--rcpt", verp, "--json")

    assert result.exit_code == 0, result.stderr
    [line] = result.lines()
    assert set(line) == EVENT_KEYS
    assert (line["kind"], line["email"], line["delivery"], line["status"], line["action"]) == (
        "hard",
        "cli@example.org",
        delivery_id,
        "5.1.1",
        "subscriber bounced",
    )


def test_process_prints_the_evidence_of_each_event(
    run_cli: Run, tmp_path: Path, verp_reader: tuple[int, str]
) -> None:
    _, verp = verp_reader
    (tmp_path / "a.eml").write_bytes(dsn("cli@example.org"))
    (tmp_path / "b.eml").write_bytes(dsn("cli@example.org", "5.1.2"))

    with_token = run_cli("bounces", "process", str(tmp_path / "a.eml"), "--rcpt", verp)
    without = run_cli("bounces", "process", str(tmp_path / "b.eml"), "--rcpt", "bounces@x.example")

    assert "[evidence: verp] → subscriber bounced" in with_token.stdout
    assert "[evidence: none] → none (unverified hard 5.1.2" in without.stdout


def test_process_reads_the_envelope_from_delivered_to(
    run_cli: Run, tmp_path: Path, verp_reader: tuple[int, str]
) -> None:
    delivery_id, verp = verp_reader
    # The report names someone else: only the VERP address can tie it to the delivery.
    raw = f"Delivered-To: {verp}\r\n".encode() + dsn("forwarded@elsewhere.example")
    (tmp_path / "b.eml").write_bytes(raw)

    [line] = run_cli("bounces", "process", str(tmp_path / "b.eml"), "--json").lines()

    assert (line["delivery"], line["action"]) == (delivery_id, "subscriber bounced")


def test_process_from_stdin_and_twice_gives_the_same_answer(
    run_cli: Run, verp_reader: tuple[int, str]
) -> None:
    _, verp = verp_reader
    raw = dsn("cli@example.org", "4.2.2", diagnostic="smtp; 452 4.2.2 Mailbox full")
    first = run_cli("bounces", "process", "-", "--rcpt", verp, "--json", stdin=raw).lines()
    again = run_cli("bounces", "process", "-", "--rcpt", verp, "--json", stdin=raw).lines()
    assert first == again
    assert (first[0]["kind"], first[0]["action"]) == ("soft", "counted")


def test_process_of_a_missing_file_is_a_user_error(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("bounces", "process", str(tmp_path / "nope.eml"), "--json")
    assert result.exit_code == 2
    assert "cannot read" in json.loads(result.stderr)["error"]


def test_unparseable_and_unknown_messages_have_kind_and_no_action(
    run_cli: Run, tmp_path: Path
) -> None:
    (tmp_path / "junk.eml").write_bytes(b"")
    (tmp_path / "hello.eml").write_bytes(b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
    result = run_cli(
        "bounces", "process", str(tmp_path / "junk.eml"), str(tmp_path / "hello.eml"), "--json"
    )
    kinds = [(line["kind"], line["action"], line["delivery"]) for line in result.lines()]
    assert kinds == [("unparseable", "none", None), ("unknown", "none", None)]


def test_report_counts_by_kind_and_domain(
    run_cli: Run, tmp_path: Path, verp_reader: tuple[int, str]
) -> None:
    _, verp = verp_reader
    (tmp_path / "a.eml").write_bytes(dsn("cli@example.org"))
    run_cli("bounces", "process", str(tmp_path / "a.eml"), "--rcpt", verp)

    report = json.loads(run_cli("bounces", "report", "--json").stdout)
    assert report["by_kind"]["hard"] == 1
    assert report["by_domain"] == {"example.org": {"hard": 1}}
    assert (report["messages"], report["unprocessed"]) == (1, 0)


def test_reinstate_makes_a_bounced_subscriber_active(
    run_cli: Run, committed_settings: Settings, tmp_path: Path, verp_reader: tuple[int, str]
) -> None:
    _, verp = verp_reader
    (tmp_path / "a.eml").write_bytes(dsn("cli@example.org"))
    run_cli("bounces", "process", str(tmp_path / "a.eml"), "--rcpt", verp)

    result = run_cli("subscriber", "reinstate", "cli@example.org", "--by", "editor", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "email": "cli@example.org",
        "old": "bounced",
        "new": "active",
        "by": "editor",
    }
    with session_scope(committed_settings) as session:
        status = session.scalar(
            select(Subscriber.status).where(Subscriber.email == "cli@example.org")
        )
    assert status is SubscriberStatus.ACTIVE


def test_erasing_a_subscriber_leaves_their_address_in_no_table(
    run_cli: Run, committed_settings: Settings, tmp_path: Path, verp_reader: tuple[int, str]
) -> None:
    _, verp = verp_reader
    (tmp_path / "a.eml").write_bytes(dsn("cli@example.org"))
    run_cli("bounces", "process", str(tmp_path / "a.eml"), "--rcpt", verp)

    assert run_cli("subscriber", "delete", "cli@example.org").exit_code == 0

    with session_scope(committed_settings) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                for value in row:
                    text = (
                        value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    )
                    assert "cli@example.org" not in text.lower(), table.name
