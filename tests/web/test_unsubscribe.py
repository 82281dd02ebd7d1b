"""One-click unsubscribe (MSG-12, LAW-02): POST unsubscribes at once with no cookie or token,
GET never does, a bad token changes nothing, and no answer is a redirect."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.subscribers.models import (
    ConsentAction,
    ConsentEvent,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletter.subscribers.service import erase_subscriber
from newsletter.subscribers.tokens import unsubscribe_token
from tests.web.conftest import Reader, add_reader, make_list

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def subscription_status(settings: Settings, reader: Reader) -> SubscriptionStatus:
    with session_scope(settings) as session:
        subscription = session.get(Subscription, (reader.subscriber_id, reader.list_id))
        assert subscription is not None
        return subscription.status


def consent_events(settings: Settings) -> int:
    """Withdrawals recorded so far."""
    with session_scope(settings) as session:
        return len(
            session.scalars(
                select(ConsentEvent).where(ConsentEvent.action == ConsentAction.UNSUBSCRIBE)
            ).all()
        )


@pytest.fixture
def reader(web_settings: Settings) -> Reader:
    return add_reader(web_settings, make_list(web_settings, "Weekly"), "aida@example.org")


def test_one_click_post_unsubscribes_at_once_without_cookie_or_csrf(
    client: TestClient, web_settings: Settings, reader: Reader
) -> None:
    response = client.post(f"/u/{reader.token}", data=ONE_CLICK, follow_redirects=False)

    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert subscription_status(web_settings, reader) is SubscriptionStatus.UNSUBSCRIBED
    with session_scope(web_settings) as session:
        event = session.scalars(
            select(ConsentEvent).where(ConsentEvent.action == ConsentAction.UNSUBSCRIBE)
        ).one()
        assert event.list_id == reader.list_id
        assert event.source == "email"


def test_one_click_post_as_multipart_form_data_unsubscribes(
    client: TestClient, web_settings: Settings, reader: Reader
) -> None:
    response = client.post(f"/u/{reader.token}", files={"List-Unsubscribe": (None, "One-Click")})

    assert response.status_code == 200
    assert subscription_status(web_settings, reader) is SubscriptionStatus.UNSUBSCRIBED


def test_get_shows_a_button_and_the_list_but_changes_nothing(
    client: TestClient, web_settings: Settings, reader: Reader
) -> None:
    response = client.get(f"/u/{reader.token}", follow_redirects=False)

    assert response.status_code == 200
    assert "Weekly" in response.text
    assert 'name="List-Unsubscribe" value="One-Click"' in response.text
    assert f"/preferences/{reader.token}" in response.text
    assert subscription_status(web_settings, reader) is SubscriptionStatus.CONFIRMED
    assert consent_events(web_settings) == 0


def test_a_repeated_post_answers_200_and_changes_nothing(
    client: TestClient, web_settings: Settings, reader: Reader
) -> None:
    client.post(f"/u/{reader.token}", data=ONE_CLICK)
    before = consent_events(web_settings)

    again = client.post(f"/u/{reader.token}", data=ONE_CLICK, follow_redirects=False)
    page = client.get(f"/u/{reader.token}")

    assert again.status_code == 200
    assert consent_events(web_settings) == before
    assert "already unsubscribed" in page.text


def test_a_token_for_every_list_unsubscribes_the_subscriber_as_a_whole(
    client: TestClient, web_settings: Settings, reader: Reader
) -> None:
    token = unsubscribe_token(web_settings.secret_key, reader.subscriber_id, None)

    client.post(f"/u/{token}", data=ONE_CLICK)

    with session_scope(web_settings) as session:
        subscriber = session.get(Subscriber, reader.subscriber_id)
        assert subscriber is not None
        assert subscriber.status is SubscriberStatus.UNSUBSCRIBED


def tampered(token: str) -> list[str]:
    last = "a" if token[-1] != "a" else "b"
    other_subscriber = token.split(".")
    other_subscriber[1] = "zz"
    return [
        token[:-1] + last,  # the MAC changed
        ".".join(other_subscriber),  # another subscriber, same MAC
        "u0000.1.1.aaaaaaaaaaaaaaaaaaaaaaaaaa",  # signed with another key
        "not-a-token",
        "x" * 129,
    ]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_tokens_are_refused_with_a_plain_page_and_change_nothing(
    client: TestClient, web_settings: Settings, reader: Reader, method: str
) -> None:
    for token in tampered(reader.token):
        response = client.request(
            method, f"/u/{token}", data=ONE_CLICK if method == "POST" else None
        )
        assert 400 <= response.status_code < 500, token
        assert "Traceback" not in response.text
        assert response.headers["content-type"].startswith("text/html")
    assert subscription_status(web_settings, reader) is SubscriptionStatus.CONFIRMED
    assert consent_events(web_settings) == 0


def test_the_token_of_an_erased_subscriber_is_unknown(
    client: TestClient, web_settings: Settings, reader: Reader
) -> None:
    with session_scope(web_settings) as session:
        erase_subscriber(session, web_settings.secret_key, reader.email)

    assert client.get(f"/u/{reader.token}").status_code == 404
    assert client.post(f"/u/{reader.token}", data=ONE_CLICK).status_code == 404


def test_a_post_without_the_one_click_field_changes_nothing(
    client: TestClient, web_settings: Settings, reader: Reader
) -> None:
    response = client.post(f"/u/{reader.token}", data={"something": "else"})

    assert response.status_code == 400
    assert subscription_status(web_settings, reader) is SubscriptionStatus.CONFIRMED


def test_the_link_of_a_test_send_says_so_and_changes_nothing(
    client: TestClient, web_settings: Settings, reader: Reader
) -> None:
    from newsletter.subscribers.tokens import sign_test_token

    token = sign_test_token(web_settings.secret_key, 7, reader.list_id)
    before = consent_events(web_settings)

    page = client.get(f"/u/{token}")
    posted = client.post(f"/u/{token}", data=ONE_CLICK)

    assert page.status_code == posted.status_code == 200
    assert "This was a test" in page.text
    assert "This was a test" in posted.text
    assert subscription_status(web_settings, reader) == SubscriptionStatus.CONFIRMED
    assert consent_events(web_settings) == before
