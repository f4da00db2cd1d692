"""`ClusterKeyStore`: API keys shared across nodes, with revocation effective cluster-wide within a second.

Each node keeps its keys in its own SQLite file (`livesight keys` writes there, from any process).
Every `KEY_SYNC_MS` a node publishes its keys' digests and records to Redis (`ls:keys`, and
`ls:revoked` for revoked ones: store/redis_state.py) and reads back everyone's, so a key made on
node A authenticates on node B, and a key revoked anywhere (here through `revoke`, or by
`livesight keys revoke` on any node) is refused everywhere after at most two sync periods plus a
round trip. `revoke` through this store also publishes at once. Polling, not pub/sub: the whole
key set is small, and a missed message cannot leave a revoked key valid (docs/scale-out.md has the
measurement). While Redis is unreachable the last copy stays in force: known keys keep working and
known revocations stay refused.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from redis.exceptions import RedisError

from livesight.core.clock import Clock
from livesight.store.keys import ApiKey, SQLiteKeyStore, digest
from livesight.store.redis_state import ClusterState

log = logging.getLogger(__name__)
KEY_SYNC_MS = 250


class ClusterKeyStore:
    """Implements `store.keys.KeyStore`: this node's SQLite keys plus every node's, as Redis shares them."""

    def __init__(self, local: SQLiteKeyStore, state: ClusterState, clock: Clock) -> None:
        self.local = local
        self.state = state
        self.clock = clock
        self._remote: dict[str, ApiKey] = {}  # digest -> key, as last read from Redis
        self._revoked: dict[str, int] = {}  # key id -> revoked_at_ms, cluster-wide
        self._pushed: dict[str, ApiKey] = {}  # digest -> key, as this node last published it
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    def create(self, name: str = "", *, demo: bool = False) -> tuple[ApiKey, str]:
        return self.local.create(name, demo=demo)

    def verify(self, presented: str) -> ApiKey | None:
        if not presented or len(presented) > 512:
            return None
        key = self.local.verify(presented)
        if key is None:
            key = self._remote.get(digest(presented))
        if key is None or key.revoked or key.id in self._revoked:
            return None
        return key

    def list(self) -> list[ApiKey]:
        return self.local.list()

    def revoke(self, key_id_or_key: str) -> ApiKey | None:
        key = self.local.revoke(key_id_or_key)
        if key is None:  # another node's key: revoke it cluster-wide
            remote = self._remote.get(digest(key_id_or_key)) or next(
                (k for k in self._remote.values() if k.id == key_id_or_key), None
            )
            if remote is None:
                return None
            key = replace(remote, revoked_at_ms=remote.revoked_at_ms or self.clock.now_ms())
        at = key.revoked_at_ms or self.clock.now_ms()
        self._revoked[key.id] = at
        try:
            task = asyncio.get_running_loop().create_task(self.state.revoke_keys({key.id: at}))
        except RuntimeError:  # no event loop (a CLI): the next sync of a node publishes it
            return key
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return key

    def count(self, *, include_demo: bool = True) -> int:
        return self.local.count(include_demo=include_demo)

    def close(self) -> None:
        self.local.close()

    async def sync(self) -> None:
        """Publish this node's new or changed keys, then read every node's."""
        changed = [(d, k) for d, k in self.local.published() if self._pushed.get(d) != k]
        await self.state.push_keys(changed)
        self._pushed.update(changed)
        published, revoked = await self.state.pull_keys()
        if any(d not in published for d in self._pushed):  # Redis lost its data: publish everything again
            self._pushed.clear()
        self._remote.update(published)  # keys are never deleted, only revoked: a lost copy is not a removal
        lost = {kid: at for kid, at in self._revoked.items() if kid not in revoked}
        if lost:  # revocations this node knows and Redis forgot stay revoked
            await self.state.revoke_keys(lost)
        self._revoked.update(revoked)

    def stop(self) -> None:
        """End `run` after its current sync."""
        self._stopping = True

    async def run(self) -> None:
        failing = False
        while not self._stopping:
            try:
                await self.sync()
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("API key sync failed (%s): the last copy stays in force", exc)
                failing = True
            await asyncio.sleep(KEY_SYNC_MS / 1000)
