"""Lists, export round trips, GDPR access and erasure."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.errors import AlreadyExists, InvalidInput, NotFound
from newsletter.subscribers.consent import subscribe, unsubscribe
from newsletter.subscribers.models import (
    ConsentEvent,
    ConsentSource,
    MailingList,
    Segment,
    Subscriber,
    SubscriberStatus,
    Subscription,
    Suppression,
)
from newsletter.subscribers.segments import create_segment
from newsletter.subscribers.service import (
    MAX_NAME_CHARS,
    create_list,
    erase_subscriber,
    export_list,
    find_subscriber,
    get_list,
    list_lists,
    subscriber_data,
)
from tests.conftest import TEST_SECRET, wait_until_blocked_on_a_lock
from tests.subscribers.conftest import NOW, ImportText


def exported(session: Session, mailing_list: MailingList) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(export_list(session, mailing_list.id))
    return buffer.getvalue()


def test_a_list_name_is_unique(session: Session, weekly: MailingList) -> None:
    with pytest.raises(InvalidInput):
        create_list(session, "weekly")


def test_an_unknown_list_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        get_list(session, "nope")


def test_lists_are_shown_with_their_subscription_counts(
    session: Session, weekly: MailingList, import_text: ImportText
) -> None:
    import_text("email\na@example.com\nb@example.com\n")

    (summary,) = list_lists(session)

    assert summary.as_document() == {
        "name": "weekly",
        "description": "",
        "double_opt_in": False,
        "subscriptions": {"unconfirmed": 0, "confirmed": 2, "unsubscribed": 0},
    }


def test_an_export_imports_back_into_the_same_list_contents(
    session: Session, weekly: MailingList, import_text: ImportText
) -> None:
    import_text(
        'email,name,city,age\nA@example.com,"Doe, A ""x""",Almaty,31\nb@example.com,B,,\n'
        "c@example.com,Ć,Osh,40\n"
    )
    unsubscribe(
        session,
        find_subscriber(session, "c@example.com").id,
        list_id=weekly.id,
        source=ConsentSource.ADMIN,
        now=NOW,
    )
    first = exported(session, weekly)
    copy = create_list(session, "copy")

    counts = import_text(first, mailing_list=copy)

    assert counts.errors == ()
    assert exported(session, copy) == first
    assert (
        first.splitlines()[1]
        == 'a@example.com,"Doe, A ""x""",active,confirmed,"{""age"": ""31"", ""city"": ""Almaty""}"'
    )


def test_an_exported_file_keeps_suppressions_when_imported_into_a_new_database(
    session: Session, weekly: MailingList, import_text: ImportText
) -> None:
    text = "email,name,status,subscription_status,attributes\nb@example.com,,bounced,confirmed,\n"
    import_text(text)

    assert find_subscriber(session, "b@example.com").status is SubscriberStatus.BOUNCED


def test_access_export_holds_every_record_about_the_subscriber(
    session: Session, weekly: MailingList, import_text: ImportText
) -> None:
    import_text("email,name,city\na@example.com,A,Almaty\n")

    data = subscriber_data(session, "A@example.com")

    assert data["email"] == "a@example.com"
    assert data["attributes"] == {"city": "Almaty"}
    assert [s["list"] for s in data["subscriptions"]] == ["weekly"]
    consent = data["subscriptions"][0]["consent"]
    assert (consent["source"], consent["at"], consent["ip"]) == ("import", NOW.isoformat(), None)
    assert consent["import"]["source"] == "import"
    assert data["consent_events"] == []  # an import's consent is on the subscription


def test_access_export_holds_the_consent_log(session: Session, weekly: MailingList) -> None:
    subscribe(
        session,
        TEST_SECRET,
        weekly.id,
        "a@example.com",
        source=ConsentSource.FORM,
        now=NOW,
        ip="192.0.2.1",
    )
    unsubscribe(
        session,
        find_subscriber(session, "a@example.com").id,
        list_id=weekly.id,
        source=ConsentSource.EMAIL,
        now=NOW,
    )

    data = subscriber_data(session, "a@example.com")

    consent = data["subscriptions"][0]["consent"]
    assert (consent["source"], consent["ip"], consent["import"]) == ("form", "192.0.2.1", None)
    assert [(e["action"], e["source"], e["list"]) for e in data["consent_events"]] == [
        ("subscribe", "form", "weekly"),
        ("unsubscribe", "email", "weekly"),
    ]


def test_erasure_leaves_no_plaintext_address_in_any_table(
    session: Session, weekly: MailingList, import_text: ImportText
) -> None:
    import_text("email,name\nerase.me@example.com,Erase Me\n")

    erase_subscriber(session, TEST_SECRET, "Erase.Me@example.com")

    for model in (Subscriber, Subscription, ConsentEvent):
        assert session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
    (suppression,) = session.scalars(sa.select(Suppression))
    assert "erase" not in suppression.email_hash
    with pytest.raises(NotFound):
        find_subscriber(session, "erase.me@example.com")


@pytest.mark.parametrize(
    ("table", "create"),
    [
        ("mailing_lists", lambda s, list_id: create_list(s, "weekly")),
        ("segments", lambda s, list_id: create_segment(s, "kz", list_id, "name = 'x'")),
    ],
    ids=["list", "segment"],
)
def test_a_name_a_concurrent_create_takes_first_is_already_exists_not_a_crash(
    postgres_settings: Settings, table: str, create: Callable[[Session, int], object]
) -> None:
    with session_scope(postgres_settings) as session:
        list_id = create_list(session, "base").id
    outcome: list[BaseException] = []

    def second_command() -> None:
        try:
            with session_scope(postgres_settings) as session:
                create(session, list_id)  # its check sees nothing; its INSERT waits
        except BaseException as exc:
            outcome.append(exc)

    with session_scope(postgres_settings) as first:
        create(first, list_id)  # inserted, not committed yet
        racer = threading.Thread(target=second_command)
        racer.start()
        wait_until_blocked_on_a_lock(postgres_settings.database_url, f"INSERT INTO {table}")
    racer.join()

    (error,) = outcome
    assert isinstance(error, AlreadyExists)
    assert "exists already" in str(error)
    assert isinstance(error.__cause__, sa.exc.IntegrityError)


@pytest.mark.parametrize(
    ("name", "description", "message"),
    [
        ("w" * 201, "", "at most 200 characters"),
        ("week\x00ly", "", "control character"),
        ("weekly", "the\x00bulletin", "description contains a control character"),
    ],
)
def test_a_list_no_database_stores_alike_is_refused(
    session: Session, name: str, description: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        create_list(session, name, description=description)

    assert list_lists(session) == []


def test_a_description_may_hold_line_breaks(session: Session) -> None:
    assert create_list(session, "weekly", description="one\ntwo").description == "one\ntwo"


def test_the_name_limit_is_the_width_of_the_name_columns() -> None:
    for table in (MailingList.__table__, Segment.__table__):
        assert table.c.name.type.length == MAX_NAME_CHARS
