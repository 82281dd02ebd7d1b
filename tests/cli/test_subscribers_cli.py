"""The list, subscribers, subscriber and segment commands: their JSON shapes and errors."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.errors import StorageError
from newsletter.subscribers.importer import pipeline
from newsletter.subscribers.importjob import ImportJobReport
from newsletter.subscribers.models import ImportJob, ImportJobStatus
from tests.conftest import assert_one_line_error

SAMPLE = Path(__file__).resolve().parents[2] / "newsletter" / "samples" / "subscribers.csv"


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_bytes(
        b"email,name,city\n"
        b'Ann@Example.com,"Doe, Ann",Almaty\n'
        b"ann@example.com,Ann again,\n"
        b"bob@example.com,Bob,Bishkek\n"
        b"broken@,Broken,\n"
    )
    return path


def test_list_create_and_ls(run_cli) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("list", "create", "weekly", "--description", "The bulletin").exit_code == 0
    assert run_cli("list", "create", "alerts", "--double-opt-in", "--json").json() == {
        "name": "alerts",
        "double_opt_in": True,
    }

    listed = run_cli("list", "ls", "--json")

    assert listed.exit_code == 0
    assert [(row["name"], row["double_opt_in"]) for row in listed.json()] == [
        ("alerts", True),
        ("weekly", False),
    ]


def test_import_prints_the_counts_document(run_cli, people: Path) -> None:  # type: ignore[no-untyped-def]
    run_cli("list", "create", "weekly")

    result = run_cli("subscribers", "import", str(people), "--list", "weekly", "--json")

    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert isinstance(document.pop("job"), int)
    assert document == {
        "created": 2,
        "updated": 0,
        "unchanged": 1,
        "error_count": 1,
        "errors": [{"line": 5, "error": "There must be something after the @-sign."}],
        "warning_count": 0,
        "warnings": [],
    }


def test_an_import_is_a_job_whose_status_any_process_can_read(run_cli, people: Path) -> None:  # type: ignore[no-untyped-def]
    run_cli("list", "create", "weekly")
    job = run_cli("subscribers", "import", str(people), "--list", "weekly", "--json").json()["job"]

    status = run_cli("subscribers", "import-status", str(job), "--json")

    assert status.exit_code == 0, status.stderr
    document = status.json()
    assert set(document) == {
        "job", "status", "list", "file", "bytes", "rows_done", "created", "updated",
        "unchanged", "error_count", "errors", "warning_count", "warnings", "error",
        "queued_at", "started_at", "finished_at", "updated_at",
    }  # fmt: skip
    assert {k: document[k] for k in ("job", "status", "list", "file", "bytes", "error")} == {
        "job": job,
        "status": "done",
        "list": "weekly",
        "file": "people.csv",
        "bytes": people.stat().st_size,
        "error": None,
    }
    assert (document["rows_done"], document["created"], document["error_count"]) == (4, 2, 1)
    assert document["errors"] == [{"line": 5, "error": "There must be something after the @-sign."}]
    human = run_cli("subscribers", "import-status", str(job)).stdout
    assert f"import job {job} (people.csv into weekly): done" in human
    assert "line 5: There must be something after the @-sign." in human


NEEDS_SMTPUTF8 = "has a non-ASCII local part: only a relay that offers SMTPUTF8 can deliver it"


@pytest.fixture
def international(tmp_path: Path) -> Path:
    """Valid addresses all of them but line 7; only line 3's needs a relay with SMTPUTF8."""
    path = tmp_path / "international.csv"
    path.write_text(
        "email,name\n"
        "ann@example.com,Ann\n"  # 2
        "Üser@example.com,Üser\n"  # 3: a non-ASCII local part (RFC 6531)
        "v8@пример.рф,V8\n"  # 4: an IDN domain, IDNA-encoded at send: every relay takes it
        "zoe@example.com,Zoë\n"  # 5: a non-ASCII name is no matter
        "bob@example.com,Bob\n"  # 6
        "broken@,Broken\n",  # 7
        encoding="utf-8",
    )
    return path


