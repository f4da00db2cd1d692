"""A cluster's watches (docs/scale-out.md "Watches"): each runs on the owner of its stream, and every
node can reach it.

- `POST /v1/watches` is forwarded (api/internal.py `ForwardingMiddleware`) to the owner of the first
  stream its `ovs://` URIs name; that node stores it, runs it and records it in Redis
  (`ls:w:{id}`: its node, key and API view; `ls:wo:{key}`: the key's watches and their nodes).
- `/v1/watches/{id}...` on any node is forwarded to the node the record names.
- `GET /v1/watches` fans out: this node's own watches, and for each other node the key's index names,
  that node's list (over the internal port, the caller's key with it).
- A watch whose node is lost (no heartbeat for 3 ticks and its port unreachable) is answered from its
  record: as it ended if it had, else ended `node_lost` at that node's last heartbeat (its stream ended
  `node_lost` too: the watch ran where the stream's frames were). Its results went with the node.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from redis.exceptions import RedisError

from livesight.api.internal import SECRET_HEADER, Forwarder
from livesight.core.errors import ClusterUnavailable, WatchNotFound
from livesight.store.redis_state import ClusterState, SharedWatch

_UNREACHABLE = (RedisError, OSError)
JsonDict = dict[str, object]


class RemoteWatches:
    """The node-to-node side of watches: where each runs, other nodes' lists, a lost node's watches."""

    def __init__(self, forwarder: Forwarder, state: ClusterState, *, ended_kept_ms: int) -> None:
        self.forwarder = forwarder
        self.cluster = forwarder.cluster
        self.state = state
        self.ended_kept_ms = ended_kept_ms
        self._nodes: dict[str, str] = {}  # watch id → node: a watch never moves

    async def node_of(self, watch_id: str) -> str | None:
        """The node that runs the watch (None: unknown, or Redis unreachable: this node answers)."""
        node = self._nodes.get(watch_id)
        if node is None:
            with contextlib.suppress(*_UNREACHABLE):
                node = await self.state.watch_node(watch_id)
            if node is not None:
                if len(self._nodes) > 100_000:
                    self._nodes.clear()
                self._nodes[watch_id] = node
        return node

    async def lost(self, watch_id: str, owner: str) -> JsonDict:
        """A watch this node does not run and could not reach: its record's view (404 when unknown or
        another key's; 503 while its node is alive but unreachable, or Redis is)."""
        try:
            shared = await self.state.watch(watch_id)
        except _UNREACHABLE as exc:
            raise ClusterUnavailable("the cluster state is unreachable; retry shortly") from exc
        if shared is None or shared.owner != owner or shared.node == self.cluster.node_id:
            raise WatchNotFound(f"watch {watch_id} not found")
        if self.cluster.alive(shared.node):
            raise ClusterUnavailable(f"the node running watch {watch_id} did not answer; retry shortly")
        return await self._lost_view(shared)

    async def _lost_view(self, shared: SharedWatch) -> JsonDict:
        snap = dict(shared.snap)
        if snap.get("state") == "ended":
            return snap
        with contextlib.suppress(*_UNREACHABLE):
            await self.state.lapse_watch(shared.id, self.ended_kept_ms)  # nobody else will forget it
        beat = self.cluster.beats.get(shared.node)
        ended_at = beat.last_seen_ms if beat is not None else self.cluster.clock.now_ms()
        return {**snap, "state": "ended", "end_reason": "node_lost", "ended_at_ms": ended_at}

    async def elsewhere(self, owner: str, authorization: str | None) -> list[JsonDict]:
        """The key's watches on other nodes (live nodes answer their own list; a lost node's from the
        records). Redis unreachable: none (this node's own list is still answered)."""
        try:
            index = await self.state.watch_index(owner)
        except _UNREACHABLE:
            return []
        by_node: dict[str, set[str]] = {}
        for watch_id, node in index.items():
            if node != self.cluster.node_id:
                by_node.setdefault(node, set()).add(watch_id)
        lists = await asyncio.gather(*(self._node_list(n, ids, owner, authorization) for n, ids in by_node.items()))
        return [w for found in lists for w in found]

    async def _node_list(self, node: str, ids: set[str], owner: str, authorization: str | None) -> list[JsonDict]:
        base = self.cluster.internal_url(node)
        if base is not None and authorization:
            headers = {"authorization": authorization, SECRET_HEADER: self.forwarder.secret}
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                response = await self.forwarder.client.get(f"{base}/internal/v1/watches", headers=headers)
                if response.status_code == 200:
                    data = response.json()["data"]
                    return [w for w in data if isinstance(w, dict) and w.get("id") in ids]
        found: list[JsonDict] = []
        stale: list[tuple[str, str]] = []
        for watch_id in sorted(ids):
            with contextlib.suppress(*_UNREACHABLE):
                shared = await self.state.watch(watch_id)
                if shared is None:  # lapsed: out of the index too
                    stale.append((watch_id, owner))
                elif shared.owner == owner:
                    alive = self.cluster.alive(node)
                    found.append(dict(shared.snap) if alive else await self._lost_view(shared))
        if stale:
            with contextlib.suppress(*_UNREACHABLE):
                await self.state.forget_watches(stale)
        return found
