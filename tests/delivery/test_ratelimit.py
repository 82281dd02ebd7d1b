"""Token buckets: the rate holds over a short window, in one process and shared through Redis."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from newsletter.delivery.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tests.conftest import unavailable
from tests.delivery.clock import ManualClock

REDIS_URL = "redis://127.0.0.1:6379/15"


def taken_in(limiter_for_thread: list[RateLimiter], key: str, rate: float, seconds: float) -> int:
    """How many tokens all threads together get in ``seconds``."""
    counts = [0] * len(limiter_for_thread)
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        while True:
            limiter_for_thread[index].acquire(key, rate)
            if time.monotonic() >= deadline:
                return
            counts[index] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(counts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def test_memory_bucket_holds_its_rate_for_senders_taking_turns() -> None:
    """On the test's clock: three senders taking turns get 50 a second between them."""
    clock = ManualClock()
    limiter = MemoryRateLimiter(clock=clock.monotonic, sleep=clock.sleep)
    taken = 0
    while clock.monotonic() < 3.0:
        for _sender in range(3):
            limiter.acquire("global", 50.0)
            if clock.monotonic() < 3.0:
                taken += 1
    assert 135 <= taken <= 165


@pytest.mark.redis
def test_redis_bucket_is_shared_by_separate_limiters() -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}")
    key = f"test-{uuid.uuid4().hex}"
    # Three limiters, as three workers would each have their own: one bucket between them.
    limiters: list[RateLimiter] = [RedisRateLimiter(REDIS_URL) for _ in range(3)]

    taken = taken_in(limiters, key, rate=50.0, seconds=3.0)

    assert 135 <= taken <= 165


def test_no_limit_never_waits() -> None:
    limiter = MemoryRateLimiter(sleep=lambda _s: pytest.fail("waited"))
    for _ in range(1000):
        limiter.acquire("global", 0)
