"""The preferences page: every list of the subscriber, untick to leave, tick to ask again
(which is confirmed by mail like a sign-up), or leave everything."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.subscribers.models import Subscriber, SubscriberStatus, Subscription
from tests.delivery.relay import Relay
from tests.web.conftest import Reader, add_reader, csrf_of, make_list


@pytest.fixture
def reader(web_settings: Settings) -> tuple[Reader, int]:
    weekly = make_list(web_settings, "Weekly")
    alerts = make_list(web_settings, "Alerts")
    reader = add_reader(web_settings, weekly, "aida@example.org")
    add_reader(web_settings, alerts, "aida@example.org")
    return reader, alerts


def statuses(settings: Settings, subscriber_id: int) -> dict[int, str]:
    with session_scope(settings) as session:
        rows = session.query(Subscription).filter_by(subscriber_id=subscriber_id).all()
        return {row.list_id: row.status.value for row in rows}


def test_the_page_lists_every_list_of_the_subscriber_and_changes_nothing(
    client: TestClient, web_settings: Settings, reader: tuple[Reader, int]
) -> None:
    subscriber, _ = reader
    page = client.get(f"/preferences/{subscriber.token}")

    assert page.status_code == 200
    assert "Weekly" in page.text
    assert "Alerts" in page.text
    assert page.text.count("checked") == 2
    assert set(statuses(web_settings, subscriber.subscriber_id).values()) == {"confirmed"}


def test_unticking_a_list_leaves_it_and_keeps_the_other(
    client: TestClient, web_settings: Settings, reader: tuple[Reader, int]
) -> None:
    subscriber, alerts = reader
    page = client.get(f"/preferences/{subscriber.token}")

    saved = client.post(
        f"/preferences/{subscriber.token}",
        data={"csrf_token": csrf_of(page), "list": [str(alerts)]},
    )

    assert saved.status_code == 200
    assert "saved" in saved.text
    assert statuses(web_settings, subscriber.subscriber_id) == {
        subscriber.list_id: "unsubscribed",
        alerts: "confirmed",
    }


def test_leave_all_unsubscribes_from_everything(
    client: TestClient, web_settings: Settings, reader: tuple[Reader, int]
) -> None:
    subscriber, alerts = reader
    page = client.get(f"/preferences/{subscriber.token}")

    client.post(
        f"/preferences/{subscriber.token}",
        data={"csrf_token": csrf_of(page), "list": [str(alerts)], "leave_all": "yes"},
    )

    assert set(statuses(web_settings, subscriber.subscriber_id).values()) == {"unsubscribed"}
    with session_scope(web_settings) as session:
        person = session.get(Subscriber, subscriber.subscriber_id)
        assert person is not None
        assert person.status is SubscriberStatus.UNSUBSCRIBED


def test_ticking_a_list_left_before_asks_for_confirmation_by_mail(
    client: TestClient, web_settings: Settings, relay: Relay, reader: tuple[Reader, int]
) -> None:
    subscriber, alerts = reader
    client.post(f"/u/{subscriber.token}", data={"List-Unsubscribe": "One-Click"})
    page = client.get(f"/preferences/{subscriber.token}")

    saved = client.post(
        f"/preferences/{subscriber.token}",
        data={"csrf_token": csrf_of(page), "list": [str(alerts), str(subscriber.list_id)]},
    )

    assert "link to confirm" in saved.text
    assert statuses(web_settings, subscriber.subscriber_id)[subscriber.list_id] == "unconfirmed"
    assert [a.rcpt for a in relay.handler.accepted] == ["aida@example.org"]


def test_the_form_needs_its_csrf_token(
    client: TestClient, web_settings: Settings, reader: tuple[Reader, int]
) -> None:
    subscriber, _ = reader
    client.get(f"/preferences/{subscriber.token}")

    refused = client.post(f"/preferences/{subscriber.token}", data={"leave_all": "yes"})

    assert refused.status_code == 403
    assert set(statuses(web_settings, subscriber.subscriber_id).values()) == {"confirmed"}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_tokens_are_refused(
    client: TestClient, web_settings: Settings, reader: tuple[Reader, int], method: str
) -> None:
    subscriber, _ = reader
    csrf = csrf_of(client.get(f"/preferences/{subscriber.token}"))
    bad = subscriber.token[:-1] + ("a" if subscriber.token[-1] != "a" else "b")

    response = client.request(
        method, f"/preferences/{bad}", data={"csrf_token": csrf, "leave_all": "yes"}
    )

    assert response.status_code == 400
    assert set(statuses(web_settings, subscriber.subscriber_id).values()) == {"confirmed"}
