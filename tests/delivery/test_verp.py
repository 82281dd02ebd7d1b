"""VERP envelope senders (BNC-01): round trip, case folding, tampering, length, key rotation."""

from __future__ import annotations

import random
from email.headerregistry import Address

import pytest

from newsletter.delivery.verp import delivery_id_from_verp, verp_address
from newsletter.errors import ConfigError, InvalidInput

BOUNCES = Address(username="bounces", domain="bounces.example.org")
SECRET = "verp-secret-0123456789abcdefghijklmnop"


def test_ten_thousand_ids_round_trip_within_64_octet_local_parts() -> None:
    rng = random.Random(7)
    ids = [0, 1, 2**63, 2**64 - 1, *(rng.randrange(2**64) for _ in range(10_000))]
    for delivery_id in ids:
        address = verp_address(delivery_id, BOUNCES, SECRET)
        local, _, domain = address.rpartition("@")
        assert domain == "bounces.example.org"
        assert local.startswith("bounces+b1-")
        assert len(local.encode()) <= 64
        assert local == local.lower()
        assert delivery_id_from_verp(address, BOUNCES, SECRET) == delivery_id


def test_upper_cased_address_still_decodes() -> None:
    address = verp_address(123456789, BOUNCES, SECRET)
    assert delivery_id_from_verp(address.upper(), BOUNCES, SECRET) == 123456789


def test_angle_brackets_from_a_return_path_are_accepted() -> None:
    address = verp_address(42, BOUNCES, SECRET)
    assert delivery_id_from_verp(f"<{address}>", BOUNCES, SECRET) == 42


@pytest.mark.parametrize("position", [11, 15, 20, 30, 39])
def test_a_changed_character_is_rejected(position: int) -> None:
    address = verp_address(987654321, BOUNCES, SECRET)
    flipped = "a" if address[position] != "a" else "b"
    tampered = address[:position] + flipped + address[position + 1 :]
    assert delivery_id_from_verp(tampered, BOUNCES, SECRET) is None


@pytest.mark.parametrize(
    "address",
    [
        "bounces@bounces.example.org",
        "someone@example.com",
        "bounces+b1-abc@bounces.example.org",
        "bounces+b1-" + "!" * 29 + "@bounces.example.org",
        "other+b1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa@bounces.example.org",
        "",
    ],
)
def test_addresses_that_are_not_ours_give_none(address: str) -> None:
    assert delivery_id_from_verp(address, BOUNCES, SECRET) is None


def test_another_domain_gives_none() -> None:
    local = verp_address(5, BOUNCES, SECRET).rpartition("@")[0]
    assert delivery_id_from_verp(f"{local}@evil.example", BOUNCES, SECRET) is None


def test_another_secret_gives_none_unless_listed_as_retired() -> None:
    address = verp_address(77, BOUNCES, "old-secret-0123456789abcdefghijklmnop")
    assert delivery_id_from_verp(address, BOUNCES, SECRET) is None
    retired = ("old-secret-0123456789abcdefghijklmnop",)
    assert delivery_id_from_verp(address, BOUNCES, SECRET, retired_secrets=retired) == 77


def test_ids_outside_eight_bytes_are_refused() -> None:
    with pytest.raises(InvalidInput):
        verp_address(-1, BOUNCES, SECRET)
    with pytest.raises(InvalidInput):
        verp_address(2**64, BOUNCES, SECRET)


def test_a_bounce_user_too_long_for_64_octets_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        verp_address(1, Address(username="b" * 40, domain="bounces.example.org"), SECRET)
