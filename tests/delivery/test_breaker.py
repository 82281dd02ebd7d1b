"""The circuit breaker's rules: a domain held after a streak, a campaign paused at a rate."""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.delivery.breaker import AttemptWindow, domain_held, pause_reason, rejection_limit


@dataclass(frozen=True)
class Limits:
    domain_policy_pause_after: int = 10
    campaign_policy_pause_rate: float = 0.02
    campaign_policy_window: int = 1000


def test_a_domain_is_held_at_the_tenth_policy_rejection_in_a_row() -> None:
    assert not domain_held(9, Limits())
    assert domain_held(10, Limits())


def test_two_percent_of_a_thousand_is_twenty_rejections() -> None:
    assert rejection_limit(Limits()) == 20
    assert rejection_limit(Limits(campaign_policy_pause_rate=0.001, campaign_policy_window=10)) == 1


def test_the_campaign_pauses_at_twenty_rejections_in_its_last_thousand_attempts() -> None:
    window = AttemptWindow().push(0, 500, 1000)
    for _ in range(19):
        window = window.push(1, 1, 1000)
    assert pause_reason(window, Limits()) is None

    window = window.push(1, 1, 1000)

    reason = pause_reason(window, Limits())
    assert reason is not None
    assert "20 policy rejections in the last 520 attempts" in reason


def test_old_rejections_slide_out_of_the_window() -> None:
    window = AttemptWindow().push((1 << 19) - 1, 19, 1000)  # 19 rejections
    window = window.push(0, 981, 1000)  # the oldest falls out at the 982nd newer attempt
    assert window.rejections == 19
    window = window.push(0, 1, 1000)
    assert window.rejections == 18
    assert window.push(1, 1, 1000).rejections == 18  # one in, one out


def test_the_window_survives_its_storage() -> None:
    window = AttemptWindow().push(0b1011, 4, 1000).push(0, 300, 1000)
    assert AttemptWindow.from_bytes(window.to_bytes(), window.size) == window
    assert AttemptWindow.from_bytes(None, 0) == AttemptWindow()
