"""The sending commands' contract: names, JSON shapes and exit codes."""

from __future__ import annotations

import pytest

from tests.conftest import SAMPLE_BULLETIN, Run, assert_one_line_error
from tests.delivery.relay import Relay, running_relay


@pytest.fixture
def relay() -> Relay:
    with running_relay() as running:
        yield running  # type: ignore[misc]


def prepare(run_cli: Run, relay: Relay, tmp_path: object) -> int:
    people = f"{tmp_path}/people.csv"
    with open(people, "w", encoding="utf-8") as f:
        f.write("email,name\nann@example.org,Ann\nbob@example.org,Bob\n")
    run_cli("import-bulletin", str(SAMPLE_BULLETIN))
    issue_id: int = run_cli("issue", "create", "--subject", "Weekly", "--json").json()["id"]
    run_cli("list", "create", "weekly")
    run_cli("subscribers", "import", people, "--list", "weekly")
    return issue_id


def test_send_prints_the_documented_json(run_cli: Run, relay: Relay, tmp_path: object) -> None:
    issue_id = prepare(run_cli, relay, tmp_path)

    result = run_cli(
        "send",
        str(issue_id),
        "--list",
        "weekly",
        "--wait",
        "--json",
        env={"NEWSLETTER_SMTP_URL": relay.env_url},
    )

    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert {
        k: document[k]
        for k in ("status", "recipients", "sent", "deferred", "failed", "bounced", "skipped")
    } == {
        "status": "sent",
        "recipients": 2,
        "sent": 2,
        "deferred": 0,
        "failed": 0,
        "bounced": 0,
        "skipped": 0,
    }
    assert isinstance(document["campaign"], int)
    assert "campaign 1: 2 recipients" in result.stderr
    assert relay.handler.copies() == {"ann@example.org": 1, "bob@example.org": 1}

    status = run_cli("campaign", "status", str(document["campaign"]), "--json").json()
    assert status["counts"]["sent"] == 2
    assert status["bounces"]["hard_bounces"] == 0
    assert (status["status"], status["reason"], status["reply"], status["held_domains"]) == (
        "sent",
        None,
        None,
        [],
    )
    assert status["since"] is not None  # when it became "sent"


def test_pause_resume_cancel_and_resend_follow_the_lifecycle(
    run_cli: Run, relay: Relay, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, relay, tmp_path)
    env = {"NEWSLETTER_SMTP_URL": relay.env_url}
    campaign = run_cli(
        "send",
        str(issue_id),
        "--list",
        "weekly",
        "--at",
        "2099-01-01T08:00+06:00",
        "--json",
        env=env,
    ).json()["campaign"]

    assert run_cli("campaign", "status", str(campaign), "--json").json()["status"] == "scheduled"
    assert run_cli("campaign", "pause", str(campaign)).exit_code == 2  # not sending yet
    cancelled = run_cli("campaign", "cancel", str(campaign), "--json")
    assert cancelled.json()["status"] == "cancelled"
    assert run_cli("campaign", "resume", str(campaign)).exit_code == 2
    assert relay.handler.copies() == {}


def test_sending_an_issue_that_fails_its_check_is_refused(
    run_cli: Run, tmp_path: object, relay: Relay
) -> None:
    prepare(run_cli, relay, tmp_path)
    late = run_cli("issue", "create", "--subject", "Late", "--date", "2026-06-01", "--json").json()[
        "id"
    ]

    result = run_cli(
        "send", str(late), "--list", "weekly", env={"NEWSLETTER_SMTP_URL": relay.env_url}
    )

    assert result.exit_code == 2
    assert "pre-send check failed" in result.stderr
    assert relay.handler.copies() == {}


def test_test_send_mails_the_given_addresses_only(
    run_cli: Run, relay: Relay, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, relay, tmp_path)

    result = run_cli(
        "test-send",
        str(issue_id),
        "--to",
        "editor@example.org",
        "--json",
        env={"NEWSLETTER_SMTP_URL": relay.env_url},
    )

    assert result.exit_code == 0, result.stderr
    assert result.json()["results"][0]["result"].startswith("accepted")
    assert relay.handler.copies() == {"editor@example.org": 1}
    assert relay.handler.accepted[0].message()["Subject"].startswith("[TEST] ")


