"""`ClusterDirectory`: the `StreamDirectory` of a node that shares its streams through Redis.

Redis (store/redis_state.py) is the truth for every stream's record, lease and claim; this node's
`StreamRegistry` keeps only what must stay where the frames are: the streams it owns, their buffers,
publishers and end hooks. The directory's methods stay synchronous (the seam every caller types
against): they answer from an in-memory view of the cluster's records and queue the Redis change,
which the request handler awaits in `saved()`, so a client hears of a change only once Redis has it.
A refused or failed change is rolled back and raised there (`StreamLimitExceeded`, 503
`ClusterUnavailable`).

`run()` ticks every `tick_ms`: heartbeat; renew this node's claims (restoring records an emptied
Redis lost); publish facts; read the change log into the view (ending here what was ended elsewhere);
reap due leases cluster-wide (every node reaps; the END script makes exactly one of them win); forget
old tombstones. Failure rules (docs/scale-out.md):
- **Grace:** after Redis was unreachable, or lost its data, nothing is reaped for `grace_ms`, so
  keepalives and renewals land before a lease is judged.
- **Fencing:** a stream is served here (frames in, frames out) only while this node's claim, renewed
  at monotonic time t, is younger than `claim_ttl_ms` from t. A claim found held by another node or
  epoch ends the local copy without touching the record: the stream is the other node's now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine

from redis.exceptions import RedisError

from livesight.buffer.ring import FrameWindow
from livesight.core.clock import Clock
from livesight.core.errors import ClusterUnavailable, StreamNotFound
from livesight.core.frame import IngestTarget, StreamEndHook
from livesight.core.ids import parse_stream_id
from livesight.core.records import EndReason, SourceSpec, StreamFacts
from livesight.store.redis_state import Changes, ClusterState, NodeBeat, SharedStream
from livesight.streams.cluster_parts import NO_FACTS, ClusterConfig, from_shared, limit_error, settled
from livesight.streams.registry import StreamRegistry
from livesight.streams.stream import Stream, find_stream, list_key, require_active

log = logging.getLogger(__name__)
_UNREACHABLE = (RedisError, OSError)


class ClusterDirectory:
    """Implements `streams.directory.StreamDirectory` over `ClusterState`, with `local` for owned streams."""

    def __init__(
        self,
        local: StreamRegistry,
        state: ClusterState,
        config: ClusterConfig,
        clock: Clock,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.local = local
        self.state = state
        self.config = config
        self.clock = clock
        self._monotonic = monotonic
        self._view: dict[str, Stream] = {}  # every stream the cluster knows; ours are `local`'s objects
        self._epochs: dict[str, int] = {}  # our streams: the claim epoch (known once the create landed)
        self._served_until: dict[str, float] = {}  # our streams: monotonic end of the last renewed claim
        self._published: dict[str, StreamFacts] = {}  # other nodes' streams: facts as their owner published
        self._sent: dict[str, StreamFacts] = {}  # our streams: facts as we last published them
        self._pending: weakref.WeakKeyDictionary[asyncio.Task[object], list[asyncio.Task[None]]] = (
            weakref.WeakKeyDictionary()
        )
        self._inflight: set[asyncio.Task[None]] = set()
        self._unsynced_ends: dict[str, tuple[EndReason, int]] = {}
        self._ended_now: list[str] = []
        self._seq = 0
        self._gen = ""
        self._last_full_ms = 0
        self._ticks = 0
        self.tick_hooks: list[Callable[[], Awaitable[None]]] = []  # more shared state a tick refreshes
        self.reachable = False
        self.draining = False  # SIGTERM: no placements here, the heartbeat says so (docs/scale-out.md "Drain")
        self.beats: dict[str, NodeBeat] = {}  # every node's last heartbeat, refreshed each tick
        self._node_of: dict[str, str] = {}  # every known stream: the node its record names (its owner)
        self._end_hooks: list[StreamEndHook] = []  # also called when another node's stream ends (watches here)
        self._stopping = False
        self.adopt_lost: Callable[[Stream], bool] | None = None
        """Gateway mode (`livekit_url`): a lost node's stream for which this returns True is re-placed on
        a surviving node (its media lives on the LiveKit server, not on the node) instead of ending."""
        self.on_adopted: list[Callable[[Stream], None]] = []  # e.g. start the re-placed stream's gateway
        self.started_at_ms = clock.now_ms()
        self._grace_until_ms = self.started_at_ms + config.grace_ms

    @property
    def durable(self) -> bool:
        return False  # a node's streams end with it (drain and re-placement are docs/scale-out.md's next steps)

    @property
    def node_id(self) -> str:
        return self.config.node_id

    # --- the StreamDirectory seam ------------------------------------------------------------------

    def create(self, owner: str, *, source: SourceSpec | None = None) -> Stream:
        limit = self.local.limits.max_active_per_owner
        if self.active_count(owner) >= limit:
            raise limit_error(limit)
        stream = self.local.create(owner, source=source)
        self._view[stream.id] = stream
        self._node_of[stream.id] = self.node_id
        self._served_until[stream.id] = self._monotonic() + self.config.claim_ttl_ms / 1000
        self._queue(self._create_remote(stream, limit))
        return stream

    def get(self, stream_id: str, owner: str) -> Stream:
        return find_stream(self._view, stream_id, owner)

    def get_active(self, stream_id: str, owner: str) -> Stream:
        return require_active(self.get(stream_id, owner))

    def keepalive(self, stream_id: str, owner: str) -> Stream:
        stream = self.get_active(stream_id, owner)
        stream.expires_at_ms = self.clock.now_ms() + stream.ttl_seconds * 1000
        self._queue(self._keepalive_remote(stream))
        return stream

    def owned(self, owner: str) -> list[Stream]:
        return sorted((s for s in self._view.values() if s.owner == owner), key=list_key)

    def all_active(self) -> list[Stream]:
        """The active streams this node owns (serves); other nodes' streams are in `owned`/`get`."""
        return [s for s in self.local.all_active() if self._is_mine(s.id)]

    def active_count(self, owner: str) -> int:
        return sum(1 for s in self._view.values() if s.owner == owner and s.active)

    def end(self, stream: Stream, reason: EndReason) -> None:
        if not stream.active:
            return
        if self._is_mine(stream.id):
            self.local.end(stream, reason)
            self._forget_claim(stream.id)
        else:
            stream.state, stream.ended_at_ms, stream.end_reason = "ended", self.clock.now_ms(), reason
            stream.final = stream.final or NO_FACTS
            self._remote_ended(stream.id)
        self._queue(self._end_remote(stream.id, reason, stream.ended_at_ms or 0, stream.final))

    def end_all(self, reason: EndReason = "deleted") -> int:
        active = self.all_active()
        for stream in active:
            self.end(stream, reason)
        return len(active)

    def reap(self) -> list[str]:
        """Local housekeeping (frames, old local tombstones); the leases are reaped in Redis by `tick`."""
        self.local.reap()
        ended, self._ended_now = self._ended_now, []
        return ended

    def facts(self, stream: Stream) -> StreamFacts:
        if self._is_mine(stream.id) or stream.final is not None:
            return self.local.facts(stream)
        return self._published.get(stream.id, NO_FACTS)

    def window(self, stream: Stream) -> FrameWindow | None:
        return self.local.window(stream) if self.serving(stream.id) else None

    async def saved(self) -> None:
        """Wait for the Redis changes this request queued; raise the first refusal or failure."""
        task = asyncio.current_task()
        ops = self._pending.pop(task, []) if task is not None else []
        for result in await asyncio.gather(*ops, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result

    def close(self) -> None:
        self.local.close()

    def ingest_target(self, stream_id: str) -> IngestTarget | None:
        canonical = parse_stream_id(stream_id)
        if canonical is None or not self.serving(canonical):
            return None
        return self.local.ingest_target(canonical)

    def add_end_hook(self, hook: StreamEndHook) -> None:
        self.local.add_end_hook(hook)  # this node's streams
        self._end_hooks.append(hook)  # other nodes' streams, once this node learns they ended

    def _remote_ended(self, stream_id: str) -> None:
        for hook in self._end_hooks:
            try:
                hook(stream_id)
            except Exception:
                log.exception("end hook failed for stream %s", stream_id)

    # --- ownership --------------------------------------------------------------------------------

    def serving(self, stream_id: str) -> bool:
        """True while this node owns the stream and its claim is known to be held (fencing)."""
        until = self._served_until.get(stream_id)
        return until is not None and self._monotonic() < until

    def owner_node(self, stream_id: str) -> str | None:
        """The node that owns an active stream this node knows of (itself included); None otherwise."""
        canonical = parse_stream_id(stream_id)
        stream = self._view.get(canonical) if canonical is not None else None
        if canonical is None or stream is None or not stream.active:
            return None
        return self.node_id if self._is_mine(canonical) else self._node_of.get(canonical)

    def known(self, stream_id: str) -> Stream | None:
        """A stream this node knows of, by id, whoever owns it (for the cluster's own plumbing)."""
        canonical = parse_stream_id(stream_id)
        return self._view.get(canonical) if canonical is not None else None

    def ended_elsewhere(self, stream_id: str, reason: EndReason, ended_at_ms: int) -> None:
        """Its owner says another node's stream has ended (before this node's tick reads it): show it
        ended here now, and run the end hooks (watches here end with it)."""
        stream = self.known(stream_id)
        if stream is None or not stream.active or self._is_mine(stream.id):
            return
        stream.state, stream.ended_at_ms, stream.end_reason = "ended", ended_at_ms, reason
        stream.final = stream.final or NO_FACTS
        self._remote_ended(stream.id)

    def alive(self, node: str) -> bool:
        """`node` sent a heartbeat within 3 ticks (as this node last read them)."""
        beat = self.beats.get(node)
        return beat is not None and beat.last_seen_ms >= self.clock.now_ms() - 3 * self.config.tick_ms

    def internal_url(self, node: str) -> str | None:
        """Where `node` takes forwarded requests; None for this node, one that left, or one unseen for a
        whole claim lease (the reaper's bound: it is lost). Between 3 ticks and the lease it is tried (a
        refused connection says lost; a slow tick here, or there, does not); while this node cannot
        read the heartbeats, its last known address is tried too."""
        beat = self.beats.get(node)
        if node == self.node_id or beat is None:
            return None
        if self.reachable and beat.last_seen_ms < self.clock.now_ms() - self.config.claim_ttl_ms:
            return None
        url = self.beats[node].info.get("internal_url")
        return url if isinstance(url, str) and url else None

    def load(self) -> dict[str, int]:
        """Active streams per node, from the records this node knows (its own count exactly)."""
        counts: dict[str, int] = {}
        for sid, stream in self._view.items():
            node = self._node_of.get(sid)
            if stream.active and node is not None:
                counts[node] = counts.get(node, 0) + 1
        counts[self.node_id] = len(self.all_active())
        return counts

    async def place(self) -> str:
        """The node a new stream goes to: least loaded (active streams / capacity) among the live,
        non-draining nodes with room that can take forwarded requests; ties go to this node, then by id.
        This node when no other qualifies (it may then refuse with the per-key or its own limit). The
        heartbeats are read afresh (one round trip), so a node that just joined or began draining counts."""
        with contextlib.suppress(*_UNREACHABLE):
            self.beats = {beat.node: beat for beat in await self.state.nodes()}
        load = self.load()
        candidates: list[tuple[float, int, str]] = []
        if not self.draining:
            candidates.append((load[self.node_id] / self.config.capacity, 0, self.node_id))
        for node, beat in self.beats.items():
            capacity = beat.info.get("capacity")
            if not self.alive(node) or self.internal_url(node) is None or beat.info.get("draining"):
                continue
            if not isinstance(capacity, int):
                continue
            used = max(load.get(node, 0), _int(beat.info.get("streams")))
            if capacity > 0 and used < capacity:
                candidates.append((used / capacity, 1, node))
        mine = load[self.node_id]
        if not self.draining and mine >= self.config.capacity and len(candidates) > 1:
            candidates = [c for c in candidates if c[2] != self.node_id]
        return min(candidates)[2] if candidates else self.node_id

    async def refresh(self) -> None:
        """Read the change log now (after a stream was placed on another node: it is known here at once)."""
        with contextlib.suppress(*_UNREACHABLE):
            self._apply(await self.state.changes(self._seq, self._gen), self.clock.now_ms())

    async def drain(self) -> None:
        """Stop taking placements: the heartbeat says `draining` from now on (sent at once)."""
        self.draining = True
        with contextlib.suppress(*_UNREACHABLE):
            await self.state.heartbeat(self.node_id, self.clock.now_ms(), self.node_info())

    def _is_mine(self, stream_id: str) -> bool:
        return stream_id in self._served_until

    def _forget_claim(self, stream_id: str) -> None:
        self._served_until.pop(stream_id, None)
        self._epochs.pop(stream_id, None)

    def _shared(self, stream: Stream, expires_at_ms: int | None = None) -> SharedStream:
        return SharedStream(
            stream.id,
            stream.owner,
            stream.created_at_ms,
            stream.ttl_seconds,
            stream.expires_at_ms if expires_at_ms is None else expires_at_ms,
            stream.state,
            self.node_id,
            self._epochs.get(stream.id, 0),
            source=stream.source,
        )

    def _fenced(self, stream_id: str, record: SharedStream | None) -> None:
        """Another node holds this stream's claim: stop serving it and show the record as theirs."""
        stream = self._view.get(stream_id)
        log.warning("stream %s: claim held elsewhere (%s); no longer served here", stream_id, record and record.node)
        self._forget_claim(stream_id)
        if stream is not None and stream.active:
            self.local.end(stream, "deleted")  # frees frames, disconnects the publisher; the record is untouched
        if record is None:
            self._view.pop(stream_id, None)
        else:
            self._view[stream_id] = from_shared(record)

    # --- Redis changes a request waits for ---------------------------------------------------------

    def _queue(self, coro: Coroutine[object, object, None]) -> None:
        op = asyncio.get_running_loop().create_task(coro)
        self._inflight.add(op)
        op.add_done_callback(settled(self._inflight))
        caller = asyncio.current_task()
        if caller is not None:
            self._pending.setdefault(caller, []).append(op)

    async def _create_remote(self, stream: Stream, limit: int) -> None:
        try:
            epoch = await self.state.create(
                self._shared(stream), claim_ttl_ms=self.config.claim_ttl_ms, limit=limit, now_ms=self.clock.now_ms()
            )
        except _UNREACHABLE as exc:
            self._roll_back(stream)
            raise ClusterUnavailable("the cluster state is unreachable; retry shortly") from exc
        if epoch < 0:
            self._roll_back(stream)
            raise limit_error(limit)
        self._epochs[stream.id] = epoch

    def _roll_back(self, stream: Stream) -> None:
        self._forget_claim(stream.id)
        self._view.pop(stream.id, None)
        self.local.end(stream, "deleted")

    async def _keepalive_remote(self, stream: Stream) -> None:
        try:
            renewed = await self.state.keepalive(stream.id, stream.owner, stream.expires_at_ms)
        except _UNREACHABLE as exc:
            raise ClusterUnavailable("the cluster state is unreachable; the lease was not renewed") from exc
        if renewed != 1:
            raise StreamNotFound(f"stream {stream.id} has ended")

    async def _end_remote(self, stream_id: str, reason: EndReason, ended_at_ms: int, final: StreamFacts | None) -> None:
        try:
            await self.state.end(stream_id, reason, ended_at_ms, final)
        except _UNREACHABLE as exc:
            self._unsynced_ends[stream_id] = (reason, ended_at_ms)  # the tick retries it
            raise ClusterUnavailable("the cluster state is unreachable; the stream ends cluster-wide later") from exc

    # --- the tick ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """End `run` after its current tick (a cancel alone can be lost inside a Redis call on Python 3.11)."""
        self._stopping = True

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except Exception:  # a bug must not stop the renewals: this node would lose every stream
                log.exception("cluster tick failed")
            await asyncio.sleep(self.config.tick_ms / 1000)

    async def tick(self) -> None:
        now = self.clock.now_ms()
        try:
            await self.state.heartbeat(self.node_id, now, self.node_info())
            self.beats = {beat.node: beat for beat in await self.state.nodes()}
        except _UNREACHABLE as exc:
            if self.reachable:
                ttl = self.config.claim_ttl_ms
                log.warning("cluster state unreachable (%s): not reaping; claims lapse in %d ms", exc, ttl)
            self.reachable = False
            return
        if not self.reachable:
            self.reachable = True
            self._grace_until_ms = max(self._grace_until_ms, now + self.config.grace_ms)
        try:
            await self._sync(now)
        except _UNREACHABLE as exc:
            log.warning("cluster tick failed: %s", exc)
            self.reachable = False

    async def _sync(self, now: int) -> None:
        self._ticks += 1
        for hook in self.tick_hooks:
            await hook()
        mine = [s for s in self.local.all_active() if s.id in self._epochs]
        grace_deadline = now + self.config.grace_ms
        started, ttl = self._monotonic(), self.config.claim_ttl_ms
        held = [self._shared(s, max(s.expires_at_ms, grace_deadline)) for s in mine]
        results = await self.state.renew_all(held, claim_ttl_ms=ttl, now_ms=now)
        for stream, result in zip(mine, results, strict=True):
            if result > 0:
                self._served_until[stream.id] = started + ttl / 1000
            elif result == 0:
                self._fenced(stream.id, await self.state.record(stream.id))
        if self._ticks % self.config.facts_every_ticks == 0:
            now_facts = {s.id: self.local.facts(s) for s in mine if self._is_mine(s.id)}
            changed = {sid: f for sid, f in now_facts.items() if self._sent.get(sid) != f}
            await self.state.publish_facts(changed)  # unchanged ones cost no write and no mirror refetch
            self._sent = now_facts
        for sid, (reason, at) in list(self._unsynced_ends.items()):
            ended = self._view.get(sid)
            await self.state.end(sid, reason, at, ended.final if ended else None)
            del self._unsynced_ends[sid]
        full = now - self._last_full_ms >= self.config.full_resync_ms
        self._apply(await self.state.changes(0 if full else self._seq, "" if full else self._gen), now)
        if now < self._grace_until_ms:
            return
        reaped = False
        for sid in await self.state.due(now):
            due = self._view.get(sid)
            final = self.local.facts(due) if due is not None and self._is_mine(sid) else None
            reaped |= await self.state.end(sid, "expired", now, final, if_due_by_ms=now)
        for sid in await self.state.unrenewed(now):  # their node is gone: nobody renewed the claim
            if await self._adopt(sid, now):
                reaped = True
                continue
            if await self.state.end(sid, "node_lost", now, if_unclaimed=True):
                log.warning("stream %s ended: its node stopped renewing its claim", sid)
                reaped = True
        await self.state.forget_tombstones(now - self.local.limits.tombstone_ms, now)
        if reaped:
            self._apply(await self.state.changes(self._seq, self._gen), now)

    async def _adopt(self, sid: str, now: int) -> bool:
        """Re-place a lost node's stream here (gateway mode): claim it (epoch + 1; exactly one node wins),
        serve it from the local registry with its indexes continuing past what the lost node may have
        handed out, and start its media (`on_adopted`). False: not adoptable here, or another node won."""
        seen = self._view.get(sid)
        if self.adopt_lost is None or self.draining or seen is None or not seen.active or not self.adopt_lost(seen):
            return False
        if len(self.all_active()) >= self.config.capacity:
            return False
        epoch = await self.state.claim(sid, self.node_id, claim_ttl_ms=self.config.claim_ttl_ms, now_ms=now)
        if epoch <= 0:
            return epoch == 0  # 0: another node claimed it first (it is theirs now); -1: it ended meanwhile
        record = await self.state.record(sid)
        stream = from_shared(record) if record is not None else seen
        facts = self._published.get(sid)
        skip = self.config.adopt_index_gap
        self.local.adopt(stream, facts.buffer if facts is not None else None, index_gap=skip)
        self._view[sid] = stream
        self._node_of[sid] = self.node_id
        self._epochs[sid] = epoch
        self._served_until[sid] = self._monotonic() + self.config.claim_ttl_ms / 1000
        log.warning("stream %s: its node stopped renewing its claim; re-placed here (epoch %d)", sid, epoch)
        for hook in self.on_adopted:
            try:
                hook(stream)
            except Exception:
                log.exception("stream %s: re-placed, but its media did not restart", sid)
        return True

    def _apply(self, changes: Changes, now: int) -> None:
        if changes.full:
            if self._gen and changes.gen != self._gen:  # Redis lost its data: let owners restore first
                log.warning("cluster state was emptied (a Redis restart?): restoring, not reaping for a grace")
                self._grace_until_ms = max(self._grace_until_ms, now + self.config.grace_ms)
            elif not self._gen or now - self._last_full_ms >= self.config.full_resync_ms:
                for sid in [sid for sid in self._view if sid not in changes.records and not self._is_mine(sid)]:
                    del self._view[sid]
            self._last_full_ms = now
        self._seq, self._gen = changes.seq, changes.gen
        for sid, record in changes.records.items():
            if record is None:
                if not self._is_mine(sid):
                    self._view.pop(sid, None)
                    self._node_of.pop(sid, None)
                    self._published.pop(sid, None)
            elif self._is_mine(sid):
                self._apply_mine(sid, record)
            else:
                self._apply_remote(record)

    def _apply_mine(self, sid: str, record: SharedStream) -> None:
        stream = self._view.get(sid)
        epoch = self._epochs.get(sid)
        if stream is None:
            return
        if epoch is not None and (record.node != self.node_id or record.epoch != epoch):
            self._fenced(sid, record)
        elif record.state == "ended" and stream.active:
            self.local.end(stream, record.end_reason or "deleted")
            stream.ended_at_ms = record.ended_at_ms or stream.ended_at_ms
            self._forget_claim(sid)
            if record.end_reason == "expired":
                self._ended_now.append(sid)
            if stream.final is not None:
                self._queue_background(self.state.set_final(sid, stream.final))
        elif record.state == "active":
            stream.expires_at_ms = record.expires_at_ms

    def _apply_remote(self, record: SharedStream) -> None:
        self._node_of[record.id] = record.node
        if record.state == "active" and record.node == self.node_id and record.created_at_ms < self.started_at_ms:
            # A ghost: this node's id owned it in a previous life (killed, restarted); its frames and
            # publisher died with that process, so it ends now instead of when its claim lapses.
            log.warning("stream %s: owned by this node before it restarted; ending it (node_lost)", record.id)
            self._queue_background(self._end_ghost(record.id))
        if record.facts is not None:
            self._published[record.id] = record.facts
        stream = self._view.get(record.id)
        if stream is None:
            self._view[record.id] = from_shared(record)
            return
        stream.expires_at_ms = record.expires_at_ms
        if record.state == "ended":
            was_active = stream.active
            stream.state, stream.ended_at_ms, stream.end_reason = "ended", record.ended_at_ms, record.end_reason
            stream.final = record.final or stream.final or NO_FACTS
            if was_active:
                self._remote_ended(record.id)

    async def _end_ghost(self, stream_id: str) -> None:
        with contextlib.suppress(*_UNREACHABLE):
            await self.state.end(stream_id, "node_lost", self.clock.now_ms())

    def _queue_background(self, coro: Coroutine[object, object, None]) -> None:
        op = asyncio.get_running_loop().create_task(coro)
        self._inflight.add(op)
        op.add_done_callback(settled(self._inflight))

    def node_info(self) -> dict[str, object]:
        """What this node's heartbeat tells the cluster (GET /v1/cluster shows it)."""
        mine = self.all_active()
        return {
            "streams": len(mine),
            "publishers": sum(1 for s in mine if s.publisher.connected),
            "retained_frames": self.local.pool.retained_frames(),
            "started_at_ms": self.started_at_ms,
            "capacity": self.config.capacity,
            "draining": self.draining,
            "internal_url": self.config.internal_url or "",
        }

    async def hand_off(self) -> int:
        """Gateway mode shutdown (a drain): release this node's claims so the surviving nodes re-place its
        streams at their next tick instead of the streams ending; the local copies stop here (frames
        freed, rooms left), the records stay active. Returns how many were handed off."""
        mine = self.all_active() if self.adopt_lost is not None else []
        handed = 0
        for stream in mine:
            if not self.adopt_lost or not self.adopt_lost(stream):
                continue
            epoch = self._epochs.get(stream.id)
            with contextlib.suppress(*_UNREACHABLE):
                if epoch is not None and await self.state.release(stream.id, self.node_id, epoch):
                    handed += 1
            self._forget_claim(stream.id)
            self.local.end(stream, "deleted")  # this node's copy only: the record is untouched
        return handed

    async def aclose(self) -> None:
        """After the last request: let queued changes land, leave the node list, close the client."""
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        with contextlib.suppress(*_UNREACHABLE):
            await self.state.leave(self.node_id)
        await self.state.aclose()


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
