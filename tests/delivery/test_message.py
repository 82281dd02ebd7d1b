"""The per-recipient message bytes, parsed back with the email package and held to MSG-01…18."""

from __future__ import annotations

import dataclasses
import email
import re
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import pytest

from newsletter.delivery.message import (
    ONE_CLICK,
    CampaignHeaders,
    MessageTemplate,
    RecipientValues,
    delivery_of_message_id,
    message_id,
)
from newsletter.errors import InvalidInput

SENT_AT = datetime(2025, 12, 11, 7, 30, tzinfo=UTC)
DOMAIN = "news.example.org"
HEADERS = CampaignHeaders(
    from_address=Address("Central Asia Weekly", "bulletin", DOMAIN),
    reply_to=Address("News Desk", "desk", DOMAIN),
    subject="Digest — ▲",
    list_id="weekly.lists.news.example.org",
    list_name="Central Asia Weekly",
    feedback_id="c42:weekly:main:nlcentasia",
)
# MRML-like: one huge line, non-ASCII, markers inside attributes and text.
HTML = (
    "<!doctype html><html><body><div>"
    + "<p>Tenge — ₸ · Сом</p>" * 700
    + '<p>Hello %%NL.name%%</p><a href="%%NL.view_url%%">view</a>'
    + '<a href="%%NL.unsubscribe_url%%">Unsubscribe</a> %%NL.email%%</div>\n'
    + ".\n.starts with a dot\n</body></html>\n"
)
TEXT = (
    "Hello %%NL.name%%,\n\nRates: tenge ₸ 512.3 — som 87.1\n"
    + "Article line with text\n" * 400
    + "View: %%NL.view_url%%\nUnsubscribe: %%NL.unsubscribe_url%%\nSent to %%NL.email%%\n"
)
DKIM_LIST_UNSUBSCRIBE = re.compile(r"^<[^>]+>(\s*,\s*<[^>]+>)*$")
FEEDBACK_ID = re.compile(r"^[^:]*:[^:]*:[^:]*:[A-Za-z0-9._-]{5,15}$")


def recipient(n: int = 1, name: str = "Aigerim Nurlanovna", **changes: Any) -> RecipientValues:
    values = RecipientValues(
        email=f"reader{n}@example.com",
        name=name,
        message_id=message_id(n, 42, DOMAIN, "secret"),
        unsubscribe_url=f"https://{DOMAIN}/u/tok{n}?list=weekly&x=1",
        view_url=f"https://{DOMAIN}/v/42?r={n}",
        unsubscribe_mailto=f"mailto:unsub+tok{n}@{DOMAIN}",
    )
    return dataclasses.replace(values, **changes)


@pytest.fixture(scope="module")
def template() -> MessageTemplate:
    return MessageTemplate.build(HEADERS, HTML, TEXT)


def render(
    template: MessageTemplate, r: RecipientValues | None = None, *, eight_bit: bool = False
) -> bytes:
    return template.render(r or recipient(), date=SENT_AT, eight_bit=eight_bit)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def content(part: EmailMessage) -> str:
    # The stdlib's quoted-printable decoder keeps the CRLFs of the wire format.
    text: str = part.get_content()
    return text.replace("\r\n", "\n")


def parts(message: EmailMessage) -> list[EmailMessage]:
    return list(message.iter_parts())  # type: ignore[arg-type]


@pytest.mark.parametrize("eight_bit", [False, True])
def test_parts_are_text_then_html_in_utf8(template: MessageTemplate, eight_bit: bool) -> None:
    message = parse(render(template, eight_bit=eight_bit))
    assert message.get_content_type() == "multipart/alternative"
    assert message["MIME-Version"] == "1.0"
    assert [p.get_content_type() for p in parts(message)] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts(message))
    assert not message.defects
    assert all(not p.defects for p in parts(message))


