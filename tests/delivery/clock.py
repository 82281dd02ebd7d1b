"""A clock the test moves: the send loop, its rate limiter and its sleeps read it."""

from __future__ import annotations

import datetime as dt
import threading


class ManualClock:
    """``now`` for ``SendContext.clock``; ``monotonic`` and ``sleep`` for ``MemoryRateLimiter``.

    Sleeping advances the clock at once: a test of a rate or a back-off takes no real time.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._start = self._now = start or dt.datetime.now(dt.UTC)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return (self.now() - self._start).total_seconds()

    def sleep(self, seconds: float) -> None:
        # At least the clock's resolution, as a real sleep always lets some time pass.
        self.advance(max(seconds, 1e-6))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=max(seconds, 0.0))

    def move_to(self, when: dt.datetime) -> None:
        with self._lock:
            self._now = max(self._now, when)
