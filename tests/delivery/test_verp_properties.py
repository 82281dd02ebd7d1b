"""Any address a bounce comes back to gives a delivery id or None, never an exception; every
id round-trips, and no change to a token is accepted."""

from __future__ import annotations

from email.headerregistry import Address

from hypothesis import given
from hypothesis import strategies as st

from newsletter.delivery.verp import TAG, delivery_id_from_verp, verp_address

BOUNCES = Address(username="bounces", domain="bounces.example.org")
SECRET = "verp-secret-0123456789abcdefghijklmnop"
DELIVERY_ID = st.integers(0, 2**64 - 1)
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


@given(st.text(max_size=200))
def test_any_address_we_did_not_sign_gives_none(address: str) -> None:
    assert delivery_id_from_verp(address, BOUNCES, SECRET) is None


@given(st.text(alphabet=BASE32 + "=-+.@ABC", max_size=40))
def test_any_token_behind_our_prefix_that_we_did_not_sign_gives_none(token: str) -> None:
    address = f"bounces+{TAG}{token}@bounces.example.org"

    assert delivery_id_from_verp(address, BOUNCES, SECRET) is None


@given(DELIVERY_ID)
def test_every_delivery_id_round_trips(delivery_id: int) -> None:
    address = verp_address(delivery_id, BOUNCES, SECRET)

    assert delivery_id_from_verp(address, BOUNCES, SECRET) == delivery_id
    assert delivery_id_from_verp(address, BOUNCES, "another-" + SECRET) is None


@given(DELIVERY_ID, st.data())
def test_no_change_to_one_character_of_a_token_is_accepted(
    delivery_id: int, data: st.DataObject
) -> None:
    address = verp_address(delivery_id, BOUNCES, SECRET)
    local, _, domain = address.rpartition("@")
    start = len(f"bounces+{TAG}")
    at = data.draw(st.integers(start, len(local) - 1))
    replacement = data.draw(st.sampled_from(BASE32).filter(lambda c: c != local[at]))
    tampered = local[:at] + replacement + local[at + 1 :]

    assert delivery_id_from_verp(f"{tampered}@{domain}", BOUNCES, SECRET) is None
