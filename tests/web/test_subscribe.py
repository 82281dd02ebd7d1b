"""Sign-up and confirmation (LAW-04, LAW-05): the form, its defences, the confirmation mail,
the consent record, and the page that answers the same whatever the address's state."""

from __future__ import annotations

import dataclasses
import email
import re
import uuid
from email.message import Message

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from newsletter import jobs
from newsletter.config import Settings, parse_smtp_url
from newsletter.db import session_scope, utcnow
from newsletter.delivery.outbox import OutboxMessage, OutboxStatus
from newsletter.subscribers.models import (
    ConsentAction,
    ConsentEvent,
    ConsentText,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletter.subscribers.service import erase_subscriber
from newsletter.subscribers.signup import CONSENT_TEXT, consent_text_version
from newsletter.subscribers.tokens import confirm_token
from newsletter.web.context import Services
from tests.delivery.relay import Relay, free_port
from tests.web.conftest import MakeClient, add_reader, csrf_of, make_list, web_services

UA = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"


def sign_up(client: TestClient, list_key: str, address: str, **fields: str) -> httpx.Response:
    form = client.get(f"/subscribe/{list_key}")
    data = {"csrf_token": csrf_of(form), "email": address, "consent": "yes", **fields}
    return client.post(f"/subscribe/{list_key}", data=data, headers={"User-Agent": UA})


def subscription(settings: Settings, address: str) -> Subscription | None:
    with session_scope(settings) as session:
        return session.scalar(
            select(Subscription)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscriber.email == address)
        )


def messages_to(relay: Relay, address: str) -> list[Message]:
    return [
        email.message_from_bytes(a.content) for a in relay.handler.accepted if a.rcpt == address
    ]


