"""Signing each provider's webhooks the way the provider does, so the contract tests can run.

Each ``Provider`` knows how to wrap one sample from ``<name>.json`` into a request body,
how to sign it (with keys generated here, never real ones) and what to pass as ``secret``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from newsletter.bounces.sources.webhooks import mailgun, postmark, sendgrid, ses

HERE = Path(__file__).parent
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ses-bounces"


def samples(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((HERE / f"{name}.json").read_text())
    return document["samples"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Request:
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Provider:
    name: str
    module: ModuleType
    build: Callable[[Any], Request]  # one sample -> a correctly signed request
    secret: Any  # what verify() takes as its third argument
    wrong_secret: Any
    tamper: Callable[[Request], Request]  # change what the provider's signature covers

    def verify(self, request: Request, secret: Any = None) -> None:
        self.module.verify(request.headers, request.body, self.secret if secret is None else secret)


# --- SendGrid: ECDSA P-256 over timestamp + body ----------------------------------------
_SG_KEY = ec.generate_private_key(ec.SECP256R1())
_SG_OTHER = ec.generate_private_key(ec.SECP256R1())


def _public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sendgrid_request(sample: Any, timestamp: str = "1762682712") -> Request:
    body = (json.dumps([sample]) + "\r\n").encode()
    signature = _SG_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return Request(
        {
            sendgrid.SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            sendgrid.TIMESTAMP_HEADER: timestamp,
        },
        body,
    )


# --- Mailgun: HMAC-SHA256(timestamp + token) inside the body -----------------------------
MAILGUN_KEY = "key-test-webhook-signing-key"


def mailgun_request(sample: Any, key: str = MAILGUN_KEY, timestamp: str = "1534110422") -> Request:
    token = "651869375b9df3c98fc15c4889b102119add1235c38fc92824"
    digest = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    document = {
        "signature": {"timestamp": timestamp, "token": token, "signature": digest},
        "event-data": sample,
    }
    return Request({"Content-Type": "application/json"}, json.dumps(document).encode())


# --- Postmark: HTTP Basic ----------------------------------------------------------------
POSTMARK_CREDENTIALS = "hooks:s3cret-pa55"


def postmark_request(sample: Any) -> Request:
    token = base64.b64encode(POSTMARK_CREDENTIALS.encode()).decode()
    return Request({"authorization": f"Basic {token}"}, json.dumps(sample).encode())


# --- Amazon SES via SNS: RSA over the canonical string, certificate fetched by URL --------
def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


_SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SNS_CERT = _self_signed(_SNS_KEY)
OTHER_CERT = _self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048))


class CertificateFetcher:
    """Stands in for the caller's HTTP fetch, and records which URLs it was asked for."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.asked: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        return self.pem


def sns_message(sample: Any, version: str = "2", **overrides: str) -> dict[str, str]:
    message = {
        "Type": "Notification",
        "MessageId": "19ba9823-d7f2-53c1-860e-cb10e0d13dfc",
        "TopicArn": TOPIC_ARN,
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(sample) + "\n",
        "Timestamp": "2026-11-09T17:58:59.675Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    }
    message.update(overrides)
    return message


def sign_sns(message: dict[str, str]) -> Request:
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    text = ses.canonical_string(message, message["Type"])
    signature = _SNS_KEY.sign(text, padding.PKCS1v15(), algorithm)
    signed = dict(message, Signature=base64.b64encode(signature).decode())
    return Request({"x-amz-sns-message-type": message["Type"]}, json.dumps(signed).encode())


def ses_request(sample: Any) -> Request:
    return sign_sns(sns_message(sample))


def change_body(request: Request) -> Request:
    return Request(request.headers, request.body.replace(b"example.com", b"example.net", 1))


def change_mailgun_token(request: Request) -> Request:
    # Mailgun signs only timestamp + token, not the event: the web layer must also refuse
    # a token it has seen before (replay), which needs storage and is not done here.
    return Request(request.headers, request.body.replace(b'"token": "6', b'"token": "7', 1))


def change_basic_password(request: Request) -> Request:
    # HTTP Basic authenticates the caller, not the body; TLS protects the body in transit.
    token = base64.b64encode(b"hooks:s3cret-pa56").decode()
    return Request({"Authorization": f"Basic {token}"}, request.body)


PROVIDERS = [
    Provider(
        "sendgrid",
        sendgrid,
        sendgrid_request,
        _public_b64(_SG_KEY),
        _public_b64(_SG_OTHER),
        change_body,
    ),
    Provider(
        "mailgun", mailgun, mailgun_request, MAILGUN_KEY, "key-someone-else", change_mailgun_token
    ),
    Provider(
        "postmark",
        postmark,
        postmark_request,
        POSTMARK_CREDENTIALS,
        "hooks:wrong",
        change_basic_password,
    ),
    Provider(
        "ses",
        ses,
        ses_request,
        CertificateFetcher(SNS_CERT),
        CertificateFetcher(OTHER_CERT),
        change_body,
    ),
]
