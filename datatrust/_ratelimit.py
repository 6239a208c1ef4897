"""Fair shares of a node or the gateway: a token bucket per client and per person.

A partner system stuck in a retry loop, or one person scripting queries, must not starve
everyone else. Each verified requester draws from two buckets, its client's and (for a
person) its own; an empty bucket refuses with 429 and says when to come back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from datatrust.errors import RateLimited

__all__ = ["RateLimiter"]

MAX_TRACKED_KEYS = 100_000


class RateLimiter:
    """Token buckets: ``per_minute`` requests a minute, bursts of up to ``burst``."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, *keys: str) -> None:
        """Take one request from each of ``keys``' buckets, or raise RateLimited (taking none)."""
        now = self._clock()
        with self._lock:
            levels = {key: self._level(key, now) for key in keys}
            short = {key: level for key, level in levels.items() if level < 1.0}
            if short:
                key, level = min(short.items(), key=lambda item: item[1])
                wait = (1.0 - level) / self.rate
                raise RateLimited(
                    f"too many requests for {key}: at most {self.rate * 60:g} a minute "
                    f"(bursts of {self.burst:g}); try again in {wait:.1f} s",
                    retry_after_seconds=round(wait, 3),
                )
            for key, level in levels.items():
                self._buckets[key] = (level - 1.0, now)
            if len(self._buckets) > MAX_TRACKED_KEYS:
                self._forget_full(now)

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they hold no state worth keeping."""
        full = [key for key in self._buckets if self._level(key, now) >= self.burst]
        for key in full:
            del self._buckets[key]
