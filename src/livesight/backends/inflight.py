"""`upstream_inflight_mb`: a bound on the memory of request bodies being built or sent to upstreams.

One budget is shared by every upstream model. Before rendering, a request reserves what its body
will hold (`estimate`: the base64 of each distinct frame once, plus inline media URLs); once the body
is built the reservation becomes its exact `Body.held`; it is returned as soon as the body has been
sent (or the request was abandoned), not when the answer arrives. A request that does not fit waits
up to `upstream_inflight_wait_s` for room, then gets 503 `upstream_busy` with `Retry-After`; one that
could never fit (its body alone is larger than the whole budget) gets 413 `upstream_body_too_large`.
Waiting is first come, first served only roughly: every release wakes every waiter to retry.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from livesight.backends.body import base64_size
from livesight.backends.request import ChatRequest
from livesight.core.errors import UpstreamBodyTooLarge, UpstreamBusy

MB = 1024 * 1024


def estimate(request: ChatRequest) -> int:
    """Bytes a rendered body of this request will hold: each distinct frame's base64 once, plus every
    inline media URL the client sent (they are copied into the body)."""
    distinct = {id(f.jpeg): len(f.jpeg) for item in request.media() for f in item.frames}
    return sum(base64_size(n) for n in distinct.values()) + sum(len(p.url or "") for p in request.inline_media())


class InflightBudget:
    """Defaults are those of the settings; `create_app` passes the configured ones."""

    def __init__(self, limit_bytes: int = 512 * MB, wait_s: float = 2.0) -> None:
        self.limit = limit_bytes
        self.wait_s = wait_s
        self.used = 0
        self._waiters: list[asyncio.Future[None]] = []

    async def reserve(self, nbytes: int, what: str) -> Reservation:
        if nbytes > self.limit:
            raise UpstreamBodyTooLarge(
                f"{what}: the request body for the upstream would hold {_mb(nbytes)} MB, more than "
                f"upstream_inflight_mb={_mb(self.limit)} allows for all requests together: send fewer or smaller frames"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while self.used + nbytes > self.limit:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise UpstreamBusy(
                    f"{what}: {_mb(self.used)} MB of request bodies are being sent to upstream models and this request "
                    f"needs {_mb(nbytes)} MB more than upstream_inflight_mb={_mb(self.limit)} allows; retry shortly",
                    headers={"retry-after": str(max(1, math.ceil(self.wait_s)))},
                )
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait((waiter,), timeout=remaining)
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.used += nbytes
        return Reservation(self, nbytes)

    def _release(self, nbytes: int) -> None:
        self.used -= nbytes
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Reservation:
    """Bytes held under the budget; `release` is idempotent and synchronous (safe in any `finally`)."""

    def __init__(self, budget: InflightBudget, nbytes: int) -> None:
        self._budget = budget
        self.nbytes = nbytes
        self.released = False
        self.on_release: Callable[[], None] | None = None

    def resize(self, nbytes: int) -> None:
        """The exact size once the body is built (never waits; a larger body may pass the limit briefly)."""
        if not self.released:
            self._budget.used += nbytes - self.nbytes
            self.nbytes = nbytes

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._budget._release(self.nbytes)
            if self.on_release is not None:
                self.on_release()


def _mb(nbytes: int) -> str:
    return f"{nbytes / MB:.1f}".rstrip("0").rstrip(".") if nbytes % MB else str(nbytes // MB)