def test_an_address_only_an_smtputf8_relay_can_deliver_is_imported_with_a_warning(  # type: ignore[no-untyped-def]
    run_cli, international: Path
) -> None:
    run_cli("list", "create", "weekly")

    result = run_cli("subscribers", "import", str(international), "--list", "weekly", "--json")

    assert result.exit_code == 0, result.stderr
    document = result.json()
    job = document.pop("job")
    assert document == {
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "error_count": 1,
        "errors": [{"line": 7, "error": "There must be something after the @-sign."}],
        "warning_count": 1,
        "warnings": [{"line": 3, "warning": f"üser@example.com {NEEDS_SMTPUTF8}"}],
    }
    for email in ("üser@example.com", "v8@пример.рф", "ann@example.com"):
        shown = run_cli("subscriber", "show", email, "--json")
        assert shown.json()["lists"] == {"weekly": "confirmed"}, email
    status = run_cli("subscribers", "import-status", str(job), "--json").json()
    assert (status["warning_count"], status["warnings"]) == (1, document["warnings"])
    assert (status["error_count"], status["errors"]) == (1, document["errors"])


def test_the_human_report_prints_the_warnings_after_the_errors(  # type: ignore[no-untyped-def]
    run_cli, international: Path
) -> None:
    run_cli("list", "create", "weekly")
    job = run_cli(
        "subscribers", "import", str(international), "--list", "weekly", "--json"
    ).json()["job"]

    again = run_cli("subscribers", "import", str(international), "--list", "weekly")
    status = run_cli("subscribers", "import-status", str(job))

    assert again.exit_code == 0, again.stderr
    # Still warned on a re-import: the address is still one that not every relay can take.
    assert again.stdout.splitlines() == [
        "created 0, updated 0, unchanged 5, errors 1, warnings 1",
        "line 7: There must be something after the @-sign.",
        f"warning: line 3: üser@example.com {NEEDS_SMTPUTF8}",
    ]
    assert status.stdout.splitlines()[1:] == [
        "created 5, updated 0, unchanged 0, errors 1, warnings 1",
        "line 7: There must be something after the @-sign.",
        f"warning: line 3: üser@example.com {NEEDS_SMTPUTF8}",
    ]


