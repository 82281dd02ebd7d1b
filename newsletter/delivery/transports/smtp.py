"""The SMTP relay transport: one reused smtplib connection, low-level commands, fast dot-stuffing.

``smtplib.SMTP.sendmail`` dot-stuffs every message with a regex that costs four times our usual
case, about a quarter of a message's CPU (docs/benchmarks.md, "Dot-stuffing"), so ``send`` speaks
MAIL / RCPT / DATA itself and stuffs with one ``bytes.replace``. The connection opens on first
use, is reused for every message, and is reopened on the next send after it broke.

TLS (AUTH-04): ``smtps://`` is TLS from the start, ``smtp+starttls://`` must upgrade or we refuse,
and plain ``smtp://`` upgrades only when ``require_tls`` is set and the server offers STARTTLS.
With ``require_tls`` no byte of a message is sent unless the socket is encrypted: the refusal is
a ``ConfigError`` (raised before any MAIL command), because it is the relay or our settings that
must change, not the recipient; a ``PermanentDeliveryError`` would wrongly mark subscribers
failed and a transient one would retry forever. Certificates are verified (pass an
``ssl_context`` to trust a private CA).

Not thread-safe: one transport per worker thread.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from types import TracebackType

from newsletter.config import SmtpUrl
from newsletter.delivery.transports import (
    RelayUnavailableError,
    RelayUnreachableError,
    SendResult,
    check_recipient,
    check_sender,
)
from newsletter.errors import (
    ConfigError,
    InvalidInput,
    PermanentDeliveryError,
    TransientDeliveryError,
)

SERVICE_NOT_AVAILABLE = 421  # the server is closing the connection (RFC 5321 §4.2.2)
_ENHANCED_STATUS = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")
# Postfix/Sendmail-style "queued as 4F3D2", Exim-style "id=1tXyZa-000Abc-Q1", and Amazon SES's
# "Ok 0100018c…-000000": the id its webhooks name the message by (bounces.matching).
_QUEUE_ID = re.compile(
    r"queued as ([A-Za-z0-9][\w.-]*)|\bid=([A-Za-z0-9][\w.-]*)"
    r"|^(?:\d\.\d\.\d\s+)?Ok\s+([0-9a-f]{16}-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}-[0-9a-f]{6})\b",
    re.IGNORECASE,
)


_LINE_STARTS_WITH_DOT = re.compile(rb"\n\.")


class SmtpTransport:
    """Sends through one SMTP relay over a single persistent connection."""

    def __init__(
        self,
        url: SmtpUrl,
        *,
        require_tls: bool,
        timeout: float = 30.0,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._url = url
        self._require_tls = require_tls
        self._timeout = timeout
        self._local_hostname = local_hostname
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._smtp: smtplib.SMTP | None = None
        self._transactions = 0  # MAIL transactions finished on the current connection

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def eight_bit(self) -> bool:
        """Whether the relay advertised 8BITMIME. Connects first if needed (may raise)."""
        return self._connection().has_extn("8bitmime")

    @property
    def smtputf8(self) -> bool:
        """Whether the relay advertised SMTPUTF8. Connects first if needed (may raise)."""
        return self._connection().has_extn("smtputf8")

    def send(self, envelope_from: str, recipient: str, message: bytes) -> SendResult:
        """Send ``message`` (CRLF line ends, not dot-stuffed) to one recipient.

        Returns the relay's 2xx reply to the end of DATA. Raises ``PermanentDeliveryError`` (5xx,
        or an address SMTP cannot carry), ``TransientDeliveryError`` (4xx for this recipient),
        ``RelayUnavailableError`` (down, dropped, timed out or 421; the next send reconnects) or
        ``ConfigError`` (TLS or credentials).
        """
        check_sender(envelope_from)
        smtp = self._connection()
        utf8 = not recipient.isascii()
        check_recipient(recipient, smtputf8=utf8 and smtp.has_extn("smtputf8"))
        options: list[str] = ["SMTPUTF8"] if utf8 else []
        if not message.isascii():
            if not smtp.has_extn("8bitmime"):
                raise InvalidInput("8bit message for a relay without 8BITMIME; render 7bit")
            options.append("BODY=8BITMIME")
        data_sent = False
        try:
            smtp = self._envelope(smtp, envelope_from, recipient, options)
            smtp.send(_dot_stuffed(message))
            data_sent = True
            code, reply = smtp.getreply()
        except OSError as exc:  # smtplib.SMTPException is an OSError too
            self._drop()
            raise RelayUnavailableError(
                f"connection to the relay lost: {exc}", maybe_delivered=data_sent
            ) from exc
        self._transactions += 1
        text = reply.decode("utf-8", "replace")
        if 200 <= code < 300:
            return SendResult(
                code=code, reply=text, queue_id=_queue_id(text), enhanced_status=_enhanced(text)
            )
        # The transaction is over after the reply to the final dot: no RSET needed.
        raise self._error(code, text, "end of DATA")

    def close(self) -> None:
        """QUIT and forget the connection; the next send opens a new one."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except OSError:
            # Already broken: every transaction on it has been answered or raised, so there is
            # nothing left to lose; just release the socket.
            smtp.close()

    # --- connection -------------------------------------------------------------------------

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        url = self._url
        smtp: smtplib.SMTP | None = None
        try:
            if url.scheme == "smtps":
                smtp = smtplib.SMTP_SSL(
                    url.host,
                    url.port,
                    local_hostname=self._local_hostname,
                    timeout=self._timeout,
                    context=self._ssl_context,
                )
            else:
                smtp = smtplib.SMTP(
                    url.host, url.port, local_hostname=self._local_hostname, timeout=self._timeout
                )
            smtp.ehlo_or_helo_if_needed()
            wants_starttls = url.scheme == "smtp+starttls" or (
                url.scheme == "smtp" and self._require_tls
            )
            if wants_starttls:
                if not smtp.has_extn("starttls"):
                    raise ConfigError(
                        f"relay {url.host}:{url.port} does not offer STARTTLS and TLS is required"
                    )
                smtp.starttls(context=self._ssl_context)
                smtp.ehlo()  # RFC 3207: forget what the server said before TLS and ask again
            if self._require_tls and not isinstance(smtp.sock, ssl.SSLSocket):
                raise ConfigError(f"relay {url.host}:{url.port} connection is not encrypted")
            if url.username is not None:
                try:
                    smtp.login(url.username, url.password or "")
                except smtplib.SMTPServerDisconnected:
                    raise
                except smtplib.SMTPException as exc:
                    # Wrong credentials, no AUTH offered, no common mechanism: the operator's.
                    raise ConfigError(
                        f"relay {url.host}:{url.port} refused to log in: {exc}"
                    ) from exc
        except ConfigError:
            _abandon(smtp)
            raise
        except ssl.SSLCertVerificationError as exc:
            _abandon(smtp)
            raise ConfigError(f"relay {url.host}:{url.port} certificate: {exc}") from exc
        except OSError as exc:  # refused, unreachable, timeout, TLS failure, 421 greeting
            _abandon(smtp)
            raise RelayUnreachableError(_unreachable(url, exc, self._timeout)) from exc
        self._smtp = smtp
        self._transactions = 0
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        _abandon(smtp)

    def _mail(self, envelope_from: str, options: list[str]) -> tuple[smtplib.SMTP, int, bytes]:
        """MAIL FROM, reopening once a connection the relay closed while it sat idle."""
        smtp = self._connection()
        reused = self._transactions > 0
        try:
            code, reply = smtp.mail(envelope_from, options)
        except OSError:
            if not reused:
                raise
            code, reply = SERVICE_NOT_AVAILABLE, b""
        if code == SERVICE_NOT_AVAILABLE and reused:
            # Relays time idle connections out. Nothing of this message has been sent yet, so
            # one more try on a new connection cannot deliver it twice.
            self._drop()
            smtp = self._connection()
            code, reply = smtp.mail(envelope_from, options)
        return smtp, code, reply

    def _envelope(
        self, smtp: smtplib.SMTP, envelope_from: str, recipient: str, options: list[str]
    ) -> smtplib.SMTP:
        """MAIL, RCPT and DATA up to the relay's 354; pipelined when the relay allows it."""
        if smtp.has_extn("pipelining") and self._transactions > 0:
            try:
                return self._pipelined_envelope(smtp, envelope_from, recipient, options)
            except _StaleConnection:
                # The relay timed the idle connection out. Nothing of this message was sent,
                # so one more try on a new connection cannot deliver it twice.
                self._drop()
        smtp, code, reply = self._mail(envelope_from, options)
        self._check(code, reply, "MAIL FROM", (250,))
        code, reply = smtp.rcpt(recipient)
        self._check(code, reply, "RCPT TO", (250, 251))
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        self._check(code, reply, "DATA", (354,))
        return smtp

    def _pipelined_envelope(
        self, smtp: smtplib.SMTP, envelope_from: str, recipient: str, options: list[str]
    ) -> smtplib.SMTP:
        """MAIL, RCPT and DATA in one write, then their three replies (RFC 2920 PIPELINING).

        Saves two round trips per message. Only on a connection that has carried a message
        already; raises ``_StaleConnection`` when that connection turns out to be closed.
        """
        # Both addresses passed check_sender / check_recipient: nothing in them needs quoting,
        # and smtplib.quoteaddr (an RFC 2822 parser) would cost more than the whole message.
        mail = f"MAIL FROM:<{envelope_from}>"
        if options:
            mail += " " + " ".join(options)
        try:
            smtp.send(f"{mail}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode())
            mail_reply = smtp.getreply()
        except OSError as exc:
            raise _StaleConnection from exc
        if mail_reply[0] == SERVICE_NOT_AVAILABLE:
            raise _StaleConnection
        rcpt_reply, data_reply = smtp.getreply(), smtp.getreply()
        if data_reply[0] == 354 and (mail_reply[0] != 250 or rcpt_reply[0] not in (250, 251)):
            # The relay opened DATA although the envelope failed: close it with an empty body
            # so the connection stays in step (RFC 2920 §3.1).
            smtp.send(b".\r\n")
            smtp.getreply()
        self._check(*mail_reply, "MAIL FROM", (250,))
        self._check(*rcpt_reply, "RCPT TO", (250, 251))
        self._check(*data_reply, "DATA", (354,))
        return smtp

    # --- replies ----------------------------------------------------------------------------

    def _check(self, code: int, reply: bytes, stage: str, expected: tuple[int, ...]) -> None:
        if code in expected:
            return
        text = reply.decode("utf-8", "replace")
        error = self._error(code, text, stage)
        if self._smtp is not None:
            try:
                self._smtp.rset()  # end the failed transaction so the next one starts clean
            except OSError:
                # The recipient's answer is already known; a broken connection is simply
                # reopened by the next send.
                self._drop()
        raise error

    def _error(
        self, code: int, text: str, stage: str
    ) -> TransientDeliveryError | PermanentDeliveryError:
        message = f"{stage}: {code} {text}"
        enhanced = _enhanced(text)
        if code == SERVICE_NOT_AVAILABLE or not 400 <= code < 600:
            # 421 closes the connection; anything else unexpected means we lost track of it.
            self._drop()
            return RelayUnavailableError(message, code=code, enhanced_status=enhanced)
        if code < 500:
            return TransientDeliveryError(message, code=code, enhanced_status=enhanced)
        return PermanentDeliveryError(message, code=code, enhanced_status=enhanced)


class _StaleConnection(Exception):  # an internal signal; it never leaves this module
    """A reused connection was closed by the relay before this message's envelope."""


def _dot_stuffed(message: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency plus the end-of-data line, in two C-speed passes.

    Stuffing after every LF (not only CRLF) also defuses "<LF>.<CR><LF>" smuggling tricks.
    """
    if message.startswith(b"."):
        message = b"." + message
    # The search usually fails (our quoted-printable never starts a line with "."); the regex
    # finds that in half the time ``b"\n." in message`` takes on a 60 KB message.
    if _LINE_STARTS_WITH_DOT.search(message):
        message = message.replace(b"\n.", b"\n..")
    return message + (b".\r\n" if message.endswith(b"\r\n") else b"\r\n.\r\n")


def _unreachable(url: SmtpUrl, exc: OSError, timeout: float) -> str:
    """What went wrong in an operator's words: `campaign status` shows it as the reason to wait."""
    relay = f"relay {url.host}:{url.port}"
    if isinstance(exc, ConnectionRefusedError):
        return f"{relay} refused the connection"
    if isinstance(exc, TimeoutError):
        return f"{relay} did not answer within {timeout:g} s"
    return f"cannot reach {relay}: {exc}"


def _enhanced(text: str) -> str | None:
    match = _ENHANCED_STATUS.match(text)
    return match.group(1) if match else None


def _queue_id(text: str) -> str | None:
    match = _QUEUE_ID.search(text)
    if match is None:
        return None
    return match.group(1) or match.group(2) or match.group(3)


def _abandon(smtp: smtplib.SMTP | None) -> None:
    """Close a socket without QUIT: the connection is already unusable or refused."""
    if smtp is not None:
        smtp.close()
