"""Cost per recipient of building, signing and dot-stuffing one ~40 KB newsletter message.

Run: ``python bench/message.py [recipients]`` (default 5000). Prints CPU µs per recipient for
``MessageTemplate.render`` (7bit and 8bit), for building a full ``EmailMessage`` per recipient
(what the template replaces), for one DKIM signature (ours via OpenSSL, and dkimpy's for
comparison), and for dot-stuffing (the transport's, and the regex ``smtplib.sendmail`` runs).
Every variant's output is parsed back once so a fast but wrong variant cannot win. Figures are
CPU time (``time.process_time``), which other load on the box distorts less than wall time;
compare ratios within one run (docs/benchmarks.md).
"""

from __future__ import annotations

import email
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, default

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.message import (
    CampaignHeaders,
    MessageTemplate,
    RecipientValues,
    message_id,
)
from newsletter.delivery.transports.smtp import _dot_stuffed

DOMAIN = "news.example.org"
HEADERS = CampaignHeaders(
    from_address=Address("Central Asia Weekly", "bulletin", DOMAIN),
    reply_to=Address("News Desk", "desk", DOMAIN),
    subject="Central Asia Weekly — 11 December 2025 ▲",
    list_id="weekly.lists.news.example.org",
    list_name="Central Asia Weekly",
    feedback_id="c42:weekly:main:nlcentasia",
)
# Shaped like MRML output: a few very long lines, some non-ASCII, markers in links and text.
ARTICLE = (
    '<tr><td style="padding:0 24px;font-family:Georgia,serif;font-size:16px;line-height:24px">'
    '<a href="https://news.example.org/a/{n}?utm_source=newsletter" style="color:#0b5">'
    "Tenge and som move as the SCO summit closes — ₸ 512.30, сом 87.10</a>"
    "<p>Officials in Astana and Bishkek said on Thursday that the agreements signed this week "
    "would take effect in the first quarter, with customs changes at the border posts.</p>"
    "</td></tr>"
)
HTML = (
    "<!doctype html><html><head><style>@media (max-width:600px){.c{width:100%!important}}</style>"
    "</head><body><table>"
    + "".join(ARTICLE.format(n=n) for n in range(55))
    + '<tr><td>Hello %%NL.name%% · <a href="%%NL.view_url%%">View in browser</a></td></tr>\n'
    + '<tr><td>Sent to %%NL.email%% · <a href="%%NL.unsubscribe_url%%">Unsubscribe</a>'
    + "</td></tr></table></body></html>\n"
)
TEXT = (
    "Hello %%NL.name%%,\n\nView in your browser: %%NL.view_url%%\n\n"
    + "".join(
        f"Tenge and som move as the SCO summit closes — ₸ 512.30, сом 87.10\n"
        f"https://news.example.org/a/{n}?utm_source=newsletter\n"
        "Officials in Astana and Bishkek said on Thursday that the agreements signed\n"
        "this week would take effect in the first quarter.\n\n"
        for n in range(55)
    )
    + "Unsubscribe: %%NL.unsubscribe_url%%\nThis message was sent to %%NL.email%%.\n"
)
# What smtplib.SMTP.sendmail runs on every message (smtplib._quote_periods in CPython 3.11).
SMTPLIB_DOT_STUFFING = re.compile(rb"(?m)^\.")
NAMES = ("Aigerim Nurlanovna", "Нурсултан Абишевич Назарбаев", 'Doe, John "JD"', "Dilnoza")


def recipients(count: int) -> list[RecipientValues]:
    return [
        RecipientValues(
            email=f"reader{n}@example.com",
            name=NAMES[n % len(NAMES)],
            message_id=message_id(n, 42, DOMAIN, "bench-secret"),
            unsubscribe_url=f"https://{DOMAIN}/u/{n:08x}c2a9f0d1e4b7",
            view_url=f"https://{DOMAIN}/v/42/{n:08x}",
            unsubscribe_mailto=f"mailto:unsub+{n:08x}c2a9f0d1e4b7@{DOMAIN}",
        )
        for n in range(count)
    ]