def confirm_link(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    match = re.search(r"https?://\S+/confirm/(\S+)", payload.decode())
    assert match, payload
    return match.group(1)


@pytest.fixture
def alerts(web_settings: Settings) -> int:
    return make_list(web_settings, "Market Alerts", double_opt_in=True)


def test_a_single_opt_in_list_subscribes_at_once(
    client: TestClient, web_settings: Settings, relay: Relay
) -> None:
    make_list(web_settings, "Weekly News")

    response = sign_up(client, "weekly-news", "Ann@Example.org", name="Ann")

    assert response.status_code == 200
    found = subscription(web_settings, "ann@example.org")
    assert found is not None
    assert found.status is SubscriptionStatus.CONFIRMED
    assert found.legal_basis == "consent"
    assert not relay.handler.accepted  # nothing to confirm


def test_the_list_is_found_by_its_exact_name_too(
    client: TestClient, web_settings: Settings
) -> None:
    make_list(web_settings, "Weekly News")
    assert client.get("/subscribe/Weekly News").status_code == 200
    assert client.get("/subscribe/no-such-list").status_code == 404


def test_double_opt_in_sends_a_confirmation_mail_and_mails_nothing_else(
    client: TestClient, web_settings: Settings, relay: Relay, alerts: int
) -> None:
    response = sign_up(client, "market-alerts", "bek@example.org")

    assert response.status_code == 200
    assert "Check your inbox" in response.text
    found = subscription(web_settings, "bek@example.org")
    assert found is not None
    assert found.status is SubscriptionStatus.UNCONFIRMED
    [message] = messages_to(relay, "bek@example.org")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None
    assert message["From"] == str(web_settings.from_address)
    assert "Market Alerts" in message["Subject"]
    assert confirm_link(message).startswith("c")


def test_the_consent_record_keeps_form_text_ip_agent_time_and_legal_basis(
    client: TestClient, web_settings: Settings, relay: Relay, alerts: int
) -> None:
    sign_up(client, "market-alerts", "bek@example.org")
    token = confirm_link(messages_to(relay, "bek@example.org")[0])
    page = client.get(f"/confirm/{token}")
    client.post(f"/confirm/{token}", data={"csrf_token": csrf_of(page)}, headers={"User-Agent": UA})

    with session_scope(web_settings) as session:
        events = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
        signed, confirmed = events
        assert signed.action is ConsentAction.SUBSCRIBE
        assert signed.form_url == f"{web_settings.base_url}/subscribe/market-alerts"
        assert signed.consent_text_version == consent_text_version()
        assert signed.ip
        assert signed.user_agent == UA
        assert confirmed.action is ConsentAction.CONFIRM
        assert confirmed.ip
        assert confirmed.at >= signed.at
        text = session.get(ConsentText, consent_text_version())
        assert text is not None
        assert text.text == CONSENT_TEXT
        row = session.scalar(select(Subscription))
        assert row is not None
        assert row.status is SubscriptionStatus.CONFIRMED
        assert row.legal_basis == "consent"


def test_the_confirmation_page_changes_nothing_until_its_button_is_pressed(
    client: TestClient, web_settings: Settings, relay: Relay, alerts: int
) -> None:
    sign_up(client, "market-alerts", "bek@example.org")
    token = confirm_link(messages_to(relay, "bek@example.org")[0])

    page = client.get(f"/confirm/{token}")
    found = subscription(web_settings, "bek@example.org")

    assert page.status_code == 200
    assert "Confirm my subscription" in page.text
    assert found is not None
    assert found.status is SubscriptionStatus.UNCONFIRMED


def test_a_used_or_expired_confirmation_link_is_gone(
    client: TestClient, web_settings: Settings, relay: Relay, alerts: int
) -> None:
    sign_up(client, "market-alerts", "bek@example.org")
    token = confirm_link(messages_to(relay, "bek@example.org")[0])
    page = client.get(f"/confirm/{token}")
    assert client.post(f"/confirm/{token}", data={"csrf_token": csrf_of(page)}).status_code == 200

    assert client.get(f"/confirm/{token}").status_code == 410
    assert client.post(f"/confirm/{token}", data={"csrf_token": csrf_of(page)}).status_code == 410
    found = subscription(web_settings, "bek@example.org")
    assert found is not None
    old = confirm_token(
        web_settings.secret_key,
        found.subscriber_id,
        alerts,
        utcnow().replace(year=utcnow().year - 1),
    )
    assert client.get(f"/confirm/{old}").status_code == 410


def test_tampered_confirmation_tokens_are_refused_and_change_nothing(
    client: TestClient, web_settings: Settings, relay: Relay, alerts: int
) -> None:
    sign_up(client, "market-alerts", "bek@example.org")
    token = confirm_link(messages_to(relay, "bek@example.org")[0])
    csrf = csrf_of(client.get(f"/confirm/{token}"))
    for bad in (token[:-1] + ("a" if token[-1] != "a" else "b"), "c0000.1.1.1.aaaa", "junk"):
        assert client.get(f"/confirm/{bad}").status_code in (400, 404)
        assert client.post(f"/confirm/{bad}", data={"csrf_token": csrf}).status_code in (400, 404)
    found = subscription(web_settings, "bek@example.org")
    assert found is not None
    assert found.status is SubscriptionStatus.UNCONFIRMED


def page_text(response: httpx.Response) -> str:
    text = response.text
    return re.sub(r'value="[^"]+"', "", text)


def test_the_page_is_the_same_for_a_new_a_pending_and_a_subscribed_address(
    client: TestClient, web_settings: Settings, relay: Relay, alerts: int
) -> None:
    add_reader(web_settings, alerts, "known@example.org")
    sign_up(client, "market-alerts", "pending@example.org")

    pages = {
        address: page_text(sign_up(client, "market-alerts", address))
        for address in ("new@example.org", "pending@example.org", "known@example.org")
    }

    assert len(set(pages.values())) == 1
    assert len(messages_to(relay, "pending@example.org")) == 2  # asked again: sent again
    assert not messages_to(relay, "known@example.org")


@pytest.mark.parametrize(
    "status", [SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED, SubscriberStatus.BLOCKED]
)
def test_a_suppressed_address_is_not_reactivated_and_not_mailed(
    client: TestClient, web_settings: Settings, relay: Relay, status: SubscriberStatus
) -> None:
    weekly = make_list(web_settings, "Weekly News")
    reader = add_reader(web_settings, make_list(web_settings, "Other"), "gone@example.org")
    with session_scope(web_settings) as session:
        subscriber = session.get(Subscriber, reader.subscriber_id)
        assert subscriber is not None
        subscriber.status = status
    fresh = page_text(sign_up(client, "weekly-news", "fresh@example.org"))

    response = sign_up(client, "weekly-news", "gone@example.org")

    assert page_text(response) == fresh
    with session_scope(web_settings) as session:
        subscriber = session.get(Subscriber, reader.subscriber_id)
        assert subscriber is not None
        assert subscriber.status is status
        assert session.get(Subscription, (reader.subscriber_id, weekly)) is None
    assert not messages_to(relay, "gone@example.org")


def test_an_erased_address_is_not_added_again_and_the_page_says_nothing(
    client: TestClient, web_settings: Settings, relay: Relay
) -> None:
    make_list(web_settings, "Weekly News")
    reader = add_reader(web_settings, make_list(web_settings, "Other"), "erased@example.org")
    with session_scope(web_settings) as session:
        erase_subscriber(session, web_settings.secret_key, reader.email)

    response = sign_up(client, "weekly-news", "erased@example.org")

    assert response.status_code == 200
    assert subscription(web_settings, "erased@example.org") is None


def test_someone_who_left_must_confirm_before_being_mailed_again(
    client: TestClient, web_settings: Settings, relay: Relay
) -> None:
    weekly = make_list(web_settings, "Weekly News")
    reader = add_reader(web_settings, weekly, "left@example.org")
    client.post(f"/u/{reader.token}", data={"List-Unsubscribe": "One-Click"})

    sign_up(client, "weekly-news", "left@example.org")

    found = subscription(web_settings, "left@example.org")
    assert found is not None
    assert found.status is SubscriptionStatus.UNCONFIRMED
    assert len(messages_to(relay, "left@example.org")) == 1


def test_the_honeypot_refuses_a_robot_without_telling_it(
    client: TestClient, web_settings: Settings, relay: Relay, alerts: int
) -> None:
    person = page_text(sign_up(client, "market-alerts", "person@example.org"))

    robot = sign_up(client, "market-alerts", "robot@example.org", website="http://spam.example")

    assert robot.status_code == 200
    assert page_text(robot) == person
    assert subscription(web_settings, "robot@example.org") is None
    assert not messages_to(relay, "robot@example.org")


def test_a_form_without_a_valid_csrf_token_is_refused(
    client: TestClient, web_settings: Settings, alerts: int
) -> None:
    client.get("/subscribe/market-alerts")  # a session exists, but the field is missing
    data = {"email": "x@example.org", "consent": "yes"}

    missing = client.post("/subscribe/market-alerts", data=data)
    wrong = client.post("/subscribe/market-alerts", data={**data, "csrf_token": "forged"})
    fresh = TestClient(client.app, base_url="https://testserver")  # no session cookie at all
    cross_site = fresh.post("/subscribe/market-alerts", data={**data, "csrf_token": "forged"})

    assert missing.status_code == wrong.status_code == cross_site.status_code == 403
    assert subscription(web_settings, "x@example.org") is None


def test_signing_up_without_the_consent_box_is_refused(
    client: TestClient, web_settings: Settings, alerts: int
) -> None:
    form = client.get("/subscribe/market-alerts")

    response = client.post(
        "/subscribe/market-alerts", data={"csrf_token": csrf_of(form), "email": "x@example.org"}
    )

    assert response.status_code == 422
    assert "tick the box" in response.text
    assert "checked" not in response.text.split('id="consent"')[1].split(">")[0]
    assert subscription(web_settings, "x@example.org") is None


def test_a_bad_address_is_refused_on_the_form(client: TestClient, alerts: int) -> None:
    response = sign_up(client, "market-alerts", "not an address")
    assert response.status_code == 422


def test_a_burst_of_sign_ups_from_one_ip_is_rate_limited(
    make_client: MakeClient, web_settings: Settings, alerts: int
) -> None:
    client = make_client(signup_limit_per_ip="3/minute", signup_limit_per_address="100/minute")

    answers = [
        sign_up(client, "market-alerts", f"burst{n}@example.org").status_code for n in range(6)
    ]

    assert answers[:3] == [200, 200, 200]
    assert answers[3:] == [429, 429, 429]
    assert subscription(web_settings, "burst5@example.org") is None


def test_sign_ups_for_one_address_are_rate_limited_from_any_ip(
    make_client: MakeClient, web_settings: Settings, relay: Relay, alerts: int
) -> None:
    client = make_client(signup_limit_per_ip="100/minute", signup_limit_per_address="2/hour")

    answers = [
        sign_up(client, "market-alerts", "victim@example.org", website="").status_code
        for _ in range(4)
    ]

    assert answers == [200, 200, 429, 429]
    assert len(messages_to(relay, "victim@example.org")) <= 2


@pytest.mark.redis
def test_rate_limits_are_shared_through_redis_when_a_broker_is_set(
    make_client: MakeClient, web_settings: Settings, alerts: int
) -> None:
    settings = dataclasses.replace(
        web_settings,
        broker_url="redis://127.0.0.1:6379/15",
        signup_limit_per_ip="2/minute",
        signup_limit_per_address="100/minute",
    )
    namespace = f"shared-{uuid.uuid4().hex}"

    def own_services() -> Services:
        services = web_services(settings)  # its own Redis connection, like another process
        return dataclasses.replace(
            services, limiter=dataclasses.replace(services.limiter, namespace=namespace)
        )

    first = make_client(services=own_services(), broker_url=settings.broker_url)
    second = make_client(services=own_services(), broker_url=settings.broker_url)

    assert sign_up(first, "market-alerts", "a@example.org").status_code == 200
    assert sign_up(second, "market-alerts", "b@example.org").status_code == 200
    assert sign_up(first, "market-alerts", "c@example.org").status_code == 429


def test_a_relay_that_is_down_delays_the_confirmation_but_keeps_the_sign_up(
    make_client: MakeClient, web_settings: Settings, relay: Relay, alerts: int
) -> None:
    down = parse_smtp_url(f"smtp://127.0.0.1:{free_port()}")
    client = make_client(smtp=down, retry_schedule=(0, 0))

    response = sign_up(client, "market-alerts", "patient@example.org")

    assert response.status_code == 200
    found = subscription(web_settings, "patient@example.org")
    assert found is not None
    assert found.status is SubscriptionStatus.UNCONFIRMED
    with session_scope(web_settings) as session:
        queued = session.scalar(select(OutboxMessage))
        assert queued is not None
        assert queued.status is OutboxStatus.PENDING
        assert queued.attempts == 1

    # The relay is back: the next sweep (tick, or the web app's own in embedded mode) sends it.
    jobs.send_due_transactional(dataclasses.replace(web_settings, retry_schedule=(0, 0)))

    [message] = messages_to(relay, "patient@example.org")
    assert confirm_link(message)
    with session_scope(web_settings) as session:
        sent = session.scalar(select(OutboxMessage))
        assert sent is not None
        assert sent.status is OutboxStatus.SENT
