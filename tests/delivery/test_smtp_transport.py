"""SmtpTransport against a real aiosmtpd relay on 127.0.0.1; MemoryTransport's same contract."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from newsletter.config import SmtpUrl
from newsletter.delivery.transports import (
    RelayUnavailableError,
    RelayUnreachableError,
    SendResult,
    Transport,
)
from newsletter.delivery.transports.memory import MemoryTransport
from newsletter.delivery.transports.smtp import SmtpTransport
from newsletter.errors import (
    ConfigError,
    InvalidInput,
    PermanentDeliveryError,
    TransientDeliveryError,
)

SENDER = "bounces+b1-abc@bounces.example.org"
MESSAGE = (
    b"From: bulletin@news.example.org\r\nTo: reader@example.com\r\nSubject: hi\r\n\r\n"
    b"Hello\r\n.starts with a dot\r\n.\r\n..two dots\r\nend\r\n"
)

StartServer = Callable[..., Any]


@pytest.fixture
def transports() -> Iterator[Callable[..., SmtpTransport]]:
    opened: list[SmtpTransport] = []

    def make(url: SmtpUrl, **options: Any) -> SmtpTransport:
        options.setdefault("require_tls", False)
        options.setdefault("timeout", 5.0)
        transport = SmtpTransport(url, **options)
        opened.append(transport)
        return transport

    yield make
    for transport in opened:
        transport.close()


@pytest.fixture(params=[False, True], ids=["sequential", "pipelined"])
def relay_server(smtp_server: StartServer, request: pytest.FixtureRequest) -> StartServer:
    """The scripted relay, once plain and once advertising PIPELINING."""

    def start(**options: Any) -> Any:
        server = smtp_server(**options)
        server.handler.pipelining = request.param
        return server

    return start


def test_accepted_message_returns_the_queue_id(relay_server: StartServer, transports: Any) -> None:
    server = relay_server()
    result = transports(server.url()).send(SENDER, "reader@example.com", MESSAGE)
    assert result == SendResult(
        code=250, reply="2.0.0 Ok: queued as 4F3D2", queue_id="4F3D2", enhanced_status="2.0.0"
    )
    (received,) = server.handler.received
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ["reader@example.com"]


def test_amazon_ses_message_id_in_the_reply_is_kept_as_the_queue_id(
    relay_server: StartServer, transports: Any
) -> None:
    ses_id = "0100018c8a0fe8b3-3c8d0b8e-6d1f-4a1d-9a0e-3f1f6c2b9a10-000000"
    server = relay_server()
    server.handler.data_answers["reader@example.com"] = f"250 Ok {ses_id}"

    result = transports(server.url()).send(SENDER, "reader@example.com", MESSAGE)

    assert (result.code, result.queue_id) == (250, ses_id)


def test_lines_starting_with_dots_arrive_intact(relay_server: StartServer, transports: Any) -> None:
    server = relay_server()
    transport = transports(server.url())
    transport.send(SENDER, "a@example.com", MESSAGE)
    transport.send(SENDER, "b@example.com", b".leading dot\r\n.\r\n" + MESSAGE)
    first, second = server.handler.received
    assert first.content == MESSAGE
    assert second.content == b".leading dot\r\n.\r\n" + MESSAGE


def test_many_messages_share_one_connection(relay_server: StartServer, transports: Any) -> None:
    server = relay_server()
    transport = transports(server.url())
    for n in range(50):
        transport.send(SENDER, f"reader{n}@example.com", MESSAGE)
    assert len(server.handler.received) == 50
    assert len(server.handler.peers) == 1


@pytest.mark.parametrize(
    ("reply", "error", "code", "enhanced"),
    [
        ("451 4.3.0 Try again later", TransientDeliveryError, 451, "4.3.0"),
        ("452 4.2.2 Mailbox full", TransientDeliveryError, 452, "4.2.2"),
        ("550 5.1.1 No such user", PermanentDeliveryError, 550, "5.1.1"),
        ("554 Rejected", PermanentDeliveryError, 554, None),
    ],
)
def test_rcpt_replies_map_to_errors_and_the_connection_goes_on(
    relay_server: StartServer,
    transports: Any,
    reply: str,
    error: type[Exception],
    code: int,
    enhanced: str | None,
) -> None:
    server = relay_server()
    server.handler.rcpt_answers["bad@example.com"] = reply
    transport = transports(server.url())
    transport.send(SENDER, "first@example.com", MESSAGE)
    with pytest.raises(error) as raised:
        transport.send(SENDER, "bad@example.com", MESSAGE)
    assert not isinstance(raised.value, RelayUnavailableError)
    assert (raised.value.code, raised.value.enhanced_status) == (code, enhanced)  # type: ignore[attr-defined]
    transport.send(SENDER, "after@example.com", MESSAGE)  # RSET left the session usable
    assert [r.rcpt_tos for r in server.handler.received] == [
        ["first@example.com"],
        ["after@example.com"],
    ]
    assert len(server.handler.peers) == 1


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("452 4.3.1 Out of storage", TransientDeliveryError),
        ("554 5.6.0 Bad content", PermanentDeliveryError),
    ],
)
def test_end_of_data_replies_map_to_errors(
    relay_server: StartServer, transports: Any, reply: str, error: type[Exception]
) -> None:
    server = relay_server()
    server.handler.data_answers["bad@example.com"] = reply
    transport = transports(server.url())
    with pytest.raises(error):
        transport.send(SENDER, "bad@example.com", MESSAGE)
    transport.send(SENDER, "good@example.com", MESSAGE)
    assert len(server.handler.received) == 1


def test_421_means_the_relay_is_unavailable_and_the_next_send_reconnects(
    relay_server: StartServer, transports: Any
) -> None:
    server = relay_server()
    server.handler.rcpt_answers["busy@example.com"] = "421 4.7.0 Too many connections"
    transport = transports(server.url())
    with pytest.raises(RelayUnavailableError) as raised:
        transport.send(SENDER, "busy@example.com", MESSAGE)
    assert raised.value.code == 421
    transport.send(SENDER, "good@example.com", MESSAGE)
    assert len(server.handler.peers) == 2


@pytest.mark.parametrize(("where", "maybe_delivered"), [("rcpt", False), ("data", True)])
def test_a_dropped_connection_is_transient_then_reconnects(
    relay_server: StartServer, transports: Any, where: str, maybe_delivered: bool
) -> None:
    server = relay_server()
    getattr(server.handler, f"drop_on_{where}").add("drop@example.com")
    transport = transports(server.url())
    transport.send(SENDER, "before@example.com", MESSAGE)
    with pytest.raises(RelayUnavailableError) as raised:
        transport.send(SENDER, "drop@example.com", MESSAGE)
    assert isinstance(raised.value, TransientDeliveryError)
    assert raised.value.code is None
    assert raised.value.maybe_delivered is maybe_delivered
    transport.send(SENDER, "after@example.com", MESSAGE)
    assert [r.rcpt_tos[0] for r in server.handler.received] == [
        "before@example.com",
        "after@example.com",
    ]
    assert len(server.handler.peers) == 2


def test_an_idle_connection_the_relay_closed_is_reopened_without_an_error(
    relay_server: StartServer, transports: Any
) -> None:
    server = relay_server()
    transport = transports(server.url())
    transport.send(SENDER, "first@example.com", MESSAGE)
    server.handler.mail_answers.append("421 4.4.2 Idle timeout, closing")
    transport.send(SENDER, "second@example.com", MESSAGE)
    assert [r.rcpt_tos[0] for r in server.handler.received] == [
        "first@example.com",
        "second@example.com",
    ]
    assert len(server.handler.peers) == 2


def test_421_on_a_fresh_connection_is_relay_unavailable(
    relay_server: StartServer, transports: Any
) -> None:
    server = relay_server()
    server.handler.mail_answers.append("421 4.3.2 Shutting down")
    with pytest.raises(RelayUnavailableError):
        transports(server.url()).send(SENDER, "first@example.com", MESSAGE)


def test_a_refused_connection_is_relay_unreachable(transports: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        transport = transports(SmtpUrl("smtp", "127.0.0.1", port, None, None))
        with pytest.raises(RelayUnreachableError):
            transport.send(SENDER, "reader@example.com", MESSAGE)


@pytest.mark.parametrize(
    "recipient",
    ["a@x\r\nRCPT TO:<evil@example.com>", "two words@example.com", "a@b>", "", "x" * 300 + "@a.b"],
)
def test_unusable_recipients_are_refused_before_any_smtp_command(
    relay_server: StartServer, transports: Any, recipient: str
) -> None:
    server = relay_server()
    with pytest.raises(PermanentDeliveryError) as raised:
        transports(server.url()).send(SENDER, recipient, MESSAGE)
    assert raised.value.enhanced_status == "5.1.3"
    assert server.handler.peers == set()


def test_an_unusable_envelope_sender_is_a_config_error(
    relay_server: StartServer, transports: Any
) -> None:
    server = relay_server()
    with pytest.raises(ConfigError):
        transports(server.url()).send("b@x\r\nRSET", "reader@example.com", MESSAGE)
    assert server.handler.peers == set()


def test_8bitmime_is_reported_and_used_for_8bit_messages(
    relay_server: StartServer, transports: Any
) -> None:
    server = relay_server()
    transport = transports(server.url())
    assert transport.eight_bit is True
    transport.send(SENDER, "reader@example.com", "Subject: é\r\n\r\nСом\r\n".encode())
    assert server.handler.received[0].mail_options == ["BODY=8BITMIME"]


def test_without_8bitmime_an_8bit_message_is_refused(
    relay_server: StartServer, transports: Any
) -> None:
    server = relay_server(decode_data=True)  # aiosmtpd then does not offer 8BITMIME
    transport = transports(server.url())
    assert transport.eight_bit is False
    with pytest.raises(InvalidInput):
        transport.send(SENDER, "reader@example.com", "Subject: é\r\n\r\nСом\r\n".encode())
    transport.send(SENDER, "reader@example.com", MESSAGE)
    assert server.handler.received[0].mail_options == []


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtp"])
def test_starttls_upgrades_before_any_message(
    relay_server: StartServer, transports: Any, tls_files: Any, scheme: str
) -> None:
    # require_starttls: the server refuses MAIL on a clear-text session.
    server = relay_server(tls_context=tls_files.server_context(), require_starttls=True)
    transport = transports(
        server.url(scheme), require_tls=True, ssl_context=tls_files.client_context()
    )
    transport.send(SENDER, "reader@example.com", MESSAGE)
    transport.send(SENDER, "reader2@example.com", MESSAGE)
    assert len(server.handler.received) == 2
    assert len(server.handler.peers) == 1


def test_smtps_is_tls_from_the_first_byte(
    relay_server: StartServer, transports: Any, tls_files: Any
) -> None:
    server = relay_server(ssl_context=tls_files.server_context())
    transport = transports(
        server.url("smtps"), require_tls=True, ssl_context=tls_files.client_context()
    )
    transport.send(SENDER, "reader@example.com", MESSAGE)
    assert len(server.handler.received) == 1


def test_an_untrusted_certificate_is_a_config_error(
    relay_server: StartServer, transports: Any, tls_files: Any
) -> None:
    server = relay_server(tls_context=tls_files.server_context())
    transport = transports(server.url("smtp+starttls"), require_tls=True)  # system CAs only
    with pytest.raises(ConfigError, match="certificate"):
        transport.send(SENDER, "reader@example.com", MESSAGE)
    assert server.handler.received == []


def test_credentials_log_in_after_starttls(
    relay_server: StartServer, transports: Any, tls_files: Any, smtp_auth: Any
) -> None:
    server = relay_server(
        tls_context=tls_files.server_context(), authenticator=smtp_auth.check, auth_required=True
    )
    url = server.url("smtp+starttls", smtp_auth.username, smtp_auth.password)
    transport = transports(url, require_tls=True, ssl_context=tls_files.client_context())
    transport.send(SENDER, "reader@example.com", MESSAGE)
    assert len(server.handler.received) == 1
    assert smtp_auth.logins == [smtp_auth.username]


def test_credentials_for_a_relay_without_auth_are_a_config_error(
    relay_server: StartServer, transports: Any
) -> None:
    server = relay_server()
    transport = transports(server.url("smtp", "user", "pass"))
    with pytest.raises(ConfigError, match="log in"):
        transport.send(SENDER, "reader@example.com", MESSAGE)


def test_wrong_credentials_are_a_config_error(
    relay_server: StartServer, transports: Any, tls_files: Any, smtp_auth: Any
) -> None:
    server = relay_server(
        tls_context=tls_files.server_context(), authenticator=smtp_auth.check, auth_required=True
    )
    url = server.url("smtp+starttls", smtp_auth.username, "wrong")
    transport = transports(url, require_tls=True, ssl_context=tls_files.client_context())
    with pytest.raises(ConfigError, match="log in"):
        transport.send(SENDER, "reader@example.com", MESSAGE)
    assert server.handler.received == []


def test_require_tls_refuses_a_server_without_starttls(
    relay_server: StartServer, transports: Any
) -> None:
    server = relay_server()
    for scheme in ("smtp", "smtp+starttls"):
        transport = transports(server.url(scheme), require_tls=scheme == "smtp")
        with pytest.raises(ConfigError, match="STARTTLS"):
            transport.send(SENDER, "reader@example.com", MESSAGE)
    assert server.handler.peers == set()  # no MAIL FROM, so no message, went out


def test_memory_transport_follows_the_same_contract() -> None:
    transport: Transport = MemoryTransport()
    assert isinstance(transport, MemoryTransport)
    transport.answer("full@example.com", 452, "4.2.2 Mailbox full")
    transport.answer("example.net", 550, "5.1.1 No such user")
    transport.answer("busy.example", 421, "4.7.0 Try later")
    transport.drop("down.example", maybe_delivered=True)
    result = transport.send(SENDER, "ok@example.com", MESSAGE)
    assert result.code == 250
    assert result.queue_id
    with pytest.raises(TransientDeliveryError) as transient:
        transport.send(SENDER, "full@example.com", MESSAGE)
    assert (transient.value.code, transient.value.enhanced_status) == (452, "4.2.2")
    with pytest.raises(PermanentDeliveryError):
        transport.send(SENDER, "anyone@example.net", MESSAGE)
    with pytest.raises(RelayUnavailableError):
        transport.send(SENDER, "x@busy.example", MESSAGE)
    with pytest.raises(RelayUnavailableError) as dropped:
        transport.send(SENDER, "x@down.example", MESSAGE)
    assert dropped.value.maybe_delivered
    with pytest.raises(PermanentDeliveryError):
        transport.send(SENDER, "a@x\r\nRCPT TO:<evil@example.com>", MESSAGE)
    assert [m.recipient for m in transport.sent] == ["ok@example.com"]