@pytest.mark.parametrize("eight_bit", [False, True])
def test_lines_end_in_crlf_and_never_exceed_998_octets(
    template: MessageTemplate, eight_bit: bool
) -> None:
    raw = render(template, eight_bit=eight_bit)
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert raw.count(b"\r") == raw.count(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_without_8bitmime_every_byte_is_7bit_and_lines_fit_quoted_printable(
    template: MessageTemplate,
) -> None:
    raw = render(template, eight_bit=False)
    assert raw.isascii()
    body = raw.partition(b"\r\n\r\n")[2]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    for part in parts(parse(raw)):
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_with_8bitmime_text_goes_8bit_but_the_long_html_stays_quoted_printable(
    template: MessageTemplate,
) -> None:
    text, html = parts(parse(render(template, eight_bit=True)))
    assert text["Content-Transfer-Encoding"] == "8bit"
    assert html["Content-Transfer-Encoding"] == "quoted-printable"


def test_a_value_that_would_overflow_an_8bit_line_falls_back_to_quoted_printable() -> None:
    template = MessageTemplate.build(
        HEADERS, "<p>%%NL.view_url%%</p>", "x" * 300 + "%%NL.view_url%%"
    )
    url = f"https://{DOMAIN}/v/" + "a" * 800
    raw = render(template, recipient(view_url=url), eight_bit=True)
    text, _ = parts(parse(raw))
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert content(text) == "x" * 300 + url
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@pytest.mark.parametrize("eight_bit", [False, True])
def test_personal_values_appear_decoded_in_both_parts(
    template: MessageTemplate, eight_bit: bool
) -> None:
    r = recipient(7, name="Jöhn <Dœ> & Co")
    text, html = parts(parse(render(template, r, eight_bit=eight_bit)))
    assert content(text) == (
        TEXT.replace("%%NL.name%%", r.name)
        .replace("%%NL.view_url%%", r.view_url)
        .replace("%%NL.unsubscribe_url%%", r.unsubscribe_url)
        .replace("%%NL.email%%", r.email)
    )
    assert content(html) == (
        HTML.replace("%%NL.name%%", "Jöhn &lt;Dœ&gt; &amp; Co")
        .replace("%%NL.view_url%%", r.view_url.replace("&", "&amp;"))
        .replace("%%NL.unsubscribe_url%%", r.unsubscribe_url.replace("&", "&amp;"))
        .replace("%%NL.email%%", r.email)
    )


def test_subject_is_an_rfc2047_word_that_round_trips(template: MessageTemplate) -> None:
    raw = render(template)
    assert re.search(rb"^Subject: .*=\?utf-8\?[qb]\?", raw, re.MULTILINE | re.IGNORECASE)
    assert parse(raw)["Subject"] == "Digest — ▲"


def test_exactly_one_of_each_required_header_and_no_return_path(
    template: MessageTemplate,
) -> None:
    message = parse(render(template))
    for name in ("From", "Date", "Subject", "To", "Message-ID", "List-Id", "Feedback-ID"):
        assert len(message.get_all(name, [])) == 1, name
    for name in ("Return-Path", "Cc", "Bcc"):
        assert message[name] is None
    assert message["Precedence"] == "bulk"
    assert message["Reply-To"] == "News Desk <desk@news.example.org>"
    assert message["From"].addresses[0].domain == DOMAIN


def test_date_is_the_send_time(template: MessageTemplate) -> None:
    later = SENT_AT + timedelta(minutes=3)
    message = parse(template.render(recipient(), date=later, eight_bit=False))
    assert parsedate_to_datetime(message["Date"]) == later


def test_to_holds_the_one_recipient(template: MessageTemplate) -> None:
    message = parse(render(template, recipient(3)))
    assert getaddresses([str(message["To"])]) == [("Aigerim Nurlanovna", "reader3@example.com")]
    assert message["Message-ID"] == recipient(3).message_id


@pytest.mark.parametrize(
    "name",
    ['Doe, John "JD"', "Jöhn Dœ, Jr.", "Айгерим Нурлановна " * 10, "=?utf-8?q?Admin?=", ""],
)
def test_display_names_parse_back_as_one_mailbox(template: MessageTemplate, name: str) -> None:
    raw = render(template, recipient(name=name))
    (address,) = parse(raw)["To"].addresses
    assert address.addr_spec == "reader1@example.com"
    expected = name.strip()[:128].rstrip()
    # An RFC 2047 decoder drops the whitespace between adjacent encoded words (§6.2)...
    to_line = raw.partition(b"\r\nTo: ")[2].partition(b" <reader1@")[0].decode()
    if not expected.isascii():
        assert str(make_header(decode_header(to_line))) == expected
    # ...but the stdlib's address parser keeps it, so compare it without spacing.
    if not expected.startswith("=?"):  # it also decodes words inside quotes (harmless)
        assert address.display_name.split() == expected.split()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.com",
        "Eve\nBcc: victim@example.com",
        "Eve\rBcc: victim@example.com",
        "Eve\u2028Bcc: victim@example.com",
        "Eve\x85Bcc: victim@example.com",
        "Eve\x00Bcc: victim@example.com",
        "Eve\r\n\r\n<script>",
    ],
)
def test_a_name_with_line_breaks_cannot_add_a_header(template: MessageTemplate, name: str) -> None:
    message = parse(render(template, recipient(name=name)))
    assert message["Bcc"] is None
    assert len(message["To"].addresses) == 1
    assert message["To"].addresses[0].addr_spec == "reader1@example.com"
    assert [p.get_content_type() for p in parts(message)] == ["text/plain", "text/html"]


