"""Delivery test fixtures: a real aiosmtpd relay with scripted answers, TLS files, DKIM keys.

``smtp_server(**smtp_options)`` starts an aiosmtpd server on 127.0.0.1 at a free port; its
``handler`` records every message and can answer 4xx/5xx, or drop the connection, per recipient.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from newsletter.config import SmtpUrl

QUEUE_ID = "4F3D2"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    content: bytes


@dataclass
class ScriptedHandler:
    """aiosmtpd handler: accepts, except where ``rcpt_answers``/``drop_*`` say otherwise."""

    rcpt_answers: dict[str, str] = field(default_factory=dict)  # address -> "451 4.3.0 ..."
    data_answers: dict[str, str] = field(default_factory=dict)
    drop_on_rcpt: set[str] = field(default_factory=set)
    drop_on_data: set[str] = field(default_factory=set)
    mail_answers: list[str] = field(default_factory=list)  # next MAIL replies, then 250
    received: list[Received] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)  # one per connection that sent MAIL
    pipelining: bool = False  # advertise RFC 2920 PIPELINING (aiosmtpd copes, but is silent)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.peers.add(session.peer)
        if self.mail_answers:
            return self.mail_answers.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.drop_on_rcpt:
            server.transport.close()
            return "250 2.1.5 Ok"  # never arrives: the connection is gone
        if address in self.rcpt_answers:
            return self.rcpt_answers[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpt = envelope.rcpt_tos[0]
        if rcpt in self.drop_on_data:
            server.transport.close()
            return "250 2.0.0 Ok"
        if rcpt in self.data_answers:
            return self.data_answers[rcpt]
        content = envelope.original_content or envelope.content
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                mail_options=list(envelope.mail_options),
                content=content if isinstance(content, bytes) else content.encode(),
            )
        )
        return f"250 2.0.0 Ok: queued as {QUEUE_ID}"


@dataclass
class Server:
    handler: ScriptedHandler
    host: str
    port: int

    def url(
        self, scheme: str = "smtp", username: str | None = None, password: str | None = None
    ) -> SmtpUrl:
        return SmtpUrl(scheme, self.host, self.port, username, password)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class SmtpAuth:
    """An aiosmtpd ``authenticator`` that knows one user and records successful logins."""

    username: str = "sender"
    password: str = "s3cret-pass"
    logins: list[str] = field(default_factory=list)

    def check(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.username.encode(),
            self.password.encode(),
        )
        if ok:
            self.logins.append(self.username)
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_auth() -> SmtpAuth:
    return SmtpAuth()


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Server]]:
    controllers: list[Controller] = []

    def start(**smtp_options: Any) -> Server:
        handler = ScriptedHandler()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_options)
        controller.start()
        controllers.append(controller)
        return Server(handler, "127.0.0.1", port)

    yield start
    for controller in controllers:
        controller.stop()


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1, made with ``cryptography``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


DkimKey = tuple[bytes, bytes]  # (PEM private key, TXT record for <selector>._domainkey.<domain>)


def make_dkim_key(bits: int) -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture(scope="session")
def dkim_keys() -> tuple[DkimKey, DkimKey]:
    """Two 2048-bit keys, for selector rotation."""
    return make_dkim_key(2048), make_dkim_key(2048)


@pytest.fixture(scope="session")
def weak_dkim_pem() -> bytes:
    return make_dkim_key(1024)[0]
