"""Normalising addresses and checking names."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from newsletter.errors import InvalidInput
from newsletter.subscribers.address import (
    check_name,
    delivery_warning,
    erasure_hash,
    normalise_email,
)

ADDRESSES = [
    "Ann@Example.com",
    "a+tag@Gmail.COM",
    " padded@example.org ",
    "a..b@example.com",
    ".a@example.com",
    "a@example",
    "a@-x.com",
    "a@x-.com",
    "a@xn--abc.com",
    "a@München.de",
    "ö@example.com",
    '"a b"@example.com',
    "a@x.local",
    "a@x.123",
    "a@[1.2.3.4]",
    "a@localhost",
    "x" * 65 + "@example.com",
    "a@" + "b" * 64 + ".com",
    "a b@example.com",
    "a@x_y.com",
    "a@example.com\r\nBcc: evil@example.net",
    "a@example.com.",
    "@example.com",
    "a@",
    "",
]


@pytest.mark.parametrize("raw", ADDRESSES)
def test_the_fast_path_agrees_with_email_validator(raw: str) -> None:
    try:
        expected: str | None = validate_email(
            raw.strip(), check_deliverability=False
        ).normalized.lower()
    except EmailNotValidError:
        expected = None

    try:
        got: str | None = normalise_email(raw)
    except InvalidInput:
        got = None

    assert got == expected


def test_addresses_differing_only_in_case_normalise_to_one_key() -> None:
    assert (
        normalise_email("Ann@Example.com")
        == normalise_email("ann@EXAMPLE.COM")
        == "ann@example.com"
    )


def test_an_internationalised_domain_is_kept_in_unicode() -> None:
    assert normalise_email("info@MÜNCHEN.de") == "info@münchen.de"


def test_a_non_ascii_local_part_is_warned_about_as_needing_smtputf8() -> None:
    assert delivery_warning(normalise_email("Üser@example.com")) == (
        "üser@example.com has a non-ASCII local part: only a relay that offers SMTPUTF8 can "
        "deliver it"
    )
    assert delivery_warning("用户@例子.广告") is not None  # both parts: the local part decides


@pytest.mark.parametrize("email", ["ann@example.com", "v8@пример.рф", "info@münchen.de"])
def test_an_ascii_local_part_is_deliverable_through_any_relay(email: str) -> None:
    # An internationalised domain is IDNA-encoded at send time, which every relay takes.
    assert delivery_warning(normalise_email(email)) is None


@pytest.mark.parametrize("name", ['Doe, John "JD"', "Ann O'Neil", "Айгүл Нұрланқызы", "Zoë\u00a0B"])
def test_ordinary_names_are_kept_as_given(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["Ann\r\nBcc: x@evil.example", "Ann\nB", "Ann\x00", "Ann\x1b[31m", "A\u2028B"]
)
def test_a_name_with_a_control_character_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="control character"):
        check_name(name)


def test_the_erasure_hash_depends_on_the_secret_key() -> None:
    assert erasure_hash("k1" * 20, "a@example.com") != erasure_hash("k2" * 20, "a@example.com")
    assert len(erasure_hash("k1" * 20, "a@example.com")) == 64
