"""The mailbox poller (``newsletter bounces poll``): fetch bounces from IMAP or POP3.

For each message: fetch, store the raw bytes and commit (``store``), *then* acknowledge it at
the server (IMAP: move to a "Processed" folder, or flag \\Deleted and expunge; POP3: DELE), and
only after that is it processed (by the caller, with the ids returned). Two pollers on the same
mailbox are safe: a message both fetched is stored once (the SHA-256 dedupe) and processed
once, and on IMAP a message the other poller already moved is simply skipped (UIDs, not
sequence numbers, so a vanished message cannot shift which one we acknowledge).

Parsing is not done here: a message the parser chokes on, or takes long over, must not hold up
storing and acknowledging the rest. ``processing`` parses the stored bytes afterwards.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import poplib
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from newsletter.bounces.parse import MAX_MESSAGE_BYTES
from newsletter.errors import ConfigError, InvalidInput, NewsletterError

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995}
PROCESSED_FOLDER = "Processed"
MAX_MESSAGES_PER_POLL = 1000  # a run ends in bounded time; the next run takes the rest
TIMEOUT_SECONDS = 60.0
_UIDS = re.compile(rb"\d+")

# Store one fetched message and commit; return the stored id. Raises if it was not stored,
# and then the message is not acknowledged (it stays on the server for the next run).
Store = Callable[[bytes], int]


@dataclass(frozen=True, slots=True)
class MailboxUrl:
    """``imaps://user:pass@host:993/INBOX`` or ``pop3s://user:pass@host``."""

    scheme: str
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"

    @property
    def tls(self) -> bool:
        return self.scheme.endswith("s")


@dataclass(frozen=True, slots=True)
class PollResult:
    fetched: int = 0
    acknowledged: int = 0
    vanished: int = 0  # gone before we could fetch or move it: another poller has it
    stored_ids: tuple[int, ...] = field(default_factory=tuple)
    # Over the size limit of a bounce: not stored, and left on the server for a person (a
    # store that raised would stop every later poll at the same message).
    refused: int = 0


def _oversized(raw: bytes, where: str) -> bool:
    if len(raw) <= MAX_MESSAGE_BYTES:
        return False
    log.warning("%s: %d bytes, over the bounce size limit; left on the server", where, len(raw))
    return True