def test_test_send_prints_the_documented_json_and_asks_for_a_list_among_several(
    run_cli: Run, relay: Relay, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, relay, tmp_path)
    env = {"NEWSLETTER_SMTP_URL": relay.env_url}
    run_cli("list", "create", "alerts")

    unsure = run_cli("test-send", str(issue_id), "--to", "ed@example.org", env=env)
    chosen = run_cli(
        "test-send", str(issue_id), "--to", "ed@example.org", "--list", "alerts", "--json", env=env
    )

    assert "give --list NAME" in assert_one_line_error(unsure, 2)
    assert chosen.exit_code == 0, chosen.stderr
    assert chosen.json() == {
        "issue": issue_id,
        "list": "alerts",
        "dkim": False,
        "results": [{"to": "ed@example.org", "result": "accepted: 2.0.0 Ok: queued as Q1"}],
    }
    assert relay.handler.copies() == {"ed@example.org": 1}


def test_send_to_a_segment_mails_only_its_matches(
    run_cli: Run, relay: Relay, tmp_path: object
) -> None:
    people = f"{tmp_path}/people.csv"
    with open(people, "w", encoding="utf-8") as f:
        f.write(
            "email,name,city\nann@example.org,Ann,Almaty\nbob@example.org,Bob,Bishkek\n"
            "cem@example.org,Cem,Almaty\n"
        )
    run_cli("import-bulletin", str(SAMPLE_BULLETIN))
    issue_id = run_cli("issue", "create", "--subject", "Weekly", "--json").json()["id"]
    run_cli("list", "create", "weekly")
    run_cli("subscribers", "import", people, "--list", "weekly")
    run_cli(
        "segment", "create", "almaty", "--list", "weekly", "--where", "attributes.city = 'Almaty'"
    )

    result = run_cli(
        "send",
        str(issue_id),
        "--segment",
        "almaty",
        "--wait",
        "--json",
        env={"NEWSLETTER_SMTP_URL": relay.env_url},
    )

    assert result.exit_code == 0, result.stderr
    assert result.json()["recipients"] == 2
    assert relay.handler.copies() == {"ann@example.org": 1, "cem@example.org": 1}
    assert run_cli("send", str(issue_id), "--segment", "nowhere").exit_code == 2
    assert run_cli("send", str(issue_id)).exit_code == 2


def test_a_second_send_is_refused_in_one_line_and_again_asks_how_many_get_it_twice(
    run_cli: Run, relay: Relay, tmp_path: object
) -> None:
    issue_id = prepare(run_cli, relay, tmp_path)
    env = {"NEWSLETTER_SMTP_URL": relay.env_url}
    first = run_cli("send", str(issue_id), "--list", "weekly", "--wait", "--json", env=env)
    campaign = first.json()["campaign"]

    refused = run_cli("send", str(issue_id), "--list", "weekly", env=env)
    line = assert_one_line_error(refused, 2)
    assert line == (
        f"error: issue {issue_id} was sent to this audience by campaign {campaign} "
        "(sent: 2 sent); `send --again` sends it once more"
    )
    declined = run_cli("send", str(issue_id), "--list", "weekly", "--again", stdin=b"n\n")
    assert declined.exit_code == 2
    assert "2 people would receive it a second time" in declined.stderr
    assert relay.handler.copies() == {"ann@example.org": 1, "bob@example.org": 1}

    again = run_cli(
        "send", str(issue_id), "--list", "weekly", "--again", "--wait", env=env, stdin=b"y\n"
    )
    assert again.exit_code == 0, again.stderr
    scripted = run_cli(
        "send", str(issue_id), "--list", "weekly", "--again", "--yes", "--wait", env=env
    )
    assert scripted.exit_code == 0, scripted.stderr
    assert relay.handler.copies() == {"ann@example.org": 3, "bob@example.org": 3}


def test_a_list_name_with_a_control_character_is_refused_at_creation(run_cli: Run) -> None:
    result = run_cli("list", "create", "ctl\x01list")

    assert assert_one_line_error(result, 2) == "error: the list name contains a control character"
    assert run_cli("list", "ls", "--json").json() == []
