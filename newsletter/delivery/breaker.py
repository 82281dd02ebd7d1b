"""The circuit breaker's rules: when policy rejections hold a domain or pause a campaign. Pure.

A policy rejection (``Verdict.POLICY``: a block list, reputation, authentication, content) is
never the subscriber's fault, so it never bounces anyone; but a relay whose IP landed on a
block list refuses everyone, and sending on would only burn the retries of the whole list.

- **Domain**: NEWSLETTER_DOMAIN_POLICY_PAUSE_AFTER policy rejections in a row from one domain
  hold that domain for the campaign (``domain_held``); its rows wait for `campaign resume`.
- **Campaign**: when policy rejections make up NEWSLETTER_CAMPAIGN_POLICY_PAUSE_RATE of the last
  NEWSLETTER_CAMPAIGN_POLICY_WINDOW attempts, the campaign pauses itself (``pause_reason``).
  The rate is taken over the whole window even while fewer attempts were made, so a small
  campaign is not paused by its first few rejections (2% of 1,000 is 20 rejections).

``AttemptWindow`` is the campaign's last attempts as bits, stored in the campaign row by
``holds.push_attempts``: each worker adds its attempts there about once a second, and at once
after a policy rejection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


class BreakerSettings(Protocol):
    @property
    def domain_policy_pause_after(self) -> int: ...
    @property
    def campaign_policy_pause_rate(self) -> float: ...
    @property
    def campaign_policy_window(self) -> int: ...


@dataclass(frozen=True, slots=True)
class AttemptWindow:
    """The last ``size`` attempts, one bit each, newest in the lowest bit (1: policy rejection)."""

    bits: int = 0
    size: int = 0

    def push(self, bits: int, count: int, capacity: int) -> AttemptWindow:
        """Add ``count`` newer attempts (``bits``, newest lowest) and keep the last ``capacity``."""
        mask = (1 << capacity) - 1
        return AttemptWindow(((self.bits << count) | bits) & mask, min(self.size + count, capacity))

    @property
    def rejections(self) -> int:
        return self.bits.bit_count()

    def to_bytes(self) -> bytes:
        return self.bits.to_bytes(max(1, (self.bits.bit_length() + 7) // 8), "big")

    @classmethod
    def from_bytes(cls, data: bytes | None, size: int) -> AttemptWindow:
        return cls(int.from_bytes(data, "big") if data else 0, size)


def domain_held(streak: int, settings: BreakerSettings) -> bool:
    """True once a domain's policy rejections in a row reach the limit."""
    return streak >= settings.domain_policy_pause_after


def rejection_limit(settings: BreakerSettings) -> int:
    """How many policy rejections within the window pause the campaign (at least one)."""
    # round(): 0.02 * 1000 is 20.000000000000004 in binary floating point.
    return max(
        1,
        math.ceil(round(settings.campaign_policy_pause_rate * settings.campaign_policy_window, 9)),
    )


def pause_reason(window: AttemptWindow, settings: BreakerSettings) -> str | None:
    """Why the campaign must pause now, or None."""
    limit = rejection_limit(settings)
    if window.rejections < limit:
        return None
    return (
        f"paused automatically: {window.rejections} policy rejections in the last "
        f"{window.size} attempts reached the limit of {limit} "
        f"({settings.campaign_policy_pause_rate:.1%} of {settings.campaign_policy_window})"
    )
