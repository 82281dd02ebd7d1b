"""Provider webhooks through the app: verified before anything is stored, 4xx when not, 200
only after the commit, accepted once (a replay is refused, a retry changes nothing), SNS
subscription confirmation fetched from SNS only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from newsletter.bounces.models import BounceEventRecord
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.web.context import Services
from tests.bounces.webhooks import harness
from tests.bounces.webhooks.harness import Request, samples
from tests.web.conftest import Fetcher, MakeClient, web_services

SAMPLE = {
    "ses": "Bounce:Permanent:General",
    "sendgrid": "bounce:bounce",
    "postmark": "Bounce:HardBounce",
    "mailgun": "failed:permanent",
}
PROVIDERS = sorted(SAMPLE)


def now_stamp() -> str:
    return str(int(time.time()))


def mailgun_request(sample: Any, token: str | None = None, timestamp: str | None = None) -> Request:
    token = token or secrets.token_hex(25)
    timestamp = timestamp or now_stamp()
    digest = hmac.new(
        harness.MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    body = {
        "signature": {"timestamp": timestamp, "token": token, "signature": digest},
        "event-data": sample,
    }
    return Request({"Content-Type": "application/json"}, json.dumps(body).encode())


def change_mailgun_token(request: Request) -> Request:
    document = json.loads(request.body)
    document["signature"]["token"] = secrets.token_hex(25)
    return Request(request.headers, json.dumps(document).encode())


BUILD: dict[str, Callable[[Any], Request]] = {
    "ses": harness.ses_request,
    "sendgrid": lambda sample: harness.sendgrid_request(sample, timestamp=now_stamp()),
    "postmark": harness.postmark_request,
    "mailgun": mailgun_request,
}


def signed(provider: str) -> Request:
    return BUILD[provider](samples(provider)[SAMPLE[provider]])


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(answers={harness.CERT_URL: harness.SNS_CERT})


def configured(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        ses_topic_arns=(harness.TOPIC_ARN,),
        sendgrid_webhook_key=harness.PROVIDERS[0].secret,
        postmark_webhook_auth=harness.POSTMARK_CREDENTIALS,
        mailgun_webhook_key=harness.MAILGUN_KEY,
    )


@pytest.fixture
def hooks(make_client: MakeClient, web_settings: Settings) -> TestClient:
    settings = configured(web_settings)
    return make_client(
        ses_topic_arns=settings.ses_topic_arns,
        sendgrid_webhook_key=settings.sendgrid_webhook_key,
        postmark_webhook_auth=settings.postmark_webhook_auth,
        mailgun_webhook_key=settings.mailgun_webhook_key,
    )


def stored(settings: Settings) -> int:
    with session_scope(settings) as session:
        return session.scalar(select(func.count()).select_from(BounceEventRecord)) or 0


def post(client: TestClient, provider: str, request: Request) -> Any:
    return client.post(f"/webhooks/{provider}", content=request.body, headers=dict(request.headers))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_signed_webhook_is_stored_and_answered_200(
    hooks: TestClient, web_settings: Settings, provider: str
) -> None:
    response = post(hooks, provider, signed(provider))

    assert response.status_code == 200, response.text
    assert response.json() == {"events": 1}
    assert stored(web_settings) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unsigned_or_wrongly_signed_webhooks_are_refused_and_nothing_is_stored(
    hooks: TestClient, web_settings: Settings, provider: str
) -> None:
    good = signed(provider)
    unsigned = Request({"Content-Type": "application/json"}, good.body)
    tampered = {
        "ses": harness.change_body,
        "sendgrid": harness.change_body,
        "postmark": harness.change_basic_password,
        "mailgun": change_mailgun_token,
    }[provider](good)
    if provider in ("mailgun", "ses"):  # their signature is in the body
        document = json.loads(good.body)
        del document["signature" if provider == "mailgun" else "Signature"]
        unsigned = Request(good.headers, json.dumps(document).encode())

    for request in (unsigned, tampered):
        response = post(hooks, provider, request)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert stored(web_settings) == 0


@pytest.mark.parametrize("provider", ["ses", "sendgrid", "postmark"])
def test_a_retried_webhook_changes_nothing(
    hooks: TestClient, web_settings: Settings, provider: str
) -> None:
    request = signed(provider)

    first, again = post(hooks, provider, request), post(hooks, provider, request)

    assert first.status_code == again.status_code == 200
    assert stored(web_settings) == 1


def test_a_mailgun_token_is_accepted_once(hooks: TestClient, web_settings: Settings) -> None:
    sample = samples("mailgun")[SAMPLE["mailgun"]]
    request = mailgun_request(sample)
    # Mailgun signs only the timestamp and token: a replay may come with another body.
    other = dict(sample, id="another-event-id")
    replay_body = json.loads(request.body)
    replay_body["event-data"] = other
    replay = Request(request.headers, json.dumps(replay_body).encode())

    assert post(hooks, "mailgun", request).status_code == 200
    assert post(hooks, "mailgun", request).status_code == 403
    assert post(hooks, "mailgun", replay).status_code == 403
    assert stored(web_settings) == 1


def test_an_old_mailgun_timestamp_is_refused(hooks: TestClient, web_settings: Settings) -> None:
    old = str(int(time.time()) - 3600)
    request = mailgun_request(samples("mailgun")[SAMPLE["mailgun"]], timestamp=old)

    assert post(hooks, "mailgun", request).status_code == 403
    assert stored(web_settings) == 0


@pytest.mark.redis
def test_mailgun_tokens_are_kept_in_redis_when_a_broker_is_set(
    make_client: MakeClient, web_settings: Settings
) -> None:
    settings = dataclasses.replace(configured(web_settings), broker_url="redis://127.0.0.1:6379/15")
    # Two apps with their own connections: another process or host sees the same tokens.
    first = make_client(services=web_services(settings), **_webhook_changes(settings))
    second = make_client(services=web_services(settings), **_webhook_changes(settings))
    request = mailgun_request(samples("mailgun")[SAMPLE["mailgun"]])

    assert post(first, "mailgun", request).status_code == 200
    assert post(second, "mailgun", request).status_code == 403


def _webhook_changes(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.broker_url,
        "mailgun_webhook_key": settings.mailgun_webhook_key,
    }


def test_a_storage_failure_is_a_5xx_and_the_providers_retry_then_works(
    make_client: MakeClient, web_settings: Settings, tmp_path: Any
) -> None:
    settings = configured(web_settings)
    nonces = MemoryNonces()
    services = dataclasses.replace(web_services(settings), nonces=nonces)
    broken = make_client(
        services=services,
        database_url=f"sqlite:///{tmp_path}/missing/dir/x.db",
        mailgun_webhook_key=settings.mailgun_webhook_key,
    )
    working = make_client(services=services, mailgun_webhook_key=settings.mailgun_webhook_key)
    request = mailgun_request(samples("mailgun")[SAMPLE["mailgun"]])

    failed = post(broken, "mailgun", request)
    retried = post(working, "mailgun", request)

    assert failed.status_code == 500
    assert "sqlite" not in failed.text.lower()
    assert "Traceback" not in failed.text
    assert retried.status_code == 200
    assert stored(web_settings) == 1


@dataclasses.dataclass
class MemoryNonces:
    """Our NonceStore protocol in memory, shared by two apps of one test."""

    seen: set[tuple[str, str]] = dataclasses.field(default_factory=set)

    def claim(self, provider: str, nonce: str, now: dt.datetime) -> bool:
        if (provider, nonce) in self.seen:
            return False
        self.seen.add((provider, nonce))
        return True

    def release(self, provider: str, nonce: str) -> None:
        self.seen.discard((provider, nonce))


def test_a_provider_without_a_secret_is_not_enabled(client: TestClient) -> None:
    for provider in PROVIDERS:
        assert post(client, provider, signed(provider)).status_code == 404


def test_a_malformed_but_authentic_body_is_a_400(hooks: TestClient, web_settings: Settings) -> None:
    credentials = harness.postmark_request({})
    bad = Request(credentials.headers, b"[1, 2")

    assert post(hooks, "postmark", bad).status_code == 400
    assert stored(web_settings) == 0


def sns_handshake(subscribe_url: str, topic: str = harness.TOPIC_ARN) -> Request:
    message = harness.sns_message(
        {},
        Type="SubscriptionConfirmation",
        Message="You have chosen to subscribe to the topic.",
        Token="2336412f37fb687f5d51e6e2425",
        SubscribeURL=subscribe_url,
        TopicArn=topic,
    )
    return harness.sign_sns(message)


def test_an_sns_subscription_confirmation_is_confirmed_at_sns(
    hooks: TestClient, fetcher: Fetcher, web_settings: Settings
) -> None:
    url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f"

    response = post(hooks, "ses", sns_handshake(url))

    assert response.status_code == 200
    assert fetcher.asked == [harness.CERT_URL, url]
    assert stored(web_settings) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/?Action=ConfirmSubscription",
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "https://sns.us-east-1.amazonaws.com.evil.example/x",
        "https://user@sns.us-east-1.amazonaws.com/x",
        "https://sns.us-east-1.amazonaws.com:8443/x",
        "https://127.0.0.1/x",
    ],
)
def test_a_subscribe_url_off_sns_is_never_fetched(
    hooks: TestClient, fetcher: Fetcher, url: str
) -> None:
    response = post(hooks, "ses", sns_handshake(url))

    assert response.status_code == 400
    assert url not in fetcher.asked


def test_an_sns_message_of_someone_elses_topic_is_refused(
    hooks: TestClient, fetcher: Fetcher
) -> None:
    url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x"
    other = "arn:aws:sns:us-east-1:999999999999:not-ours"

    assert post(hooks, "ses", sns_handshake(url, topic=other)).status_code == 403
    assert url not in fetcher.asked


def test_services_default_to_database_nonces_without_a_broker(web_settings: Settings) -> None:
    from newsletter.web.webhooks.replay import DatabaseNonces

    services = Services.for_settings(web_settings)
    assert isinstance(services.nonces, DatabaseNonces)
    now = dt.datetime.now(dt.UTC)
    assert services.nonces.claim("mailgun", "t1", now)
    assert not services.nonces.claim("mailgun", "t1", now)
    services.nonces.release("mailgun", "t1")
    assert services.nonces.claim("mailgun", "t1", now)
