"""Per-key rate limiting on chat (CONTRACT §1): a token bucket of `rate_limit_rps` per API key.

The bucket holds at most max(1, rps) requests (one second's worth) and refills continuously.
Headers: `x-ratelimit-limit` (requests per second), `x-ratelimit-remaining` (whole requests left
now), `x-ratelimit-reset` (Unix seconds when the bucket is full again); a refused request is
429 `rate_limit_error` with `retry-after: 1`. Off when `rps` is None. Use from the event loop.

In a cluster (`redis_url`), `SharedRateLimiter` counts each key across every node with the `limits`
library's moving window in Redis instead: max(1, round(rps)) requests in any 1 s window (or 1 in any
round(1/rps) s when rps < 1), same headers. While Redis is unreachable it falls back to this node's
bucket (fail open to one node's share, never to no limit).
"""

from __future__ import annotations

import math
from typing import Protocol

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from livesight.core.clock import Clock
from livesight.core.errors import RateLimited


class Limiter(Protocol):
    async def check(self, key_id: str) -> dict[str, str]:
        """Take one request for the key; the headers to send, or RateLimited."""
        ...


class RateLimiter:
    def __init__(self, rps: float | None, clock: Clock) -> None:
        self.rps = rps
        self._clock = clock
        self._capacity = max(1.0, rps or 1.0)
        self._buckets: dict[str, tuple[float, int]] = {}  # key id -> (tokens, at_ms)

    async def check(self, key_id: str) -> dict[str, str]:
        """Take one request from the key's bucket; the headers to send, or RateLimited."""
        if self.rps is None:
            return {}
        now = self._clock.now_ms()
        tokens, at = self._buckets.get(key_id, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - at) * self.rps / 1000)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key_id] = (tokens, now)
        reset_s = math.ceil((now + (self._capacity - tokens) / self.rps * 1000) / 1000)
        headers = {
            "x-ratelimit-limit": f"{self.rps:g}",
            "x-ratelimit-remaining": str(math.floor(tokens)),
            "x-ratelimit-reset": str(reset_s),
        }
        if not allowed:
            raise _refused(self.rps, headers)
        return headers


def _refused(rps: float, headers: dict[str, str]) -> RateLimited:
    return RateLimited(
        f"rate limit of {rps:g} requests per second for this API key exceeded; retry in a second",
        headers={**headers, "retry-after": "1"},
    )


def limits_uri(redis_url: str) -> str:
    """The `limits` storage URI of a redis-py URL (redis://, rediss://, unix://)."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


class SharedRateLimiter:
    """The per-key chat limit counted across the cluster (module docstring)."""

    def __init__(self, rps: float | None, redis_url: str, fallback: Limiter) -> None:
        self.rps = rps
        self._fallback = fallback
        self._item: RateLimitItem | None = None
        if rps is not None:
            self._item = (
                RateLimitItemPerSecond(max(1, round(rps)), 1) if rps >= 1 else RateLimitItemPerSecond(1, round(1 / rps))
            )
        storage = RedisStorage(
            limits_uri(redis_url),
            implementation="redispy",
            key_prefix="ls:rl",
            wrap_exceptions=True,
            socket_timeout=1,
            socket_connect_timeout=1,
        )
        self._limiter = MovingWindowRateLimiter(storage)

    async def check(self, key_id: str) -> dict[str, str]:
        if self.rps is None or self._item is None:
            return {}
        try:
            allowed = await self._limiter.hit(self._item, key_id)
            stats = await self._limiter.get_window_stats(self._item, key_id)
        except (StorageError, RedisError, OSError):
            return await self._fallback.check(key_id)
        headers = {
            "x-ratelimit-limit": f"{self.rps:g}",
            "x-ratelimit-remaining": str(stats.remaining),
            "x-ratelimit-reset": str(math.ceil(stats.reset_time)),
        }
        if not allowed:
            raise _refused(self.rps, headers)
        return headers
