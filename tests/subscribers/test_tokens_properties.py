"""Any string presented as a token gives a claim or our ``InvalidInput``, never another
exception; every token we sign reads back, and no other key reads it."""

from __future__ import annotations

import contextlib
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from newsletter.errors import InvalidInput
from newsletter.subscribers.tokens import (
    confirm_token,
    key_id,
    read_confirm_token,
    read_test_token,
    read_unsubscribe_token,
    sign_test_token,
    unsubscribe_token,
)
from tests.conftest import TEST_SECRET

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
OTHER_SECRET = "another-secret-key-0123456789abcdefghijkl"
ID = st.integers(0, 2**63 - 1)
# Shaped like ours: a kind, our key id, base-36 numbers, a MAC-like tail, in any mix.
TOKEN_LIKE = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "u" + key_id(TEST_SECRET),
                "c" + key_id(TEST_SECRET),
                "t" + key_id(TEST_SECRET),
                "u0000",
            ]
        ),
        st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz", max_size=30),
    ),
    max_size=6,
).map(".".join)
ANY_TOKEN = st.one_of(st.text(max_size=120), TOKEN_LIKE)


@given(ANY_TOKEN)
def test_any_unsubscribe_token_gives_a_claim_or_invalid_input(token: str) -> None:
    with contextlib.suppress(InvalidInput):
        read_unsubscribe_token(TEST_SECRET, token, old_secrets=[OTHER_SECRET])


@given(ANY_TOKEN, st.datetimes(timezones=st.just(dt.UTC)))
def test_any_confirm_token_at_any_time_gives_a_claim_or_invalid_input(
    token: str, now: dt.datetime
) -> None:
    with contextlib.suppress(InvalidInput):
        read_confirm_token(TEST_SECRET, token, now)


@given(ID, st.one_of(st.none(), ID))
def test_every_unsubscribe_token_reads_back_only_with_its_key(
    subscriber_id: int, list_id: int | None
) -> None:
    token = unsubscribe_token(TEST_SECRET, subscriber_id, list_id)

    claim = read_unsubscribe_token(TEST_SECRET, token)

    assert (claim.subscriber_id, claim.list_id) == (subscriber_id, list_id or None)
    try:
        read_unsubscribe_token(OTHER_SECRET, token)
    except InvalidInput:
        return
    raise AssertionError("a token signed with another key was accepted")


@given(ID, ID, st.datetimes(timezones=st.just(dt.UTC)))
def test_a_confirm_token_read_at_any_time_gives_a_claim_or_invalid_input(
    subscriber_id: int, list_id: int, now: dt.datetime
) -> None:
    token = confirm_token(TEST_SECRET, subscriber_id, list_id, NOW)
    try:
        claim = read_confirm_token(TEST_SECRET, token, now)
    except InvalidInput:
        return
    assert (claim.subscriber_id, claim.list_id) == (subscriber_id, list_id)


@given(ANY_TOKEN)
def test_any_test_send_token_gives_a_claim_or_invalid_input(token: str) -> None:
    with contextlib.suppress(InvalidInput):
        read_test_token(TEST_SECRET, token, old_secrets=[OTHER_SECRET])


@given(ID, ID)
def test_every_test_send_token_reads_back_and_never_as_an_unsubscribe_token(
    issue_id: int, list_id: int
) -> None:
    token = sign_test_token(TEST_SECRET, issue_id, list_id)

    claim = read_test_token(TEST_SECRET, token)

    assert (claim.issue_id, claim.list_id) == (issue_id, list_id)
    try:
        read_unsubscribe_token(TEST_SECRET, token)
    except InvalidInput:
        return
    raise AssertionError("a test-send token was read as an unsubscribe token")
