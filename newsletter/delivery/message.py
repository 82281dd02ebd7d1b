"""The bytes of each subscriber's email: MIME built once per campaign, then spliced per recipient.

``MessageTemplate.build`` runs once per campaign. It encodes every campaign-wide header with
``email.message.EmailMessage`` under ``policy.SMTP`` (RFC 2047 words, folding, CR/LF refused:
SEC-01), and turns the rendered HTML and text (which carry ``%%NL.field%%`` markers, see
``newsletter.render.personalise``) into pre-encoded byte chunks: quoted-printable and, where the
lines allow it, 8bit. ``MessageTemplate.render`` then only encodes the few per-recipient values
and joins bytes, which costs microseconds instead of the milliseconds of an ``EmailMessage`` per
recipient (docs/benchmarks.md, "Building each recipient's message").

How the quoted-printable body stays correct while values are spliced in: each static chunk is
encoded on its own, and every value sits between two soft line breaks (``=\\r\\n``). A decoder
joins the lines back, so the decoded text is exactly chunk + value + chunk, while every encoded
line stays within 76 octets whatever the value. MRML's 14,000-character HTML lines therefore
never reach the wire (MSG-03), and no byte above 0x7f is sent unless the relay offers 8BITMIME
(MSG-04).

The output is CRLF-terminated bytes ready for SMTP DATA, not yet dot-stuffed (the transport
does that) and not yet DKIM-signed (``newsletter.delivery.dkim`` does that, last: DKIM-04).

Pure: no clock (the send time is passed in), no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Literal

from newsletter.delivery.recipient import carries
from newsletter.errors import InvalidInput
from newsletter.render.personalise import LINE_BREAKS, PersonalTemplate

MAX_LINE_OCTETS = 998  # RFC 5322 §2.1.1, excluding the CRLF
QP_LINE_OCTETS = 76  # RFC 2045 §6.7 (5)
MAX_NAME_CHARS = 128  # longer display names are cut, so a To line can never grow unbounded
MAX_URI_OCTETS = 900  # one List-Unsubscribe URI per line must still fit in 998 octets
_EW_OCTETS = 45  # UTF-8 octets per encoded word: 60 base64 characters + 12 of "=?utf-8?b?…?="
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058 §3.1, byte for byte

# Characters that end a line somewhere (Python's str.splitlines, some mail clients) or are
# control characters: none may reach a header or a body value as-is (SEC-01).
_UNSAFE_HEADER_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[A-Za-z0-9.-]+>")  # msg-id without CFWS or "<>"
_URI = re.compile(r"[!-;=?-~]+")  # printable ASCII without "<" and ">": cannot leave its <…>
_LIST_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+")
# "<d42.c7.0123456789ab@news.example.org>", as ``message_id`` makes them.
MESSAGE_ID_MAC_CHARS = 12  # 48 bits: guessing one takes ~2**47 reports sent to our bounce domain
_OUR_MESSAGE_ID = re.compile(
    rf"<d(\d{{1,19}})\.c(\d{{1,19}})\.([0-9a-fA-F]{{{MESSAGE_ID_MAC_CHARS}}})@[^<>@\s]+>"
)
_FEEDBACK_ID = re.compile(r"[!-9;-~]*:[!-9;-~]*:[!-9;-~]*:[A-Za-z0-9._-]{5,15}")


@dataclass(frozen=True, slots=True)
class CampaignHeaders:
    """The headers every recipient of one campaign gets, unchanged."""

    from_address: Address
    subject: str
    list_id: str  # dot-atom under our domain, stable across issues: "weekly.lists.example.org"
    list_name: str  # its human name, shown as the List-Id phrase
    feedback_id: str  # "<campaign>:<list>:<tenant>:<sender>"; no per-recipient values (MSG-16)
    reply_to: Address | None = None
    precedence: Literal["bulk", "list"] = "bulk"


@dataclass(frozen=True, slots=True)
class RecipientValues:
    """What differs per recipient: the To mailbox, the ids and the personal links."""

    email: str
    name: str
    message_id: str  # "<…@sending-domain>", from ``message_id()``
    unsubscribe_url: str  # https:// one-click URL (http:// allowed for development, no -Post)
    view_url: str
    unsubscribe_mailto: str | None = None  # "mailto:…"


def message_id(delivery_id: int, campaign_id: int, domain: str, secret: str) -> str:
    """A deterministic Message-ID for one delivery: the same on a retry, unique per recipient.

    The short HMAC makes ids unguessable and lets a complaint that quotes only the Message-ID be
    traced back to its delivery without trusting the sender of the complaint (BNC-07): see
    ``delivery_of_message_id``.
    """
    core = f"d{delivery_id}.c{campaign_id}"
    return f"<{core}.{_message_id_mac(core, secret)}@{domain}>"


def delivery_of_message_id(value: str, secret: str) -> tuple[int, int] | None:
    """(delivery id, campaign id) of a Message-ID we generated, or None if it is not ours.

    A forged or altered id fails its HMAC and is refused before anything is looked up; the
    domain part is not checked (the sending domain may have changed since).
    """
    match = _OUR_MESSAGE_ID.fullmatch(value.strip())
    if match is None:
        return None
    core = f"d{match.group(1)}.c{match.group(2)}"
    if not hmac.compare_digest(match.group(3).lower(), _message_id_mac(core, secret)):
        return None
    return int(match.group(1)), int(match.group(2))


def _message_id_mac(core: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), b"newsletter.msgid." + core.encode(), hashlib.sha256)
    return mac.hexdigest()[:MESSAGE_ID_MAC_CHARS]


@dataclass(frozen=True, slots=True)
class _Body:
    """One text part, pre-encoded. Static pieces alternate with values: piece, value, piece…"""

    content_type: bytes  # the "Content-Type: …" line with its CRLF
    qp_pieces: tuple[bytes, ...]
    # None when some line without markers is already too long (MRML HTML) or holds a NUL.
    eight_bit_pieces: tuple[bytes, ...] | None
    # For each line holding markers: its static octets and the fields on it, to check per
    # recipient that the 8bit line still fits in 998 octets once the values are in.
    marker_lines: tuple[tuple[int, tuple[str, ...]], ...]
    fields: tuple[str, ...]
    unique_fields: frozenset[str]

    @classmethod
    def build(cls, rendered: str, subtype: Literal["plain", "html"], boundary: str) -> _Body:
        # One line-ending convention inside; CRLF is put on at the very end of encoding.
        rendered = rendered.replace("\r\n", "\n").replace("\r", "\n")
        if boundary in rendered:
            raise InvalidInput("the rendered body contains the MIME boundary")
        split = PersonalTemplate.split(rendered, "html" if subtype == "html" else "text")
        chunks = [chunk.encode("utf-8") for chunk in split.chunks]
        last = len(chunks) - 1
        qp = [
            (b"" if i == 0 else b"=\r\n") + _qp(chunk) + (b"" if i == last else b"=\r\n")
            for i, chunk in enumerate(chunks)
        ]
        marker_lines: list[tuple[int, tuple[str, ...]]] = []
        eight_bit_ok = "\x00" not in rendered
        for line in rendered.split("\n"):
            parts = PersonalTemplate.split(line, "text")
            static = sum(len(chunk.encode("utf-8")) for chunk in parts.chunks)
            if parts.fields:
                marker_lines.append((static, parts.fields))
            elif static > MAX_LINE_OCTETS:
                eight_bit_ok = False
        eight_bit = (
            tuple(chunk.replace(b"\n", b"\r\n") for chunk in chunks) if eight_bit_ok else None
        )
        return cls(
            content_type=f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode(),
            qp_pieces=tuple(qp),
            eight_bit_pieces=eight_bit,
            marker_lines=tuple(marker_lines),
            fields=split.fields,
            unique_fields=frozenset(split.fields),
        )

    def encode(self, values: dict[str, str], eight_bit: bool) -> list[bytes]:
        """Part headers and body for one recipient, as pieces to join."""
        raw = {field: values[field].encode("utf-8") for field in self.unique_fields}
        if (
            eight_bit
            and self.eight_bit_pieces is not None
            and all(
                static + sum(len(raw[f]) for f in fields) <= MAX_LINE_OCTETS
                for static, fields in self.marker_lines
            )
        ):
            pieces, encoded = self.eight_bit_pieces, raw
            cte = b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        else:
            pieces, encoded = self.qp_pieces, {f: _qp(v) for f, v in raw.items()}
            cte = b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        out = [self.content_type, cte, pieces[0]]
        for field, piece in zip(self.fields, pieces[1:], strict=True):
            out.append(encoded[field])
            out.append(piece)
        return out


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """One campaign's message, pre-encoded; ``render`` makes each recipient's bytes."""

    static_headers: bytes
    boundary: bytes
    text: _Body
    html: _Body

    @classmethod
    def build(cls, headers: CampaignHeaders, html: str, text: str) -> MessageTemplate:
        """Encode the campaign headers and both bodies once. Raises InvalidInput."""
        # Random per campaign, so neither an editor nor a subscriber's name can contain it;
        # "=_" can never occur in quoted-printable output (RFC 2045 §6.7).
        boundary = f"=_nl{secrets.token_hex(16)}"
        return cls(
            static_headers=_campaign_headers(headers, boundary),
            boundary=boundary.encode("ascii"),
            text=_Body.build(text, "plain", boundary),
            html=_Body.build(html, "html", boundary),
        )

    def render(self, r: RecipientValues, *, date: datetime, eight_bit: bool) -> bytes:
        """The complete message for one recipient (CRLF, not dot-stuffed, not signed).

        ``date`` is the send time and must carry a time zone. With ``eight_bit`` (the relay
        advertised 8BITMIME) a part goes out as 8bit when all its lines fit, otherwise it stays
        quoted-printable. When the message is DKIM-signed, pass ``eight_bit=False`` anyway: a
        relay that later downgrades 8bit to quoted-printable for a hop without 8BITMIME breaks
        the body hash (RFC 6376 §5.3), and 7bit costs the same here and ~4 % more bytes.
        Raises InvalidInput for an unusable address, URL or Message-ID.
        """
        if date.tzinfo is None:
            raise InvalidInput("the Date must carry a time zone")
        if not carries(r.email, smtputf8=True):
            raise InvalidInput(f"unusable recipient address {r.email!r}")
        if not _MESSAGE_ID.fullmatch(r.message_id):
            raise InvalidInput(f"malformed Message-ID {r.message_id!r}")
        name = _clean(r.name)
        if len(name) > MAX_NAME_CHARS:
            name = name[:MAX_NAME_CHARS].rstrip()
        values = {
            "name": name,
            "email": r.email,
            "unsubscribe_url": _uri(r.unsubscribe_url, ("https://", "http://")),
            "view_url": _uri(r.view_url, ("https://", "http://")),
        }
        escaped = {field: html.escape(value, quote=True) for field, value in values.items()}
        boundary = self.boundary
        return b"".join(
            [
                self.static_headers,
                b"To: ",
                _mailbox(name, r.email),
                b"\r\nDate: ",
                format_datetime(date).encode("ascii"),
                b"\r\nMessage-ID: ",
                r.message_id.encode("ascii"),
                b"\r\n",
                _list_unsubscribe(values["unsubscribe_url"], r.unsubscribe_mailto),
                b"\r\n--",
                boundary,
                b"\r\n",
                *self.text.encode(values, eight_bit),
                b"\r\n--",
                boundary,
                b"\r\n",
                *self.html.encode(escaped, eight_bit),
                b"\r\n--",
                boundary,
                b"--\r\n",
            ]
        )


def _campaign_headers(h: CampaignHeaders, boundary: str) -> bytes:
    """The campaign-wide header lines, encoded and folded by the email package, with CRLFs."""
    for label, text in (
        ("subject", h.subject),
        ("list name", h.list_name),
        ("From name", h.from_address.display_name),
        ("Reply-To name", h.reply_to.display_name if h.reply_to else ""),
    ):
        if _UNSAFE_HEADER_CHARS.search(text):
            raise InvalidInput(f"the {label} contains a line break or control character")
    if not _LIST_ID.fullmatch(h.list_id) or len(h.list_id) > 255:
        raise InvalidInput(f"List-Id {h.list_id!r} is not a dot-atom of at most 255 octets")
    if not _FEEDBACK_ID.fullmatch(h.feedback_id):
        raise InvalidInput(f"Feedback-ID {h.feedback_id!r} is not campaign:list:tenant:sender")
    if h.list_name.isascii():
        list_label = '"' + h.list_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        # Unquoted, so the policy may encode it as RFC 2047 words (not allowed inside quotes).
        list_label = h.list_name
    message = EmailMessage(policy=SMTP)
    try:
        message["From"] = h.from_address
        if h.reply_to is not None:
            message["Reply-To"] = h.reply_to
        message["Subject"] = h.subject
        message["MIME-Version"] = "1.0"
        message["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
        message["List-Id"] = f"{list_label} <{h.list_id}>"
        message["Feedback-ID"] = h.feedback_id
        message["Precedence"] = h.precedence
        # fold_binary is what as_bytes() runs per header: RFC 2047 for non-ASCII, CRLF folding.
        return b"".join(SMTP.fold_binary(name, value) for name, value in message.items())
    except (ValueError, TypeError, IndexError) as exc:
        raise InvalidInput(f"campaign header cannot be encoded: {exc}") from exc


def _mailbox(name: str, email: str) -> bytes:
    """``"Name" <addr>`` for the To header, RFC 2047-encoded when the name is not ASCII (SEC-02)."""
    # UTF-8 only for a non-ASCII local part, which goes out with SMTPUTF8 (RFC 6532 headers).
    if not name:
        return email.encode()
    if name.isascii():
        # Always a quoted-string: then no character in the name (",", "<", "=?…?=") can be read
        # as a second mailbox or an encoded word.
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{email}>'.encode()
    return f"{_encoded_words(name)} <{email}>".encode()


def _encoded_words(text: str) -> str:
    """RFC 2047 "B" words of at most 75 characters, split after spaces, folded with CRLF + SP.

    Each space stays inside the word before it: decoders drop the whitespace *between* adjacent
    encoded words (RFC 2047 §6.2), so a space placed there would vanish. The stdlib folder
    (``Header``, ``policy.SMTP``) splits mid-word instead and costs 1–8 ms for a long name.
    """
    chunks: list[str] = []
    current = ""
    for char in text:
        if len((current + char).encode("utf-8")) > _EW_OCTETS:
            head, space, tail = current.rpartition(" ")
            if space and head:  # break after the last space, carrying the tail over
                chunks.append(head + space)
                current = tail
            else:
                chunks.append(current)
                current = ""
        current += char
    chunks.append(current)
    return "\r\n ".join(
        "=?utf-8?b?" + base64.b64encode(chunk.encode("utf-8")).decode("ascii") + "?="
        for chunk in chunks
    )


def _list_unsubscribe(url: str, mailto: str | None) -> bytes:
    """List-Unsubscribe (MSG-10), and -Post only when there is an https URI (MSG-11)."""
    uris = [f"<{url}>"]
    if mailto is not None:
        uris.append(f"<{_uri(mailto, ('mailto:',))}>")
    # One URI per line: each fits in 998 octets however long the other is.
    line = "List-Unsubscribe: " + ",\r\n ".join(uris) + "\r\n"
    if url.startswith("https://"):
        line += f"List-Unsubscribe-Post: {ONE_CLICK}\r\n"
    return line.encode("ascii")


def _uri(value: str, schemes: tuple[str, ...]) -> str:
    if not value.startswith(schemes) or not _URI.fullmatch(value) or len(value) > MAX_URI_OCTETS:
        raise InvalidInput(f"unusable URI {value!r}: expected {' or '.join(schemes)}…")
    return value


def _clean(value: str) -> str:
    # A subscriber's name is stored as given: never let it break a line or carry control bytes.
    return _CONTROL_CHARS.sub("", LINE_BREAKS.sub(" ", value)).strip()


def _qp(data: bytes) -> bytes:
    """Quoted-printable (C speed) with CRLF lines of at most 75 octets and no leading ".".

    75, not 76: the caller may end the last line with one more soft break. No line starts with
    "." so the transport's dot-stuffing finds nothing to do and skips its costly replace
    (docs/benchmarks.md, "Dot-stuffing"); b2a_qp itself happily breaks "example.org" before the dot.
    """
    out = binascii.b2a_qp(data, istext=True)
    if b"\n." in out or out.startswith(b".") or len(out) - out.rfind(b"\n") > QP_LINE_OCTETS:
        out = _rewrap(out)
    return out.replace(b"\n", b"\r\n")


def _rewrap(encoded: bytes) -> bytes:
    """Re-break quoted-printable lines (LF) at 75 octets, never before a "." or inside "=XX"."""
    width = QP_LINE_OCTETS - 1
    lines: list[bytes] = []
    # "=" is always escaped as "=3D", so "=\n" can only be a soft line break.
    for line in encoded.replace(b"=\n", b"").split(b"\n"):
        if line.startswith(b"."):
            line = b"=2E" + line[1:]
        while len(line) > width:
            cut = width
            while cut > 3 and (
                line[cut - 1 : cut] == b"="
                or line[cut - 2 : cut - 1] == b"="
                or line[cut : cut + 1] == b"."
            ):
                cut -= 1
            lines.append(line[:cut] + b"=")
            line = line[cut:]
            if line.startswith(b"."):  # only after a run of dots: escape rather than loop
                line = b"=2E" + line[1:]
        lines.append(line)
    return b"\n".join(lines)
