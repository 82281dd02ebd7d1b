"""`campaign ls|status|recipients|resend|resume` and `send` as an operator sees them."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.delivery.models import Delivery, DeliveryStatus, SendLane
from tests.conftest import SAMPLE_BULLETIN, Run, assert_one_line_error
from tests.delivery.relay import Relay, free_port, running_relay


@pytest.fixture
def relay() -> Iterator[Relay]:
    with running_relay() as running:
        yield running


def prepare(run_cli: Run, tmp_path: object, people: int = 3) -> int:
    path = f"{tmp_path}/people.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("email,name\n")
        for n in range(people):
            f.write(f"p{n}@example.org,Person {n}\n")
    run_cli("import-bulletin", str(SAMPLE_BULLETIN))
    issue_id: int = run_cli("issue", "create", "--subject", "Weekly", "--json").json()["id"]
    run_cli("list", "create", "weekly")
    run_cli("subscribers", "import", path, "--list", "weekly")
    return issue_id


def test_with_the_relay_down_send_says_what_it_waits_for_and_until_when(
    run_cli: Run, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, tmp_path)
    port = free_port()  # nothing listens there
    env = {"NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{port}"}

    result = run_cli("send", str(issue_id), "--list", "weekly", env=env)

    assert result.exit_code == 0, result.stderr
    assert f"waiting: relay 127.0.0.1:{port} refused the connection; retrying at " in result.stdout
    status = run_cli("campaign", "status", "1", "--json").json()
    relay_wait = [w for w in status["waiting"] if w["for"] == "relay"]
    assert len(relay_wait) == 1
    assert relay_wait[0]["reason"].startswith(f"relay 127.0.0.1:{port} refused the connection")
    assert relay_wait[0]["until"] is not None
    assert status["counts"]["pending"] == 3
    assert status["eta_seconds"] is None


def test_status_json_has_the_documented_keys(run_cli: Run, relay: Relay, tmp_path: object) -> None:
    issue_id = prepare(run_cli, tmp_path)
    env = {"NEWSLETTER_SMTP_URL": relay.env_url}
    campaign = run_cli("send", str(issue_id), "--list", "weekly", "--json", env=env).json()

    status = run_cli("campaign", "status", str(campaign["campaign"]), "--json").json()

    assert set(status) == {
        "campaign",
        "issue",
        "status",
        "reason",
        "reply",
        "since",
        "held_domains",
        "throttled_domains",
        "waiting",
        "recipients",
        "counts",
        "rate_per_second",
        "eta_seconds",
        "bounces",
    }
    assert (status["status"], status["waiting"], status["eta_seconds"]) == ("sent", [], None)
    assert campaign["waiting"] == []


def test_campaign_ls_lists_campaigns_newest_first_and_filters_by_status(
    run_cli: Run, relay: Relay, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, tmp_path)
    env = {"NEWSLETTER_SMTP_URL": relay.env_url}
    run_cli("list", "create", "later")
    sent = run_cli("send", str(issue_id), "--list", "weekly", "--json", env=env).json()
    scheduled = run_cli(
        "send", str(issue_id), "--list", "later", "--at", "2099-01-01T08:00Z", "--json", env=env
    ).json()

    listed = run_cli("campaign", "ls", "--json").json()
    only_sent = run_cli("campaign", "ls", "--status", "sent", "--json").json()
    human = run_cli("campaign", "ls")

    assert [c["campaign"] for c in listed] == [scheduled["campaign"], sent["campaign"]]
    assert listed[1] == {
        **listed[1],
        "issue": issue_id,
        "audience": ["weekly"],
        "status": "sent",
        "recipients": 3,
        "sent": 3,
    }
    assert [c["campaign"] for c in only_sent] == [sent["campaign"]]
    assert "scheduled" in human.stdout


def test_possibly_sent_recipients_are_listed_and_resent_after_a_confirmation(
    run_cli: Run, committed_settings: Settings, relay: Relay, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, tmp_path)
    env = {"NEWSLETTER_SMTP_URL": relay.env_url}
    campaign = run_cli("send", str(issue_id), "--list", "weekly", "--json", env=env).json()
    campaign_id = campaign["campaign"]
    with session_scope(committed_settings) as session:  # as recovery leaves a dead worker's message
        session.execute(
            update(Delivery)
            .where(Delivery.id == 1)
            .values(status=DeliveryStatus.POSSIBLY_SENT, last_reply="worker died while sending")
        )

    listed = run_cli("campaign", "recipients", str(campaign_id), "--status", "possibly_sent")
    as_csv = run_cli("campaign", "recipients", str(campaign_id), "--csv")
    declined = run_cli("campaign", "resend", str(campaign_id), "--possibly-sent", stdin=b"n\n")
    accepted = run_cli(
        "campaign", "resend", str(campaign_id), "--possibly-sent", "--wait", env=env, stdin=b"y\n"
    )

    assert listed.stdout.splitlines() == [
        "p0@example.org  possibly_sent  attempts 1  (worker died while sending)"
    ]
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["email"], r["status"]) for r in rows] == [
        ("p0@example.org", "possibly_sent"),
        ("p1@example.org", "sent"),
        ("p2@example.org", "sent"),
    ]
    assert declined.exit_code == 2
    assert "1 recipients may have it already" in declined.stderr
    assert accepted.exit_code == 0, accepted.stderr
    assert "1 recipients queued again" in accepted.stderr
    assert relay.handler.copies() == {
        "p0@example.org": 2,  # the relay had it after all: the operator's call
        "p1@example.org": 1,
        "p2@example.org": 1,
    }


def test_after_a_cancel_resend_unsent_sends_the_rest_as_a_new_run(
    run_cli: Run, relay: Relay, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, tmp_path, people=4)
    port = free_port()
    # The lane waits one second for the relay to come back, not the default minute.
    down = {"NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{port}", "NEWSLETTER_RETRY_SCHEDULE": "1"}
    campaign_id = run_cli("send", str(issue_id), "--list", "weekly", "--json", env=down).json()[
        "campaign"
    ]
    cancelled = run_cli("campaign", "cancel", str(campaign_id), "--json").json()
    assert (cancelled["status"], cancelled["counts"]["pending"]) == ("cancelled", 4)
    assert run_cli("campaign", "resume", str(campaign_id)).exit_code == 2

    with running_relay(port=port) as back:
        resent = run_cli(
            "campaign", "resend", str(campaign_id), "--unsent", "--wait", "--json", env=down
        )

    assert resent.exit_code == 0, resent.stderr
    assert resent.json()["status"] == "sent"
    assert "4 to send" in resent.stderr
    assert back.handler.copies() == dict.fromkeys([f"p{n}@example.org" for n in range(4)], 1)


def test_resume_of_a_scheduled_campaign_starts_it_now(
    run_cli: Run, relay: Relay, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, tmp_path)
    env = {"NEWSLETTER_SMTP_URL": relay.env_url}
    scheduled = run_cli(
        "send", str(issue_id), "--list", "weekly", "--at", "2099-01-01T08:00Z", env=env
    )
    assert "started by `newsletter worker`" in scheduled.stderr

    resumed = run_cli("campaign", "resume", "1", "--wait", "--json", env=env)

    assert resumed.exit_code == 0, resumed.stderr
    assert "started now, 3 recipients" in resumed.stderr
    assert (resumed.json()["status"], resumed.json()["counts"]["sent"]) == ("sent", 3)
    assert sum(relay.handler.copies().values()) == 3


def test_resend_needs_exactly_one_of_its_kinds(run_cli: Run, tmp_path: object) -> None:
    prepare(run_cli, tmp_path)
    assert_one_line_error(run_cli("campaign", "resend", "1"), 2)


def test_send_wait_says_what_it_waits_for_and_goes_on_when_the_relay_is_back(
    run_cli: Run, committed_settings: Settings, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, tmp_path)
    port = free_port()
    env = {"NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{port}", "NEWSLETTER_RETRY_SCHEDULE": "1"}
    relays: list[Relay] = []
    done = threading.Event()

    def bring_the_relay_back_once_a_lane_waits() -> None:
        while not done.is_set():
            with session_scope(committed_settings) as session:
                if (
                    session.scalar(
                        select(SendLane.lane).where(SendLane.relay_retry_at.is_not(None))
                    )
                    is not None
                ):
                    break
            time.sleep(0.05)
        with running_relay(port=port) as relay:
            relays.append(relay)
            done.wait(timeout=120)

    helper = threading.Thread(target=bring_the_relay_back_once_a_lane_waits)
    helper.start()
    try:
        result = run_cli("send", str(issue_id), "--list", "weekly", "--wait", "--json", env=env)
    finally:
        done.set()
        helper.join()

    assert result.exit_code == 0, result.stderr
    assert f"waiting: relay 127.0.0.1:{port} refused the connection; retrying at " in result.stderr
    assert result.json()["sent"] == 3
    assert sum(relays[0].handler.copies().values()) == 3