def parse_mailbox_url(value: str) -> MailboxUrl:
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidInput(
            f"mailbox URL must start with imap://, imaps://, pop3:// or pop3s://: {value!r}"
        )
    if not parts.hostname or parts.username is None or parts.password is None:
        raise InvalidInput("mailbox URL needs user, password and host: scheme://user:pass@host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise InvalidInput(f"bad port in mailbox URL: {exc}") from exc
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return MailboxUrl(
        scheme, parts.hostname, port, unquote(parts.username), unquote(parts.password), folder
    )


def poll(url: MailboxUrl, store: Store, *, limit: int = MAX_MESSAGES_PER_POLL) -> PollResult:
    """Fetch, store and acknowledge up to ``limit`` messages; foreign errors translated."""
    try:
        if url.scheme.startswith("imap"):
            return _poll_imap(url, store, limit)
        return _poll_pop3(url, store, limit)
    except (imaplib.IMAP4.error, poplib.error_proto) as exc:
        text = str(exc)
        if "auth" in text.lower() or "login" in text.lower() or "password" in text.lower():
            raise ConfigError(f"{url.scheme}://{url.host}: login refused: {text}") from exc
        raise NewsletterError(f"{url.scheme}://{url.host}: {text}") from exc
    except (OSError, EOFError) as exc:
        raise NewsletterError(f"{url.scheme}://{url.host}:{url.port}: {exc}") from exc


# --- IMAP ------------------------------------------------------------------------------------


def _poll_imap(url: MailboxUrl, store: Store, limit: int) -> PollResult:
    conn: imaplib.IMAP4
    if url.tls:
        conn = imaplib.IMAP4_SSL(
            url.host, url.port, ssl_context=ssl.create_default_context(), timeout=TIMEOUT_SECONDS
        )
    else:
        conn = imaplib.IMAP4(url.host, url.port, timeout=TIMEOUT_SECONDS)
    try:
        conn.login(url.user, url.password)
        _, caps = conn.capability()  # after login: servers announce MOVE/UIDPLUS only then
        capabilities = set((caps[0] or b"").decode("ascii", "replace").upper().split())
        typ, _ = conn.select(_quote(url.folder))
        if typ != "OK":
            raise NewsletterError(f"cannot open folder {url.folder!r}")
        _ensure_folder(conn, PROCESSED_FOLDER)
        typ, data = conn.uid("SEARCH", "ALL")
        uids = _UIDS.findall(data[0] or b"") if typ == "OK" and data else []
        fetched = acknowledged = vanished = refused = 0
        stored: list[int] = []
        flagged: list[bytes] = []
        for uid in uids[:limit]:
            raw = _fetch(conn, uid)
            if raw is None:
                vanished += 1
                continue
            fetched += 1
            if _oversized(raw, f"{url.folder} UID {uid.decode('ascii')}"):
                refused += 1
                continue
            stored.append(store(raw))  # committed before the message leaves the folder
            if _acknowledge(conn, uid, capabilities, flagged):
                acknowledged += 1
            else:
                vanished += 1
        if flagged:
            if "UIDPLUS" in capabilities:
                conn.uid("EXPUNGE", b",".join(flagged).decode("ascii"))
            else:
                conn.expunge()
        return PollResult(fetched, acknowledged, vanished, tuple(stored), refused)
    finally:
        # The work is done and stored; a failed goodbye loses nothing.
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ensure_folder(conn: imaplib.IMAP4, folder: str) -> None:
    typ, data = conn.list('""', _quote(folder))
    if typ == "OK" and data and data[0]:
        return
    conn.create(_quote(folder))  # NO when another poller created it meanwhile: fine


def _fetch(conn: imaplib.IMAP4, uid: bytes) -> bytes | None:
    """The message with ``uid``, or None if it is gone (moved by another poller)."""
    typ, data = conn.uid("FETCH", uid.decode("ascii"), "(BODY.PEEK[])")
    if typ != "OK":
        return None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _acknowledge(
    conn: imaplib.IMAP4, uid: bytes, capabilities: set[str], flagged: list[bytes]
) -> bool:
    """Move the message out of the inbox; False if another poller already did."""
    uid_text = uid.decode("ascii")
    if "MOVE" in capabilities:
        typ, _ = conn.uid("MOVE", uid_text, _quote(PROCESSED_FOLDER))
        # A UID that no longer exists is "OK" with nothing moved (RFC 6851 §3.3) or "NO".
        return typ == "OK" and _moved(conn, uidplus="UIDPLUS" in capabilities)
    typ, _ = conn.uid("COPY", uid_text, _quote(PROCESSED_FOLDER))
    if typ != "OK":
        return False
    typ, _ = conn.uid("STORE", uid_text, "+FLAGS.SILENT", r"(\Deleted)")
    if typ == "OK":
        flagged.append(uid)
    return typ == "OK"


def _moved(conn: imaplib.IMAP4, *, uidplus: bool) -> bool:
    # A MOVE that moved something reports COPYUID (UIDPLUS servers) and the source's EXPUNGE;
    # a MOVE of a UID already gone is a bare OK. Both are popped so the next MOVE is judged on
    # its own responses. The EXPUNGEs of another poller's moves arrive here too, so with
    # UIDPLUS only COPYUID counts; without it the count is a guess (and only a count).
    _, copied = conn.response("COPYUID")
    _, expunged = conn.response("EXPUNGE")
    if uidplus:
        return bool(copied and copied[0] is not None)
    return bool(expunged and expunged[0] is not None)


# --- POP3 ------------------------------------------------------------------------------------


class _LongLines(poplib.POP3):
    """poplib refuses any line over 2,048 bytes ("line too long") and leaves the connection in
    the middle of the message, so one returned message with its HTML part on a single line
    would stop every later poll there. A line may be as long as a whole bounce may be; a
    message over that size is refused as oversized (``_oversized``) like any other."""

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline(MAX_MESSAGE_BYTES + 2)
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line.endswith(b"\r\n"):
            return line[:-2], octets
        if line.startswith(b"\r"):
            return line[1:-1], octets
        return line.removesuffix(b"\n"), octets


class _LongLinesTls(_LongLines, poplib.POP3_SSL):
    pass


def _poll_pop3(url: MailboxUrl, store: Store, limit: int) -> PollResult:
    conn: poplib.POP3
    if url.tls:
        conn = _LongLinesTls(
            url.host, url.port, context=ssl.create_default_context(), timeout=TIMEOUT_SECONDS
        )
    else:
        conn = _LongLines(url.host, url.port, timeout=TIMEOUT_SECONDS)
    try:
        conn.user(url.user)
        conn.pass_(url.password)
        count, _ = conn.stat()
        fetched = acknowledged = vanished = refused = 0
        stored: list[int] = []
        for number in range(1, min(count, limit) + 1):
            try:
                _, lines, _ = conn.retr(number)
            except poplib.error_proto:
                vanished += 1  # deleted by a concurrent session
                continue
            fetched += 1
            raw = b"\r\n".join(lines) + b"\r\n"
            if _oversized(raw, f"POP3 message {number}"):
                refused += 1
                continue
            stored.append(store(raw))  # committed before DELE
            conn.dele(number)
            acknowledged += 1
        conn.quit()  # deletions take effect only here
        return PollResult(fetched, acknowledged, vanished, tuple(stored), refused)
    except BaseException:
        # Without QUIT the server keeps every message (RFC 1939 §6): nothing is lost, and
        # what we stored is deduplicated when it is fetched again.
        conn.close()
        raise
