"""DKIM signatures made with OpenSSL, verified by dkimpy (DKIM-01…05)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.headerregistry import Address

import dkim
import pytest

from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.message import (
    CampaignHeaders,
    MessageTemplate,
    RecipientValues,
    message_id,
)
from newsletter.errors import ConfigError

DOMAIN = "news.example.org"


def dns_with(records: dict[str, bytes]):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name.decode().rstrip("."))

    return lookup


def newsletter_message(reply_to: bool = True, https: bool = True) -> bytes:
    headers = CampaignHeaders(
        from_address=Address("Central Asia Weekly", "bulletin", DOMAIN),
        reply_to=Address("Desk", "desk", DOMAIN) if reply_to else None,
        subject="Digest — ▲",
        list_id="weekly.lists.news.example.org",
        list_name="Central Asia Weekly",
        feedback_id="c42:weekly:main:nlcentasia",
    )
    html = "<p>" + "Сом  ₸\t " * 3000 + "</p><p>%%NL.name%%</p>\n\n\n"
    text = "Hello %%NL.name%%,   with  spaces \t\nand trailing   \n\n\n"
    template = MessageTemplate.build(headers, html, text)
    scheme = "https" if https else "http"
    recipient = RecipientValues(
        email="reader@example.com",
        name="Jöhn Dœ",
        message_id=message_id(1, 42, DOMAIN, "s"),
        unsubscribe_url=f"{scheme}://{DOMAIN}/u/tok",
        view_url=f"https://{DOMAIN}/v/1",
        unsubscribe_mailto=f"mailto:unsub+tok@{DOMAIN}",
    )
    return template.render(recipient, date=datetime.now(UTC), eight_bit=True)


def tags(signed: bytes) -> dict[str, str]:
    header = signed.partition(b"\r\n\r\n")[0].decode()
    value = re.match(r"DKIM-Signature:(.*?)\r\n(?=\S)", header, re.DOTALL)
    assert value is not None
    pairs = (t.split("=", 1) for t in re.sub(r"\s+", "", value.group(1)).split(";") if t)
    return {k: v for k, v in pairs}


@pytest.fixture
def signer(dkim_keys: tuple[tuple[bytes, bytes], tuple[bytes, bytes]]) -> DkimSigner:
    return DkimSigner.from_pem(dkim_keys[0][0], "s2025", DOMAIN)


@pytest.fixture
def dns(dkim_keys: tuple[tuple[bytes, bytes], tuple[bytes, bytes]]):  # type: ignore[no-untyped-def]
    return dns_with({f"s2025._domainkey.{DOMAIN}": dkim_keys[0][1]})


@pytest.mark.parametrize("eight_bit_reply_to", [True, False])
def test_dkimpy_verifies_our_signature(
    signer: DkimSigner, dns: object, eight_bit_reply_to: bool
) -> None:
    signed = signer.sign(newsletter_message(reply_to=eight_bit_reply_to), timestamp=1765436400)
    assert dkim.verify(signed, dnsfunc=dns)


def test_signature_tags_follow_policy(signer: DkimSigner) -> None:
    t = tags(signer.sign(newsletter_message()))
    assert t["a"] == "rsa-sha256"
    assert t["c"] == "relaxed/relaxed"
    assert t["d"] == DOMAIN
    assert t["s"] == "s2025"
    assert "l" not in t
    signed = t["h"].split(":")
    required = {
        "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
        "reply-to", "list-id", "list-unsubscribe", "list-unsubscribe-post", "feedback-id",
    }  # fmt: skip
    assert required <= set(signed)
    for name in ("from", "subject", "list-unsubscribe", "list-unsubscribe-post"):
        assert signed.count(name) == 2, name


def test_one_click_header_is_oversigned_even_when_absent(signer: DkimSigner) -> None:
    t = tags(signer.sign(newsletter_message(https=False)))
    assert t["h"].split(":").count("list-unsubscribe-post") == 1


def test_a_changed_header_fails_verification(signer: DkimSigner, dns: object) -> None:
    signed = signer.sign(newsletter_message())
    tampered = signed.replace(b"Subject: ", b"Subject: FREE MONEY ", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_an_added_one_click_header_fails_verification(signer: DkimSigner, dns: object) -> None:
    signed = signer.sign(newsletter_message(https=False))
    injected = signed.replace(
        b"\r\n\r\n", b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n", 1
    )
    assert not dkim.verify(injected, dnsfunc=dns)


def test_a_changed_body_fails_verification(signer: DkimSigner, dns: object) -> None:
    signed = signer.sign(newsletter_message())
    assert not dkim.verify(signed.replace(b"Hello", b"Hallo", 1), dnsfunc=dns)


def test_relaxed_canonicalisation_survives_whitespace_changes_in_transit(
    signer: DkimSigner, dns: object
) -> None:
    signed = signer.sign(newsletter_message())
    head, _, body = signed.partition(b"\r\n\r\n")
    rewrapped = head.replace(b"Subject: ", b"Subject:   ", 1) + b"\r\n\r\n" + body + b"\r\n\r\n"
    assert dkim.verify(rewrapped, dnsfunc=dns)


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@news.example.org\r\nSubject:  x \t y  \r\n\r\n  a  b \t\r\n\r\n\r\n",
        b"From: a@news.example.org\r\n\r\n",
        b"From: a@news.example.org\r\nSubject: folded\r\n\tover lines\r\n\r\nno final newline",
    ],
)
def test_edge_case_bodies_verify(signer: DkimSigner, dns: object, message: bytes) -> None:
    assert dkim.verify(signer.sign(message), dnsfunc=dns)


def test_selector_rotation_both_selectors_verify(
    dkim_keys: tuple[tuple[bytes, bytes], tuple[bytes, bytes]],
) -> None:
    old, new = dkim_keys
    dns = dns_with({f"old._domainkey.{DOMAIN}": old[1], f"new._domainkey.{DOMAIN}": new[1]})
    message = newsletter_message()
    assert dkim.verify(DkimSigner.from_pem(old[0], "old", DOMAIN).sign(message), dnsfunc=dns)
    assert dkim.verify(DkimSigner.from_pem(new[0], "new", DOMAIN).sign(message), dnsfunc=dns)
    # A key published under the other selector does not verify.
    crossed = dns_with({f"new._domainkey.{DOMAIN}": old[1]})
    signed = DkimSigner.from_pem(new[0], "new", DOMAIN).sign(message)
    assert not dkim.verify(signed, dnsfunc=crossed)


def test_keys_under_2048_bits_are_refused(weak_dkim_pem: bytes) -> None:
    with pytest.raises(ConfigError, match="2048"):
        DkimSigner.from_pem(weak_dkim_pem, "s", DOMAIN)


@pytest.mark.parametrize("pem", [b"", b"-----BEGIN PRIVATE KEY-----\nnope\n"])
def test_unreadable_keys_are_config_errors(pem: bytes) -> None:
    with pytest.raises(ConfigError):
        DkimSigner.from_pem(pem, "s", DOMAIN)


def test_a_selector_that_is_not_a_dns_label_is_refused(
    dkim_keys: tuple[tuple[bytes, bytes], tuple[bytes, bytes]],
) -> None:
    with pytest.raises(ConfigError):
        DkimSigner.from_pem(dkim_keys[0][0], "bad selector;", DOMAIN)
