"""Rate limits: token buckets shared by every worker (Redis) or by one process (in memory).

``acquire(key, rate)`` blocks until one message may go out under ``rate`` messages per second
for ``key`` ("global", or "domain:gmail.com"). The bucket holds at most a tenth of a second's
worth of tokens (and at least one), so the rate holds over short windows too, not just on
average. Redis computes the bucket in a Lua script with the server's clock, so workers on many
machines share one bucket without trusting their own clocks.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from newsletter.errors import TransientDeliveryError

BURST_SECONDS = 0.1
REDIS_RETRY_SECONDS = 60.0


class RateLimiter(Protocol):
    def acquire(self, key: str, rate: float) -> None:
        """Block until one message may be sent for ``key``; ``rate`` ≤ 0 means unlimited."""
        ...


def capacity(rate: float) -> float:
    return max(1.0, rate * BURST_SECONDS)


class MemoryRateLimiter:
    """Token buckets in this process: the embedded mode, where one process sends."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def acquire(self, key: str, rate: float) -> None:
        if rate <= 0:
            return
        while True:
            wait = self._take(key, rate)
            if wait <= 0:
                return
            self._sleep(wait)

    def _take(self, key: str, rate: float) -> float:
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (capacity(rate), now))
            tokens = min(capacity(rate), tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / rate


# Returns 0 when a token was taken, else the microseconds to wait for the next one.
BUCKET_SCRIPT_LUA = """

local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or cap
local ts = tonumber(state[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate * 1000000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 60000)
return wait
"""


class RedisRateLimiter:
    """Token buckets in Redis, shared by every worker on every machine."""

    def __init__(
        self,
        url: str,
        prefix: str = "newsletter:rate:",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._script = self._redis.register_script(BUCKET_SCRIPT_LUA)
        self._prefix, self._sleep = prefix, sleep

    def acquire(self, key: str, rate: float) -> None:
        import redis

        if rate <= 0:
            return
        give_up = time.monotonic() + REDIS_RETRY_SECONDS
        while True:
            try:
                wait_us = int(
                    self._script(keys=[self._prefix + key], args=[repr(rate), repr(capacity(rate))])
                )
            except redis.RedisError as exc:
                # Redis restarting: wait for it rather than send without a limit.
                if time.monotonic() > give_up:
                    raise TransientDeliveryError(f"rate limiter unavailable: {exc}") from exc
                self._sleep(0.5)
                continue
            if wait_us <= 0:
                return
            self._sleep(math.ceil(wait_us) / 1_000_000)


def limiter_for(broker_url: str | None) -> RateLimiter:
    """Redis when the workers share a Redis broker, else this process's own buckets."""
    if broker_url and broker_url.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(broker_url)
    return MemoryRateLimiter()