@pytest.mark.parametrize("field", ["subject", "list_name"])
@pytest.mark.parametrize("bad", ["\r\nBcc: x@example.com", "\n", "\x00", "\u2028", "\x85"])
def test_campaign_header_with_line_breaks_is_refused(field: str, bad: str) -> None:
    values = {"subject": HEADERS.subject, "list_name": HEADERS.list_name, field: "News" + bad}
    headers = CampaignHeaders(
        from_address=HEADERS.from_address,
        subject=values["subject"],
        list_id=HEADERS.list_id,
        list_name=values["list_name"],
        feedback_id=HEADERS.feedback_id,
    )
    with pytest.raises(InvalidInput):
        MessageTemplate.build(headers, HTML, TEXT)


def test_list_unsubscribe_offers_https_then_mailto_with_one_click(
    template: MessageTemplate,
) -> None:
    r = recipient(9)
    message = parse(render(template, r))
    value = str(message["List-Unsubscribe"])
    assert DKIM_LIST_UNSUBSCRIBE.match(value)
    assert re.findall(r"<([^>]+)>", value) == [r.unsubscribe_url, r.unsubscribe_mailto]
    assert message["List-Unsubscribe-Post"] == ONE_CLICK
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in render(template, r)


def test_no_one_click_header_without_an_https_uri(template: MessageTemplate) -> None:
    r = recipient(unsubscribe_url="http://localhost:8000/u/tok", unsubscribe_mailto=None)
    message = parse(template.render(r, date=SENT_AT, eight_bit=False))
    assert str(message["List-Unsubscribe"]) == "<http://localhost:8000/u/tok>"
    assert message["List-Unsubscribe-Post"] is None


def test_list_id_and_feedback_id_are_campaign_wide(template: MessageTemplate) -> None:
    first, second = (parse(render(template, recipient(n))) for n in (1, 2))
    assert first["List-Id"] == '"Central Asia Weekly" <weekly.lists.news.example.org>'
    assert re.fullmatch(r'"[^"]*" <[A-Za-z0-9.-]+>', str(first["List-Id"]))
    assert FEEDBACK_ID.match(str(first["Feedback-ID"]))
    assert first["Feedback-ID"] == second["Feedback-ID"]
    assert first["Message-ID"] != second["Message-ID"]