def test_an_import_shows_its_progress_on_stderr(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big.csv"
    big.write_text("email\n" + "".join(f"user{n}@example.com\n" for n in range(12_000)))
    run_cli("list", "create", "weekly")

    result = run_cli("subscribers", "import", str(big), "--list", "weekly")

    assert result.exit_code == 0, result.stderr
    assert "10,000 rows imported" in result.stderr
    assert "12,000 rows imported" in result.stderr
    assert "created 12000, updated 0, unchanged 0, errors 0" in result.stdout


def test_a_failed_import_keeps_its_reason_for_import_status(  # type: ignore[no-untyped-def]
    run_cli, people: Path, committed_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_cli("list", "create", "weekly")

    def full_disk(*args: object, **kwargs: object) -> None:
        raise StorageError("disk full")

    monkeypatch.setattr(pipeline, "import_batch", full_disk)

    failed = run_cli("subscribers", "import", str(people), "--list", "weekly")
    with session_scope(committed_settings) as session:
        job = str(session.scalars(sa.select(ImportJob.id)).one())
    status = run_cli("subscribers", "import-status", job, "--json")
    waited = run_cli("subscribers", "import-status", job, "--wait")

    assert assert_one_line_error(failed, 1) == "error: StorageError: disk full"
    assert status.exit_code == 0
    assert (status.json()["status"], status.json()["error"]) == (
        "failed",
        "StorageError: disk full",
    )
    assert assert_one_line_error(waited, 1) == (
        f"error: ImportFailed: import job {job} failed: StorageError: disk full"
    )


def test_a_waiting_import_says_once_that_its_job_waits_or_went_quiet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from newsletter.cli.subscriber_import import STALE_SECONDS, _FollowNotes

    now = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    notes = _FollowNotes(7)

    for status, quiet in [("queued", 0), ("queued", 0), ("running", 1), ("running", 1)]:
        notes.show(job_status(status, updated_at=now - dt.timedelta(seconds=quiet)), now)
    for _ in range(2):
        notes.show(job_status("running", now - dt.timedelta(seconds=STALE_SECONDS + 1)), now)

    said = capsys.readouterr().err.splitlines()
    assert said == [
        "import job 7 queued, waiting for a worker (Ctrl-C stops waiting, not the import)",
        f"import job 7: no progress for {STALE_SECONDS + 1} s; if its worker died, the broker "
        "gives the job to another one after its visibility timeout, and the import starts "
        "again (nothing is added twice)",
    ]


def job_status(status: str, updated_at: dt.datetime) -> ImportJobReport:
    return ImportJobReport(
        job_id=7, status=ImportJobStatus(status), list_name="weekly", file_name="people.csv",
        size_bytes=10, rows_done=0, created=0, updated=0, unchanged=0, error_count=0,
        errors=(), warning_count=0, warnings=(), failure=None, error=None,
        queued_at=updated_at, started_at=None, finished_at=None, updated_at=updated_at,
    )  # fmt: skip


def test_no_wait_needs_a_broker(run_cli, people: Path) -> None:  # type: ignore[no-untyped-def]
    run_cli("list", "create", "weekly")

    result = run_cli("subscribers", "import", str(people), "--list", "weekly", "--no-wait")

    assert "NEWSLETTER_BROKER_URL" in assert_one_line_error(result, 2)
    assert run_cli("subscriber", "show", "bob@example.com").exit_code == 2  # nothing imported


def test_the_sample_file_imports_with_its_bad_rows_reported(run_cli) -> None:  # type: ignore[no-untyped-def]
    run_cli("list", "create", "weekly")

    document = run_cli("subscribers", "import", str(SAMPLE), "--list", "weekly", "--json").json()

    assert document["created"] > 0
    assert document["error_count"] == len(document["errors"]) > 0


def test_subscriber_show_unsubscribe_export_and_delete(run_cli, people: Path) -> None:  # type: ignore[no-untyped-def]
    run_cli("list", "create", "weekly")
    run_cli("list", "create", "alerts")
    run_cli("subscribers", "import", str(people), "--list", "weekly")
    run_cli("subscribers", "import", str(people), "--list", "alerts")

    assert run_cli("subscriber", "show", "ANN@example.com", "--json").json() == {
        "email": "ann@example.com",
        "status": "active",
        "lists": {"alerts": "confirmed", "weekly": "confirmed"},
    }
    assert (
        run_cli("subscriber", "unsubscribe", "ann@example.com", "--list", "weekly").exit_code == 0
    )
    assert run_cli("subscriber", "show", "ann@example.com", "--json").json()["lists"] == {
        "alerts": "confirmed",
        "weekly": "unsubscribed",
    }
    again = run_cli("subscriber", "unsubscribe", "ann@example.com", "--list", "weekly", "--json")
    assert again.json() == {"email": "ann@example.com", "list": "weekly", "changed": False}

    data = json.loads(run_cli("subscriber", "export", "ann@example.com").stdout)
    # The consent of each imported subscription is on it, with the import run that proves it;
    # the later change (the unsubscribe) is in the consent log.
    digest = hashlib.sha256(people.read_bytes()).hexdigest()
    for subscription in data["subscriptions"]:
        consent = subscription["consent"]
        assert (consent["source"], consent["ip"]) == ("import", None)
        assert (consent["import"]["file_name"], consent["import"]["sha256"]) == (
            "people.csv",
            digest,
        )
    assert [e["action"] for e in data["consent_events"]] == ["unsubscribe"]

    assert run_cli("subscriber", "delete", "ann@example.com").exit_code == 0
    assert run_cli("subscriber", "show", "ann@example.com").exit_code == 2
    reimport = run_cli("subscribers", "import", str(people), "--list", "weekly", "--json").json()
    assert reimport["errors"][0]["error"] == "address was erased at the subscriber's request"


def test_export_round_trips_through_import(run_cli, people: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_cli("list", "create", "weekly")
    run_cli("list", "create", "copy")
    run_cli("subscribers", "import", str(people), "--list", "weekly")
    out = tmp_path / "weekly.csv"

    assert run_cli("subscribers", "export", "--list", "weekly", "--out", str(out)).exit_code == 0
    assert (
        run_cli("subscribers", "import", str(out), "--list", "copy", "--json").json()["errors"]
        == []
    )
    copied = run_cli("subscribers", "export", "--list", "copy").stdout

    assert copied == out.read_text(encoding="utf-8")
    assert copied.splitlines()[0] == "email,name,status,subscription_status,attributes"


def test_segment_create_and_count(run_cli, people: Path) -> None:  # type: ignore[no-untyped-def]
    run_cli("list", "create", "weekly")
    run_cli("subscribers", "import", str(people), "--list", "weekly")

    created = run_cli(
        "segment",
        "create",
        "almaty",
        "--list",
        "weekly",
        "--where",
        "attributes.city = 'Almaty'",
        "--json",
    )

    assert created.json() == {"name": "almaty", "list": "weekly", "count": 1}
    assert run_cli("segment", "count", "almaty", "--json").json() == {"name": "almaty", "count": 1}


@pytest.mark.parametrize(
    "args",
    [
        ("subscribers", "import", "missing.csv", "--list", "weekly", "--json"),
        ("subscribers", "import", "{people}", "--list", "nope", "--json"),
        ("segment", "create", "bad", "--list", "weekly", "--where", "city = ", "--json"),
        ("subscriber", "show", "nobody@example.com", "--json"),
        ("subscribers", "import-status", "99", "--json"),
    ],
)
def test_user_mistakes_are_one_json_line_and_exit_code_2(  # type: ignore[no-untyped-def]
    run_cli, people: Path, args: tuple[str, ...]
) -> None:
    run_cli("list", "create", "weekly")

    result = run_cli(*(a.replace("{people}", str(people)) for a in args))

    assert result.exit_code == 2
    assert set(json.loads(result.stderr)) == {"error"}


def test_an_export_is_safe_in_a_spreadsheet_and_imports_back(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hostile = tmp_path / "hostile.csv"
    hostile.write_text(
        "email,name,note\n"
        'ann@example.com,"=HYPERLINK(""http://evil.example"",""click"")",@SUM(1+1)\n'
        "-bob@example.com,+cmd|' /C calc'!A0,-2+3\n",
        encoding="utf-8",
    )
    run_cli("list", "create", "weekly")
    run_cli("list", "create", "copy")
    run_cli("subscribers", "import", str(hostile), "--list", "weekly")
    out = tmp_path / "weekly.csv"

    assert run_cli("subscribers", "export", "--list", "weekly", "--out", str(out)).exit_code == 0
    cells = [cell for row in csv.reader(out.open(encoding="utf-8")) for cell in row]
    imported = run_cli("subscribers", "import", str(out), "--list", "copy", "--json").json()
    copied = run_cli("subscribers", "export", "--list", "copy").stdout

    assert all(cell[:1] not in "=+-@\t\r" for cell in cells)
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in cells
    assert "'-bob@example.com" in cells
    assert imported["errors"] == []
    assert copied == out.read_text(encoding="utf-8")
    assert json.loads(run_cli("subscriber", "export", "--", "-bob@example.com").stdout)["name"] == (
        "+cmd|' /C calc'!A0"
    )


def test_an_import_states_the_legal_basis_of_its_rows(run_cli, people: Path) -> None:  # type: ignore[no-untyped-def]
    run_cli("list", "create", "customers")
    run_cli("list", "create", "weekly")
    run_cli("subscribers", "import", str(people), "--list", "weekly")

    imported = run_cli(
        "subscribers",
        "import",
        str(people),
        "--list",
        "customers",
        "--legal-basis",
        "legitimate_interest",
    )
    refused = run_cli(
        "subscribers", "import", str(people), "--list", "weekly", "--legal-basis", "whim"
    )

    assert imported.exit_code == 0
    assert refused.exit_code == 2
    data = json.loads(run_cli("subscriber", "export", "bob@example.com").stdout)
    bases = {s["list"]: s["consent"]["legal_basis"] for s in data["subscriptions"]}
    assert bases == {"customers": "legitimate_interest", "weekly": "consent"}
    runs = {s["list"]: s["consent"]["import"]["legal_basis"] for s in data["subscriptions"]}
    assert runs == bases


def test_delete_removes_the_consent_record_and_queued_mail(  # type: ignore[no-untyped-def]
    run_cli, committed_settings
) -> None:
    from sqlalchemy import func, select

    from newsletter.db import session_scope, utcnow
    from newsletter.delivery import transactional
    from newsletter.delivery.outbox import OutboxMessage
    from newsletter.subscribers.consent import Evidence
    from newsletter.subscribers.models import ConsentEvent, MailingList
    from newsletter.subscribers.signup import sign_up

    run_cli("list", "create", "alerts", "--double-opt-in")
    with session_scope(committed_settings) as session:
        alerts = session.scalars(select(MailingList)).one()
        result = sign_up(
            session,
            committed_settings.secret_key,
            alerts,
            "eve@example.org",
            evidence=Evidence(
                ip="192.0.2.4", user_agent="UA", form_url="https://x/subscribe/alerts"
            ),
            now=utcnow(),
        )
        assert result.subscriber_id is not None
        transactional.queue_confirmation(session, result.subscriber_id, alerts.id, utcnow())
    events = json.loads(run_cli("subscriber", "export", "eve@example.org").stdout)["consent_events"]
    assert events[0]["form_url"] == "https://x/subscribe/alerts"
    assert events[0]["consent_text"]["text"].startswith("I want to receive {list}")

    # Unsubscribing keeps the evidence; erasure removes it.
    run_cli("subscriber", "unsubscribe", "eve@example.org")
    assert (
        len(json.loads(run_cli("subscriber", "export", "eve@example.org").stdout)["consent_events"])
        == 2
    )
    assert run_cli("subscriber", "delete", "eve@example.org").exit_code == 0

    with session_scope(committed_settings) as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