def full_email_message(r: RecipientValues, date: datetime) -> bytes:
    """What render() replaces: a whole EmailMessage per recipient, serialised under SMTP."""
    values = {
        "%%NL.name%%": r.name,
        "%%NL.email%%": r.email,
        "%%NL.unsubscribe_url%%": r.unsubscribe_url,
        "%%NL.view_url%%": r.view_url,
    }
    text, html = TEXT, HTML
    for marker, value in values.items():
        text = text.replace(marker, value)
        html = html.replace(marker, value)
    message = EmailMessage(policy=SMTP)
    message["From"] = HEADERS.from_address
    message["Reply-To"] = HEADERS.reply_to
    message["To"] = Address(r.name, addr_spec=r.email)
    message["Subject"] = HEADERS.subject
    message["Date"] = date
    message["Message-ID"] = r.message_id
    message["List-Id"] = f'"{HEADERS.list_name}" <{HEADERS.list_id}>'
    message["List-Unsubscribe"] = f"<{r.unsubscribe_url}>, <{r.unsubscribe_mailto}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Feedback-ID"] = HEADERS.feedback_id
    message["Precedence"] = "bulk"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def cpu_us_per_call(label: str, calls: int, run: Callable[[int], object]) -> float:
    start = time.process_time()
    for i in range(calls):
        run(i)
    per_call = (time.process_time() - start) / calls * 1e6
    print(f"{label:<58} {per_call:10.1f} µs")
    return per_call


def check(raw: bytes) -> None:
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"], kinds
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    date = datetime.now(UTC)
    people = recipients(count)
    build_start = time.process_time()
    template = MessageTemplate.build(HEADERS, HTML, TEXT)
    build_ms = (time.process_time() - build_start) * 1e3
    sample7 = template.render(people[1], date=date, eight_bit=False)
    sample8 = template.render(people[1], date=date, eight_bit=True)
    for raw in (sample7, sample8, full_email_message(people[1], date)):
        check(raw)
    print(
        f"html {len(HTML.encode()):,} B, text {len(TEXT.encode()):,} B, longest html line "
        f"{max(len(line) for line in HTML.splitlines()):,} chars"
    )
    print(f"message: {len(sample7):,} B (7bit), {len(sample8):,} B (8bit allowed)")
    print(f"MessageTemplate.build, once per campaign: {build_ms:.1f} ms\n")

    print(f"CPU per recipient ({count:,} recipients, names: ASCII and Cyrillic)")
    cpu_us_per_call(
        "MessageTemplate.render, eight_bit=False (QP)",
        count,
        lambda i: template.render(people[i], date=date, eight_bit=False),
    )
    cpu_us_per_call(
        "MessageTemplate.render, eight_bit=True (8bit text, QP html)",
        count,
        lambda i: template.render(people[i], date=date, eight_bit=True),
    )
    full_calls = max(count // 20, 50)
    cpu_us_per_call(
        f"full EmailMessage per recipient ({full_calls} calls)",
        full_calls,
        lambda i: full_email_message(people[i], date),
    )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = DkimSigner.from_pem(pem, "bench", DOMAIN)
    sign_calls = max(count // 10, 100)
    cpu_us_per_call(
        f"DkimSigner.sign, RSA-2048 via OpenSSL ({sign_calls} calls)",
        sign_calls,
        lambda i: signer.sign(sample7),
    )
    try:
        import dkim  # dkimpy, a test dependency: only for the comparison
    except ImportError:
        print("dkimpy not installed: its comparison skipped")
    else:
        cpu_us_per_call(
            "dkim.sign (dkimpy, pure-Python RSA-2048, 20 calls)",
            20,
            lambda i: dkim.sign(
                sample7,
                b"bench",
                DOMAIN.encode(),
                pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date", b"list-unsubscribe-post"],
            ),
        )
    cpu_us_per_call(
        "SmtpTransport dot-stuffing (no line starts with a dot)",
        count,
        lambda i: _dot_stuffed(sample7),
    )
    dotted = sample7.replace(b"\r\n", b"\r\n.")
    cpu_us_per_call(
        "SmtpTransport dot-stuffing, a dot after every line break",
        count,
        lambda i: _dot_stuffed(dotted),
    )
    cpu_us_per_call(
        "smtplib.sendmail's dot-stuffing regex (what we avoid)",
        count,
        lambda i: SMTPLIB_DOT_STUFFING.sub(b"..", sample7),
    )


if __name__ == "__main__":
    main()
