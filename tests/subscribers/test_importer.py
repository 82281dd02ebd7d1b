"""Importing subscribers: dedupe, bad rows, suppression, erasure, idempotence, consent."""

from __future__ import annotations

import io

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.subscribers.address import erasure_hash, erasure_hasher
from newsletter.subscribers.csvfile import read_csv
from newsletter.subscribers.importer import (
    ERASED_ERROR,
    ImportMode,
    ImportOptions,
    import_batch,
    prepare_batch,
)
from newsletter.subscribers.models import (
    ConsentEvent,
    ConsentSource,
    MailingList,
    Subscriber,
    SubscriberImport,
    SubscriberStatus,
    SubscriberStatusChange,
    Subscription,
    SubscriptionStatus,
)
from newsletter.subscribers.service import erase_subscriber, mailable_subscribers, subscriber_lists
from newsletter.subscribers.statuses import StatusChangeSource
from tests.conftest import TEST_SECRET
from tests.subscribers.conftest import NOW, ImportText


def consent_proofs(session: Session) -> list[tuple[object, ...]]:
    rows = session.execute(
        sa.select(
            Subscription.subscriber_id,
            Subscription.consent_source,
            Subscription.consented_at,
            Subscription.import_id,
        ).order_by(Subscription.subscriber_id)
    )
    return [tuple(row) for row in rows]


def emails(session: Session) -> list[str]:
    return list(session.scalars(sa.select(Subscriber.email).order_by(Subscriber.email)))


def subscriber(session: Session, email: str) -> Subscriber:
    found = session.scalar(sa.select(Subscriber).where(Subscriber.email == email))
    assert found is not None
    return found


def test_addresses_differing_in_case_are_one_subscriber_within_a_file(
    session: Session, import_text: ImportText
) -> None:
    counts = import_text("email,name\nAnn@Example.com,Ann\nann@example.com,Ann again\n")

    assert (counts.created, counts.unchanged, counts.errors) == (1, 1, ())
    assert emails(session) == ["ann@example.com"]
    assert subscriber(session, "ann@example.com").name == "Ann"


def test_addresses_differing_in_case_are_one_subscriber_against_the_database(
    session: Session, import_text: ImportText
) -> None:
    import_text("email\nann@example.com\n")

    counts = import_text("email\nANN@EXAMPLE.COM\n")

    assert (counts.created, counts.updated, counts.unchanged) == (0, 0, 1)
    assert emails(session) == ["ann@example.com"]


def test_bad_rows_are_reported_and_the_rest_is_imported(
    session: Session, import_text: ImportText
) -> None:
    data = (
        b"email,name\n"
        b"one@example.com,One\n"
        b",Nobody\n"
        b"bad@@example.com,Bad\n"
        b'evil@example.com,"Eve\r\nBcc: all@example.com"\n'
        b"latin@example.com,Jos\xe9\n"
        b"ragged@example.com,R,extra\n"
        b"two@example.com,Two\n"
    )

    counts = import_text(data)

    assert counts.created == 2
    assert [e.line for e in counts.errors] == [3, 4, 5, 7, 8]
    assert emails(session) == ["one@example.com", "two@example.com"]


def test_importing_the_same_file_again_changes_nothing(
    session: Session, import_text: ImportText
) -> None:
    text = "email,name,city\na@example.com,A,Almaty\nb@example.com,B,Bishkek\n"
    import_text(text)
    proofs = consent_proofs(session)

    counts = import_text(text)

    assert (counts.created, counts.updated, counts.unchanged) == (0, 0, 2)
    assert consent_proofs(session) == proofs
    assert len(proofs) == 2
    assert session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent)) == 0


def test_without_upsert_known_subscribers_keep_their_name(
    session: Session, import_text: ImportText
) -> None:
    import_text("email,name\na@example.com,Original\n")

    counts = import_text("email,name\na@example.com,Changed\n")

    assert counts.unchanged == 1
    assert subscriber(session, "a@example.com").name == "Original"


def test_upsert_updates_name_and_attributes(session: Session, import_text: ImportText) -> None:
    import_text("email,name,city\na@example.com,Original,Almaty\n")

    counts = import_text("email,name,city\na@example.com,Changed,Osh\n", upsert=True)

    assert counts.updated == 1
    found = subscriber(session, "a@example.com")
    session.refresh(found)
    assert (found.name, found.attributes) == ("Changed", {"city": "Osh"})


