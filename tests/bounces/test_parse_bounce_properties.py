"""Any message to the bounce domain gives events, never an exception, and a report shaped like
the real thing is read by the parsers, not by the last-resort "parser failed" fallback."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from newsletter.bounces.event import BounceEvent, BounceKind
from newsletter.bounces.parse import parse_bounce

HEADER_TEXT = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=80
)
ADDRESS = st.one_of(
    st.sampled_from(["victim@example.org", "ÜSER@пример.рф", "", "<>", "a@", "@b", "x" * 300]),
    HEADER_TEXT,
)
STATUS = st.one_of(st.sampled_from(["5.1.1", "4.2.2", "5.7.26", "2.0.0", "9.9.9", ""]), HEADER_TEXT)
ACTION = st.sampled_from(["failed", "delayed", "delivered", "relayed", "expanded", "", "FAILED"])
ENVELOPE = st.one_of(st.none(), ADDRESS)


def recipient_block(address: str, status: str, action: str, diagnostic: str) -> str:
    return (
        f"Final-Recipient: rfc822; {address}\n"
        f"Action: {action}\n"
        f"Status: {status}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n"
    )


def report(report_type: str, content_type: str, blocks: list[str], subject: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        f"Subject: {subject}\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nReport.\n\n"
        f"--B\nContent-Type: {content_type}\n\n"
        + "\n".join(blocks)
        + "\n--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: <sent-1@example.org>\n\n--B--\n"
    ).encode("utf-8", "surrogateescape")


DSN = st.builds(
    report,
    st.just("delivery-status"),
    st.just("message/delivery-status"),
    st.lists(st.builds(recipient_block, ADDRESS, STATUS, ACTION, HEADER_TEXT), max_size=5).map(
        lambda blocks: ["Reporting-MTA: dns; mx.example.net\n", *blocks]
    ),
    HEADER_TEXT,
)
ARF = st.builds(
    report,
    st.just("feedback-report"),
    st.just("message/feedback-report"),
    st.lists(
        st.builds(
            "{}: {}".format,
            st.sampled_from(["Feedback-Type", "Original-Rcpt-To", "User-Agent", "Version", "X"]),
            HEADER_TEXT,
        ),
        max_size=6,
    ),
    HEADER_TEXT,
)


def assert_events(events: list[BounceEvent]) -> None:
    assert isinstance(events, list)
    assert all(isinstance(e.kind, BounceKind) for e in events)


@given(st.one_of(DSN, ARF), ENVELOPE)
def test_a_report_shaped_like_the_real_thing_is_read_by_the_parsers(
    raw: bytes, envelope: str | None
) -> None:
    events = parse_bounce(raw, envelope)

    assert_events(events)
    assert not any((e.diagnostic or "").startswith("parser failed") for e in events)


@given(st.binary(max_size=2048), ENVELOPE)
def test_any_bytes_to_any_envelope_give_events(raw: bytes, envelope: str | None) -> None:
    assert_events(parse_bounce(raw, envelope))
