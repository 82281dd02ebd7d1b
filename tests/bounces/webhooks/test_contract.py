"""Every webhook adapter honours the same contract, so a new provider inherits these tests.

A correctly signed request verifies; a wrong key, a tampered body or a missing signature is
refused with ``InvalidInput``; a malformed body is rejected with ``InvalidInput``; and every
key of the module's ``EVENT_KINDS`` has a sample that parses to exactly that kind.
"""

from __future__ import annotations

from typing import Any

import pytest

from newsletter.bounces.event import BounceEvent
from newsletter.errors import InvalidInput

from .harness import PROVIDERS, Provider, Request, samples

BY_NAME = {provider.name: provider for provider in PROVIDERS}
ALL = pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
EVENT_CASES = [(provider, key) for provider in PROVIDERS for key in provider.module.EVENT_KINDS]


def first_sample(provider: Provider) -> Any:
    return next(iter(samples(provider.name).values()))


@ALL
def test_correctly_signed_request_is_accepted(provider: Provider) -> None:
    provider.verify(provider.build(first_sample(provider)))


@ALL
def test_request_signed_with_another_key_is_refused(provider: Provider) -> None:
    request = provider.build(first_sample(provider))

    with pytest.raises(InvalidInput):
        provider.verify(request, provider.wrong_secret)


@ALL
def test_tampering_with_what_is_signed_is_refused(provider: Provider) -> None:
    request = provider.build(first_sample(provider))
    tampered = provider.tamper(request)
    assert tampered != request

    with pytest.raises(InvalidInput):
        provider.verify(tampered)


@ALL
def test_unsigned_request_is_refused(provider: Provider) -> None:
    request = provider.build(first_sample(provider))

    with pytest.raises(InvalidInput):
        provider.verify(Request({}, b"{}" if provider.name != "sendgrid" else request.body))


@ALL
@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"[[[[", b"42", b'"text"'])
def test_malformed_body_is_rejected(provider: Provider, body: bytes) -> None:
    with pytest.raises(InvalidInput):
        provider.module.parse(body)


@ALL
def test_every_event_kind_has_a_sample(provider: Provider) -> None:
    assert set(samples(provider.name)) == set(provider.module.EVENT_KINDS)


@pytest.mark.parametrize(
    ("provider", "key"), EVENT_CASES, ids=[f"{p.name}-{k}" for p, k in EVENT_CASES]
)
def test_every_mapped_event_type_parses_to_its_kind(provider: Provider, key: str) -> None:
    request = provider.build(samples(provider.name)[key])
    provider.verify(request)

    events: list[BounceEvent] = provider.module.parse(request.body)

    expected = provider.module.EVENT_KINDS[key]
    if expected is None:
        assert events == []
    else:
        assert events
        assert {event.kind for event in events} == {expected}
        assert all(event.classifier == provider.name for event in events)
        assert all(event.recipient for event in events)