def test_a_known_subscriber_imported_into_another_list_is_updated(
    session: Session, import_text: ImportText, confirmed_only: MailingList
) -> None:
    import_text("email\na@example.com\n")

    counts = import_text("email\na@example.com\n", mailing_list=confirmed_only)

    assert counts.updated == 1
    assert subscriber_lists(session, subscriber(session, "a@example.com").id) == {
        "alerts": SubscriptionStatus.UNCONFIRMED,
        "weekly": SubscriptionStatus.CONFIRMED,
    }


def test_a_bounced_subscriber_stays_suppressed_through_a_re_import_even_with_upsert(
    session: Session, import_text: ImportText, weekly: MailingList
) -> None:
    import_text("email\nbounced@example.com\n")
    session.execute(sa.update(Subscriber).values(status=SubscriberStatus.BOUNCED))

    plain = import_text("email\nbounced@example.com\n")
    upserted = import_text("email,name\nbounced@example.com,New name\n", upsert=True)

    assert "bounced" in plain.errors[0].error
    assert "bounced" in upserted.errors[0].error
    assert subscriber(session, "bounced@example.com").status is SubscriberStatus.BOUNCED
    assert list(session.scalars(mailable_subscribers([weekly.id]))) == []


def test_an_unsubscribed_subscription_stays_unsubscribed_through_a_re_import(
    session: Session, import_text: ImportText, weekly: MailingList
) -> None:
    import_text("email\nleft@example.com\n")
    session.execute(sa.update(Subscription).values(status=SubscriptionStatus.UNSUBSCRIBED))

    counts = import_text("email\nleft@example.com\n", upsert=True)

    assert "unsubscribed" in counts.errors[0].error
    assert list(session.scalars(mailable_subscribers([weekly.id]))) == []


def test_reactivate_suppressed_re_subscribes(
    session: Session, import_text: ImportText, weekly: MailingList
) -> None:
    import_text("email\nback@example.com\n")
    session.execute(sa.update(Subscriber).values(status=SubscriberStatus.UNSUBSCRIBED))
    session.execute(sa.update(Subscription).values(status=SubscriptionStatus.UNSUBSCRIBED))

    counts = import_text("email\nback@example.com\n", reactivate=True)

    assert (counts.updated, counts.errors) == (1, ())
    assert list(session.scalars(mailable_subscribers([weekly.id]))) == [
        subscriber(session, "back@example.com").id
    ]


def test_reactivating_records_a_new_consent_event(
    session: Session, import_text: ImportText
) -> None:
    import_text("email\nback@example.com\n")
    proofs = consent_proofs(session)
    session.execute(sa.update(Subscriber).values(status=SubscriberStatus.BOUNCED))

    import_text("email\nback@example.com\n", reactivate=True)

    events = session.scalars(sa.select(ConsentEvent)).all()
    assert [(e.action.value, e.source.value, e.at) for e in events] == [
        ("subscribe", "import", NOW)
    ]
    assert consent_proofs(session) == proofs  # the original consent is never rewritten


def test_reactivating_writes_the_status_audit_row(
    session: Session, import_text: ImportText
) -> None:
    import_text("email\nback@example.com\n")
    session.execute(sa.update(Subscriber).values(status=SubscriberStatus.BOUNCED))

    import_text("email\nback@example.com\n", reactivate=True)

    (change,) = session.scalars(sa.select(SubscriberStatusChange)).all()
    assert (change.subscriber_id, change.old, change.new, change.source, change.at) == (
        subscriber(session, "back@example.com").id,
        SubscriberStatus.BOUNCED,
        SubscriberStatus.ACTIVE,
        StatusChangeSource.IMPORT,
        NOW,
    )
    assert "--reactivate-suppressed" in change.reason


def test_an_import_without_reactivation_writes_no_status_audit_row(
    session: Session, import_text: ImportText
) -> None:
    import_text("email\nback@example.com\n")
    session.execute(sa.update(Subscriber).values(status=SubscriberStatus.BOUNCED))

    import_text("email\nback@example.com\nnew@example.com\n")

    assert session.scalars(sa.select(SubscriberStatusChange)).all() == []


def test_re_subscribing_records_a_new_consent_event(
    session: Session, import_text: ImportText, weekly: MailingList
) -> None:
    import_text("email\nback@example.com\n")
    session.execute(sa.update(Subscription).values(status=SubscriptionStatus.UNSUBSCRIBED))

    import_text("email\nback@example.com\n", reactivate=True)

    (event,) = session.scalars(sa.select(ConsentEvent)).all()
    assert (event.action.value, event.list_id) == ("subscribe", weekly.id)


def test_an_erased_address_is_not_imported_again(session: Session, import_text: ImportText) -> None:
    import_text("email\ngone@example.com\nkept@example.com\n")
    erase_subscriber(session, TEST_SECRET, "gone@example.com")

    counts = import_text("email\nGone@Example.com\nkept@example.com\n", reactivate=True)

    assert [(e.line, e.error) for e in counts.errors] == [(2, ERASED_ERROR)]
    assert emails(session) == ["kept@example.com"]


