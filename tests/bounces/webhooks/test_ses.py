"""Amazon SES / SNS specifics beyond the shared contract."""

from __future__ import annotations

import json

import pytest

from newsletter.bounces.event import BounceKind
from newsletter.bounces.sources.webhooks import ses
from newsletter.errors import InvalidInput

from .harness import (
    SNS_CERT,
    TOPIC_ARN,
    CertificateFetcher,
    samples,
    sign_sns,
    sns_message,
)

BOUNCE = samples("ses")["Bounce:Permanent:General"]


@pytest.mark.parametrize("version", ["1", "2"])
def test_both_signature_versions_verify(version: str) -> None:
    request = sign_sns(sns_message(BOUNCE, version=version))

    ses.verify(request.headers, request.body, CertificateFetcher(SNS_CERT))


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://user@sns.us-east-1.amazonaws.com.evil.example/x.pem",
    ],
)
def test_certificate_outside_sns_is_never_fetched(url: str) -> None:
    fetch = CertificateFetcher(SNS_CERT)
    request = sign_sns(sns_message(BOUNCE, SigningCertURL=url))

    with pytest.raises(InvalidInput, match="SigningCertURL"):
        ses.verify(request.headers, request.body, fetch)
    assert fetch.asked == []


def test_unknown_signature_version_is_refused() -> None:
    request = sign_sns(sns_message(BOUNCE, version="2"))
    body = request.body.replace(b'"SignatureVersion": "2"', b'"SignatureVersion": "3"')

    with pytest.raises(InvalidInput, match="SignatureVersion"):
        ses.verify(request.headers, body, CertificateFetcher(SNS_CERT))


def test_message_from_a_foreign_topic_is_refused() -> None:
    request = sign_sns(sns_message(BOUNCE, TopicArn="arn:aws:sns:us-east-1:999:theirs"))

    with pytest.raises(InvalidInput, match="topic"):
        ses.verify(
            request.headers, request.body, CertificateFetcher(SNS_CERT), topic_arns={TOPIC_ARN}
        )


def test_bounce_for_several_recipients_gives_one_event_each() -> None:
    bounce = json.loads(json.dumps(BOUNCE))
    bounce["bounce"]["bouncedRecipients"].append({"emailAddress": "Richard@Example.com"})
    request = sign_sns(sns_message(bounce))

    events = ses.parse(request.body)

    assert [(e.recipient, e.kind, e.status) for e in events] == [
        ("jane@example.com", BounceKind.HARD, "5.1.1"),
        ("richard@example.com", BounceKind.HARD, None),
    ]
    assert {e.original_message_id for e in events} == {"<bulletin-2026-45.5e5@example.org>"}
    assert {e.source_id for e in events} == {"19ba9823-d7f2-53c1-860e-cb10e0d13dfc"}
    assert {e.reporting_mta for e in events} == {"email.example.com"}


def test_subscription_confirmation_is_not_a_bounce() -> None:
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37f",
        "TopicArn": TOPIC_ARN,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37f",
        "Timestamp": "2026-11-09T17:58:59.675Z",
        "SignatureVersion": "1",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
    }
    request = sign_sns(message)

    ses.verify(request.headers, request.body, CertificateFetcher(SNS_CERT))
    assert ses.parse(request.body) == []


def test_notification_whose_message_is_not_json_is_rejected() -> None:
    body = json.dumps({"Type": "Notification", "Message": "not json"}).encode()

    with pytest.raises(InvalidInput):
        ses.parse(body)
