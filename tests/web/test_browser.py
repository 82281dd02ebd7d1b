"""The subscriber's whole journey in headless Chromium against the app on a real uvicorn server.

Sign up to a double opt-in list → the confirmation mail reaches the local SMTP relay → its link
→ confirm → the next campaign is sent to them → preferences drop one of two lists → the
List-Unsubscribe URL of the received message: GET changes nothing, the one-click POST
unsubscribes → the archive shows the issue, whose web version holds no reader's address or
token. Every page passes axe-core (no serious or critical violation) and is photographed at
375 and 1280 px.
"""

from __future__ import annotations

import email
import re
import time
from email.message import Message

import httpx
import pytest
from sqlalchemy import select

from newsletter import jobs
from newsletter.config import Settings
from newsletter.db import session_scope, utcnow
from newsletter.delivery import service as delivery_service
from newsletter.subscribers.models import Subscriber, Subscription, SubscriptionStatus
from tests.delivery.relay import Relay
from tests.delivery.seed import rendered_issue
from tests.web.conftest import LiveServer, add_reader, check_page, make_list

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MAIL_WAIT_SECONDS = 30
VISITOR = "visitor@example.org"


def wait_for_mail(relay: Relay, address: str, count: int = 1) -> list[Message]:
    """The messages the relay accepted for ``address``, once there are ``count`` of them."""
    deadline = time.monotonic() + MAIL_WAIT_SECONDS
    while True:
        found = [
            email.message_from_bytes(a.content) for a in relay.handler.accepted if a.rcpt == address
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def body_of(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    texts = []
    for part in parts:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and part.get_content_type() == "text/plain":
            texts.append(payload.decode())
    return "\n".join(texts)


def statuses(settings: Settings, address: str) -> dict[int, SubscriptionStatus]:
    with session_scope(settings) as session:
        rows = session.execute(
            select(Subscription.list_id, Subscription.status)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscriber.email == address)
        )
        return {list_id: status for list_id, status in rows}


def send_campaign(settings: Settings, list_name: str) -> int:
    issue_id = rendered_issue(settings)
    with session_scope(settings) as session:
        campaign = delivery_service.create_campaign(
            session, issue_id=issue_id, list_names=[list_name]
        )
        delivery_service.schedule_or_start(session, settings, campaign, utcnow())
    jobs.run_until_idle(settings, wait=True)
    return issue_id


def test_a_visitor_subscribes_confirms_receives_and_leaves(
    live_server: LiveServer, relay: Relay, page: object
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    settings, url = live_server.settings, live_server.url
    alerts = make_list(settings, "Market Alerts", double_opt_in=True)
    weekly = make_list(settings, "Weekly")
    neighbour = add_reader(settings, alerts, "neighbour@example.org")

    # Sign up to the double opt-in list, and to a single opt-in one.
    page.goto(f"{url}/subscribe/market-alerts")
    check_page(page, "subscribe")
    page.get_by_label("Email address").fill(VISITOR)
    page.get_by_label("Name").fill("Visitor")
    page.get_by_label(re.compile("I want to receive Market Alerts")).check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    check_page(page, "subscribed")
    page.goto(f"{url}/subscribe/weekly")
    page.get_by_label("Email address").fill(VISITOR)
    page.get_by_label(re.compile("I want to receive Weekly")).check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    assert statuses(settings, VISITOR) == {
        alerts: SubscriptionStatus.UNCONFIRMED,
        weekly: SubscriptionStatus.CONFIRMED,
    }

    # The confirmation mail, its link, the button.
    [confirmation] = wait_for_mail(relay, VISITOR)
    assert confirmation["Auto-Submitted"] == "auto-generated"
    link = re.search(r"http://127\.0\.0\.1:\d+/confirm/\S+", body_of(confirmation))
    assert link is not None
    page.goto(link.group(0))
    check_page(page, "confirm")
    assert statuses(settings, VISITOR)[alerts] is SubscriptionStatus.UNCONFIRMED
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", name="Subscription confirmed")).to_be_visible()
    check_page(page, "confirmed")
    assert statuses(settings, VISITOR)[alerts] is SubscriptionStatus.CONFIRMED

    # The next campaign reaches them.
    issue_id = send_campaign(settings, "Market Alerts")
    [_, issue] = wait_for_mail(relay, VISITOR, count=2)
    [neighbours] = wait_for_mail(relay, neighbour.email)
    header = str(issue["List-Unsubscribe"])
    one_click = re.findall(r"<(http[^>]+)>", header)[0]
    token = one_click.rsplit("/", 1)[1]

    # Preferences: keep Market Alerts, drop Weekly.
    page.goto(f"{url}/preferences/{token}")
    check_page(page, "preferences")
    page.get_by_label("Weekly").uncheck()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    check_page(page, "preferences-saved")
    assert statuses(settings, VISITOR) == {
        alerts: SubscriptionStatus.CONFIRMED,
        weekly: SubscriptionStatus.UNSUBSCRIBED,
    }

    # The List-Unsubscribe URL: a GET (a link scanner) changes nothing; the one-click POST,
    # with no cookie, unsubscribes at once.
    assert httpx.get(one_click).status_code == 200
    page.goto(one_click)
    check_page(page, "unsubscribe")
    assert statuses(settings, VISITOR)[alerts] is SubscriptionStatus.CONFIRMED
    posted = httpx.post(one_click, data={"List-Unsubscribe": "One-Click"})
    assert posted.status_code == 200
    assert statuses(settings, VISITOR)[alerts] is SubscriptionStatus.UNSUBSCRIBED

    # The neighbour presses the landing page's button instead.
    neighbour_url = re.findall(r"<(http[^>]+)>", str(neighbours["List-Unsubscribe"]))[0]
    page.goto(neighbour_url)
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    check_page(page, "unsubscribed")
    assert statuses(settings, neighbour.email)[alerts] is SubscriptionStatus.UNSUBSCRIBED

    # The archive and the web version, which holds nobody's address or token.
    page.goto(f"{url}/archive")
    check_page(page, "archive")
    page.locator("main").get_by_role("link", name=re.compile("Central Asia Weekly")).click()
    page.wait_for_url(f"{url}/issues/{issue_id}")
    check_page(page, "web-version")
    html = page.content()
    for secret in (VISITOR, neighbour.email, token, neighbour_url.rsplit("/", 1)[1], "/u/"):
        assert secret not in html
    view = re.search(rf"{re.escape(url)}/issues/\d+", body_of(issue))
    assert view is not None
    assert view.group(0) == f"{url}/issues/{issue_id}"

    # The plain pages: not found, and the tokenless unsubscribe help of the web version.
    page.goto(f"{url}/no/such/page")
    check_page(page, "error")
    page.goto(f"{url}/unsubscribe")
    check_page(page, "unsubscribe-help")
