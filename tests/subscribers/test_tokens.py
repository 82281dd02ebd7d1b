"""Unsubscribe and confirmation tokens: unforgeable, short, and only confirm tokens expire."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest

from newsletter.config import load_settings
from newsletter.errors import InvalidInput
from newsletter.subscribers import tokens
from newsletter.subscribers.tokens import (
    confirm_token,
    read_confirm_token,
    read_test_token,
    read_unsubscribe_token,
    sign_test_token,
    unsubscribe_mailto,
    unsubscribe_token,
    unsubscribe_url,
)
from tests.conftest import TEST_SECRET, make_env

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
OTHER_SECRET = "another-secret-key-0123456789abcdefghijkl"


def test_an_unsubscribe_token_names_the_subscriber_and_the_list() -> None:
    claim = read_unsubscribe_token(TEST_SECRET, unsubscribe_token(TEST_SECRET, 123_456, 7))

    assert (claim.subscriber_id, claim.list_id) == (123_456, 7)
    assert (
        read_unsubscribe_token(TEST_SECRET, unsubscribe_token(TEST_SECRET, 1, None)).list_id is None
    )


def test_a_tampered_token_is_refused_at_every_position() -> None:
    token = unsubscribe_token(TEST_SECRET, 42, 1)
    for position, char in enumerate(token):
        if char == ".":
            continue
        flipped = token[:position] + ("b" if char != "b" else "c") + token[position + 1 :]
        with pytest.raises(InvalidInput):
            read_unsubscribe_token(TEST_SECRET, flipped)


@pytest.mark.parametrize("forged", ["", "u1234.1.1.aaaa", "x.y", "u" + "a" * 60, "c0000.1.1.1.abc"])
def test_a_forged_token_is_refused(forged: str) -> None:
    with pytest.raises(InvalidInput):
        read_unsubscribe_token(TEST_SECRET, forged)


def test_a_token_signed_with_another_key_is_refused_unless_that_key_is_kept() -> None:
    token = unsubscribe_token(OTHER_SECRET, 42, 1)

    with pytest.raises(InvalidInput):
        read_unsubscribe_token(TEST_SECRET, token)
    assert (
        read_unsubscribe_token(TEST_SECRET, token, old_secrets=[OTHER_SECRET]).subscriber_id == 42
    )


def test_a_confirm_token_is_not_an_unsubscribe_token() -> None:
    token = confirm_token(TEST_SECRET, 42, 1, NOW)

    with pytest.raises(InvalidInput):
        read_unsubscribe_token(TEST_SECRET, token)


def test_unsubscribe_tokens_never_expire_and_survive_lower_casing() -> None:
    token = unsubscribe_token(TEST_SECRET, 42, 1)  # no clock in it: a 400-day-old link works

    assert read_unsubscribe_token(TEST_SECRET, token.upper()).subscriber_id == 42


def test_a_confirm_token_expires_after_48_hours() -> None:
    token = confirm_token(TEST_SECRET, 42, 1, NOW)

    assert read_confirm_token(TEST_SECRET, token, NOW + dt.timedelta(hours=47)).list_id == 1
    with pytest.raises(InvalidInput, match="expired"):
        read_confirm_token(TEST_SECRET, token, NOW + dt.timedelta(hours=48, seconds=1))


def test_the_mailto_local_part_fits_in_64_octets() -> None:
    settings = load_settings(make_env("sqlite://"))
    token = unsubscribe_token(TEST_SECRET, 2**31 - 1, 2**31 - 1)

    mailto = unsubscribe_mailto(settings, token)

    local_part = mailto.removeprefix("mailto:").split("@")[0]
    assert len(local_part.encode()) <= 64
    assert mailto.endswith("@news.example.org?subject=unsubscribe")
    assert unsubscribe_url(settings, token) == f"https://news.example.org/u/{token}"


def test_signatures_are_compared_in_constant_time() -> None:
    assert "hmac.compare_digest(" in inspect.getsource(tokens._verify)


def test_a_test_send_token_names_the_issue_and_the_list() -> None:
    token = sign_test_token(TEST_SECRET, 17, 3)

    claim = read_test_token(TEST_SECRET, token.upper())  # lower-cased or not, as the others

    assert (claim.issue_id, claim.list_id) == (17, 3)
    assert len(token) <= len(unsubscribe_token(TEST_SECRET, 17, 3))


def test_a_test_send_token_never_unsubscribes_and_an_unsubscribe_token_is_no_test() -> None:
    # Same numbers, same key: only the kind differs, and the kind is under the MAC.
    test = sign_test_token(TEST_SECRET, 42, 1)
    real = unsubscribe_token(TEST_SECRET, 42, 1)

    with pytest.raises(InvalidInput):
        read_unsubscribe_token(TEST_SECRET, test)
    with pytest.raises(InvalidInput):
        read_unsubscribe_token(TEST_SECRET, "u" + test[1:])
    with pytest.raises(InvalidInput):
        read_test_token(TEST_SECRET, real)
    with pytest.raises(InvalidInput):
        read_test_token(TEST_SECRET, "t" + real[1:])


def test_a_test_send_token_signed_with_another_key_is_refused_unless_kept() -> None:
    token = sign_test_token(OTHER_SECRET, 42, 1)

    with pytest.raises(InvalidInput):
        read_test_token(TEST_SECRET, token)
    assert read_test_token(TEST_SECRET, token, old_secrets=[OTHER_SECRET]).issue_id == 42
