"""Rate limits of the sign-up form, per IP address and per email address (the ``limits``
package). Counted in Redis when a broker is configured, so every web process and host shares
them; without one, each process counts for itself (embedded mode: one machine, few workers).
"""

from __future__ import annotations

from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from newsletter.config import Settings


@dataclass(frozen=True)
class SignupLimiter:
    limiter: MovingWindowRateLimiter
    per_ip: tuple[RateLimitItem, ...]
    per_address: tuple[RateLimitItem, ...]
    namespace: str = "signup"  # tests give each app its own counters

    @classmethod
    def for_settings(cls, settings: Settings, namespace: str = "signup") -> SignupLimiter:
        return cls(
            MovingWindowRateLimiter(_storage(settings.broker_url)),
            tuple(parse_many(settings.signup_limit_per_ip)),
            tuple(parse_many(settings.signup_limit_per_address)),
            namespace,
        )

    def allow_ip(self, ip: str | None) -> bool:
        """Count one sign-up from ``ip``; False once any of its limits is spent."""
        return self._hit("ip", ip or "unknown", self.per_ip)

    def allow_address(self, address: str) -> bool:
        return self._hit("address", address, self.per_address)

    def _hit(self, kind: str, key: str, items: tuple[RateLimitItem, ...]) -> bool:
        # Every item is hit, so a burst that spends the minute's allowance also counts
        # towards the hour's.
        results = [self.limiter.hit(item, self.namespace, kind, key) for item in items]
        return all(results)


def _storage(broker_url: str | None) -> Storage:
    uri = broker_url if broker_url and broker_url.startswith(("redis://", "rediss://")) else None
    storage = storage_from_string(uri or "memory://")
    assert isinstance(storage, Storage)  # a synchronous URI gives a synchronous storage
    return storage
