"""Per-key rate limiting on chat (CONTRACT §1): a token bucket of `rate_limit_rps` per API key.

The bucket holds at most max(1, rps) requests (one second's worth) and refills continuously.
Headers: `x-ratelimit-limit` (requests per second), `x-ratelimit-remaining` (whole requests left
now), `x-ratelimit-reset` (Unix seconds when the bucket is full again); a refused request is
429 `rate_limit_error` with `retry-after: 1`. Off when `rps` is None. Use from the event loop.
"""

from __future__ import annotations

import math

from livesight.core.clock import Clock
from livesight.core.errors import RateLimited


class RateLimiter:
    def __init__(self, rps: float | None, clock: Clock) -> None:
        self.rps = rps
        self._clock = clock
        self._capacity = max(1.0, rps or 1.0)
        self._buckets: dict[str, tuple[float, int]] = {}  # key id -> (tokens, at_ms)

    def check(self, key_id: str) -> dict[str, str]:
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
            raise RateLimited(
                f"rate limit of {self.rps:g} requests per second for this API key exceeded; retry in a second",
                headers={**headers, "retry-after": "1"},
            )
        return headers
