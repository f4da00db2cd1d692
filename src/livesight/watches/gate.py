"""ModelGate: a global cap on concurrent model calls from watches, shared round-robin between keys,
with interactive `/chat/completions` calls first.

Watches `await gate.acquire(owner)` / `gate.release()` around each model call. Interactive calls
wrap theirs in `async with gate.interactive():`; they never wait, but while any is in flight no
waiting watch call starts (calls already started finish). When a slot frees, the next waiting call
is taken from the next key in round-robin order, so a key with 100 watches cannot starve a key with one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator


class ModelGate:
    def __init__(self, max_concurrent: int) -> None:
        self.max_concurrent = max_concurrent
        self.running = 0
        self.interactive_running = 0
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    async def acquire(self, owner: str) -> None:
        if self.running < self.max_concurrent and not self.interactive_running and not self._waiting:
            self.running += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(owner, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted as it was cancelled: hand the slot on
            else:
                self._drop(owner, future)
            raise

    def release(self) -> None:
        self.running -= 1
        self._wake()

    @contextlib.asynccontextmanager
    async def interactive(self) -> AsyncIterator[None]:
        self.interactive_running += 1
        try:
            yield
        finally:
            self.interactive_running -= 1
            self._wake()

    def _drop(self, owner: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(owner)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._waiting[owner]

    def _wake(self) -> None:
        while self._waiting and self.running < self.max_concurrent and not self.interactive_running:
            owner, queue = next(iter(self._waiting.items()))
            future = queue.popleft()
            del self._waiting[owner]
            if queue:
                self._waiting[owner] = queue  # to the back: round-robin between keys
            if future.cancelled():
                continue
            self.running += 1
            future.set_result(None)