def test_a_non_ascii_list_name_is_encoded() -> None:
    headers = CampaignHeaders(
        from_address=HEADERS.from_address,
        subject="s",
        list_id=HEADERS.list_id,
        list_name="Обзор недели",
        feedback_id=HEADERS.feedback_id,
    )
    raw = MessageTemplate.build(headers, HTML, TEXT).render(
        recipient(), date=SENT_AT, eight_bit=False
    )
    assert raw.partition(b"\r\n\r\n")[0].isascii()
    assert parse(raw)["List-Id"] == "Обзор недели <weekly.lists.news.example.org>"


def test_message_ids_are_unique_and_on_the_sending_domain() -> None:
    ids = {message_id(n, 42, DOMAIN, "secret") for n in range(100_000)}
    assert len(ids) == 100_000
    msg_id = re.compile(r"<[!-;=?-~]+@news\.example\.org>")
    assert all(msg_id.fullmatch(i) for i in ids)
    assert message_id(1, 42, DOMAIN, "secret") == message_id(1, 42, DOMAIN, "secret")


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "a@b\r\nRCPT TO:<evil@example.com>"},
        {"email": "two words@example.com"},
        {"email": "no-at-sign"},
        {"message_id": "<no-domain>"},
        {"message_id": "<a@b>\r\nBcc: x@y"},
        {"unsubscribe_url": "javascript:alert(1)"},
        {"unsubscribe_url": "https://x/>, <https://evil"},
        {"unsubscribe_mailto": "https://not-mailto"},
    ],
)
def test_unusable_recipient_values_are_refused(
    template: MessageTemplate, changes: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput):
        render(template, dataclasses.replace(recipient(), **changes))


def test_a_date_without_time_zone_is_refused(template: MessageTemplate) -> None:
    with pytest.raises(InvalidInput):
        template.render(recipient(), date=datetime(2025, 12, 11, 7, 30), eight_bit=False)


def test_unknown_markers_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown personal fields"):
        MessageTemplate.build(HEADERS, "%%NL.password%%", TEXT)


@pytest.mark.parametrize(
    "name", [".Bob", "." * 200, "a" * 74 + ".b", "=" * 90, "é." * 60, "x" * 75 + "." * 10]
)
def test_quoted_printable_lines_never_start_with_a_dot_and_decode_exactly(name: str) -> None:
    # No leading dots lets the transport skip its dot-stuffing pass; decoding must not change.
    text = ".first line\n" + "news.example.org " * 30 + "\n%%NL.name%%\n" + ". " * 100
    template = MessageTemplate.build(HEADERS, "<p>%%NL.name%%</p>", text)
    raw = render(template, recipient(name=name), eight_bit=False)
    body = raw.partition(b"\r\n\r\n")[2]
    assert b"\n." not in body
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    plain, _ = parts(parse(raw))
    assert content(plain) == text.replace("%%NL.name%%", name[:128])


SECRET = "message-id-secret-0123456789abcdefghij"


def test_our_message_id_leads_back_to_its_delivery() -> None:
    mid = message_id(4711, 42, DOMAIN, SECRET)

    assert delivery_of_message_id(mid, SECRET) == (4711, 42)
    assert delivery_of_message_id(mid.upper().replace("<D", "<d").replace(".C", ".c"), SECRET) == (
        4711,
        42,
    )


@pytest.mark.parametrize(
    "forged",
    [
        message_id(4712, 42, DOMAIN, SECRET).replace("d4712", "d4711"),  # another delivery's MAC
        message_id(4711, 42, DOMAIN, "another-secret-0123456789abcdefghijk"),
        message_id(4711, 42, DOMAIN, SECRET).replace("c42", "c43"),
        "<d4711.c42@news.example.org>",
        "<CAF00d@mail.example.com>",
        "",
    ],
)
def test_a_forged_or_altered_message_id_is_not_ours(forged: str) -> None:
    assert delivery_of_message_id(forged, SECRET) is None