def test_a_row_refused_as_erased_is_not_also_warned_about(
    session: Session, import_text: ImportText
) -> None:
    import_text("email\nüser@example.com\n")
    erase_subscriber(session, TEST_SECRET, "üser@example.com")

    counts = import_text("email\nÜser@example.com\nünew@example.com\n")

    assert [(e.line, e.error) for e in counts.errors] == [(2, ERASED_ERROR)]
    assert [w.line for w in counts.warnings] == [3]


def test_a_warned_row_is_imported_like_any_other(session: Session, import_text: ImportText) -> None:
    counts = import_text("email\nüser@example.com\nüser@example.com\nann@example.com\n")

    assert (counts.created, counts.unchanged, counts.errors) == (2, 1, ())
    assert [w.line for w in counts.warnings] == [2, 3]  # each line that holds the address
    assert emails(session) == ["ann@example.com", "üser@example.com"]


def test_a_double_opt_in_list_gets_unconfirmed_subscriptions_that_are_not_mailable(
    session: Session, import_text: ImportText, confirmed_only: MailingList
) -> None:
    import_text("email\nnew@example.com\n", mailing_list=confirmed_only)

    (status,) = session.scalars(sa.select(Subscription.status))
    assert status is SubscriptionStatus.UNCONFIRMED
    assert list(session.scalars(mailable_subscribers([confirmed_only.id]))) == []


def test_each_new_subscription_records_its_consent_and_import(
    session: Session, import_text: ImportText, weekly: MailingList
) -> None:
    import_text("email\na@example.com\nb@example.com\n")

    subscriptions = session.scalars(sa.select(Subscription)).all()
    (run,) = session.scalars(sa.select(SubscriberImport)).all()

    assert [(s.consent_source, s.consented_at, s.import_id) for s in subscriptions] == [
        (ConsentSource.IMPORT, NOW, run.id)
    ] * 2
    assert (run.list_id, run.source, run.started_at) == (weekly.id, ConsentSource.IMPORT, NOW)


def test_a_subscription_the_file_marks_unsubscribed_records_no_consent(
    session: Session, import_text: ImportText
) -> None:
    import_text("email,subscription_status\nu@example.com,unsubscribed\n")

    (subscription,) = session.scalars(sa.select(Subscription)).all()
    assert subscription.status is SubscriptionStatus.UNSUBSCRIBED
    assert (subscription.consent_source, subscription.consented_at) == (None, None)


def test_a_suppression_in_the_file_is_kept_for_a_new_subscriber(
    session: Session, import_text: ImportText, weekly: MailingList
) -> None:
    import_text(
        "email,status,subscription_status\n"
        "b@example.com,bounced,confirmed\nu@example.com,active,unsubscribed\n"
    )

    assert subscriber(session, "b@example.com").status is SubscriberStatus.BOUNCED
    assert list(session.scalars(mailable_subscribers([weekly.id]))) == []


def test_ready_made_copy_rows_store_names_and_attributes_exactly(
    session: Session, weekly: MailingList
) -> None:
    # What run_import does on PostgreSQL: the reader writes the stage rows as COPY text.
    text = (
        "email,name,city,attributes\n"
        'a@example.com,"Back\\slash, ""quoted""",Tab\\t,"{""k"": ""v\\\\n\\u00e9""}"\n'
        "b@example.com,Ünïcode,,\n"
    )
    batch = prepare_batch(
        list(read_csv(io.BytesIO(text.encode()))),
        mode=ImportMode.ADD,
        pepper=TEST_SECRET,
        initial=SubscriptionStatus.CONFIRMED,
    )
    assert batch.copy_text is not None

    counts = import_batch(
        session,
        weekly.id,
        batch,
        ImportOptions(),
        pepper=TEST_SECRET,
        now=NOW,
    )

    assert counts.created == 2
    a = subscriber(session, "a@example.com")
    assert (a.name, a.attributes) == ('Back\\slash, "quoted"', {"city": "Tab\\t", "k": "v\\né"})
    assert subscriber(session, "b@example.com").name == "Ünïcode"
    assert consent_proofs(session)[0][1:3] == (ConsentSource.IMPORT, NOW)


def test_the_batch_hasher_gives_the_erasure_hash() -> None:
    hasher = erasure_hasher(TEST_SECRET)

    assert [hasher(e) for e in ("a@example.com", "ü@example.com")] == [
        erasure_hash(TEST_SECRET, e) for e in ("a@example.com", "ü@example.com")
    ]
