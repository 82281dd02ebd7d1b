"""Fixtures of the web tests: the app in-process (TestClient), the app on a real uvicorn server,
a local SMTP relay, headless Chromium with axe-core, and seed data.

``client`` talks to the app in-process over https (so ``Secure`` cookies come back);
``live_server`` runs it with uvicorn on a free port with ``NEWSLETTER_BASE_URL`` pointing at
it, for the browser and for the links in real messages. Screenshots go to
``test-artifacts/web/`` (see ``tests/browser.py``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from newsletter.config import Settings, parse_smtp_url
from newsletter.db import session_scope, utcnow
from newsletter.subscribers.consent import subscribe
from newsletter.subscribers.models import ConsentSource, MailingList, SubscriptionStatus
from newsletter.subscribers.service import create_list
from newsletter.subscribers.tokens import unsubscribe_token
from newsletter.web.app import create_app
from newsletter.web.context import Services
from newsletter.web.ratelimit import SignupLimiter
from newsletter.web.webhooks.replay import nonce_store
from tests.browser import ARTIFACTS, chromium
from tests.delivery.relay import Relay, free_port, running_relay

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SCREENSHOT_DIR = ARTIFACTS / "web"
WIDTHS = (375, 1280)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Fetcher:
    """Stands in for the https GET of SNS certificates and confirmations; records each URL."""

    answers: dict[str, bytes] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        for prefix, answer in self.answers.items():
            if url.startswith(prefix):
                return answer
        return b"<ConfirmSubscriptionResponse/>"


def web_services(settings: Settings, fetcher: Fetcher | None = None) -> Services:
    """Real services (clock, limits, nonces), counters private to this test, no sweeper."""
    return Services(
        clock=utcnow,
        limiter=SignupLimiter.for_settings(settings, namespace=f"test-{uuid.uuid4().hex}"),
        nonces=nonce_store(settings),
        fetch=fetcher or Fetcher(),
        outbox_sweep_seconds=None,
    )


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher()


@pytest.fixture
def relay() -> Iterator[Relay]:
    with running_relay() as running:
        yield running


@pytest.fixture
def web_settings(committed_settings: Settings, relay: Relay) -> Settings:
    """Committed settings whose transactional mail goes to the test relay."""
    return dataclasses.replace(committed_settings, smtp=parse_smtp_url(relay.env_url))


MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(web_settings: Settings, fetcher: Fetcher) -> Iterator[MakeClient]:
    """``make_client(**settings_changes)``: a TestClient on a fresh app (errors as pages)."""
    clients: list[TestClient] = []

    def make(services: Services | None = None, **changes: Any) -> TestClient:
        settings = dataclasses.replace(web_settings, **changes)
        app = create_app(settings, services or web_services(settings, fetcher))
        client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, "the page has no CSRF field"
    return match.group(1)


# --- seed data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    subscriber_id: int
    email: str
    list_id: int
    token: str  # the unsubscribe token of (subscriber, list), as messages carry it


def make_list(settings: Settings, name: str, *, double_opt_in: bool = False) -> int:
    with session_scope(settings) as session:
        return create_list(session, name, double_opt_in=double_opt_in).id


def add_reader(settings: Settings, list_id: int, email: str) -> Reader:
    """A confirmed subscriber of ``list_id`` (an administrator's subscribe)."""
    with session_scope(settings) as session:
        mailing_list = session.get(MailingList, list_id)
        assert mailing_list is not None
        subscription = subscribe(
            session,
            settings.secret_key,
            list_id,
            email,
            source=ConsentSource.ADMIN,
            now=utcnow(),
        )
        if subscription.status is not SubscriptionStatus.CONFIRMED:  # a double opt-in list
            subscription.transition(SubscriptionStatus.CONFIRMED, utcnow())
        subscriber_id = subscription.subscriber_id
    return Reader(
        subscriber_id,
        email,
        list_id,
        unsubscribe_token(settings.secret_key, subscriber_id, list_id),
    )


# --- a real server --------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: FastAPI


@pytest.fixture
def live_server(web_settings: Settings, fetcher: Fetcher) -> Iterator[LiveServer]:
    """The app on uvicorn at 127.0.0.1:<free port>, its base URL pointing at itself."""
    port = free_port()
    settings = dataclasses.replace(web_settings, base_url=f"http://127.0.0.1:{port}")
    app = create_app(settings, web_services(settings, fetcher))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    yield LiveServer(settings.base_url, settings, app)
    server.should_exit = True
    thread.join(timeout=30)


# --- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: axe is injected as a script, which our own CSP rightly forbids.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def check_page(page: Any, name: str) -> None:
    """axe-core finds no serious or critical violation; screenshots at 375 and 1280 px."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    results = page.evaluate("async () => await axe.run(document)")
    bad = [v for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: " + json.dumps(
        [{"id": v["id"], "help": v["help"], "nodes": len(v["nodes"])} for v in bad], indent=1
    )
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOT_DIR / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(size)
