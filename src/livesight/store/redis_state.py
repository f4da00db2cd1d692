"""Shared cluster state in Redis: stream records, leases, claims, tombstones, node heartbeats, key cache.

One standalone Redis (or a Sentinel-managed primary; not Redis Cluster: the scripts of
redis_scripts.py name keys they build from ids). Every multi-key change is one script, so it is
atomic. Times are the calling node's wall clock in ms (nodes are expected to run NTP; skew shifts a
lease by the skew).

Key layout (prefix `ls:`, docs/scale-out.md has the same table):
- `ls:s:{id}` hash: the stream record (owner, created_at_ms, ttl_seconds, expires_at_ms, state,
  ended_at_ms, end_reason, source, final, node, epoch).
- `ls:lease` zset id → lease deadline (ms), active streams only: the reaper reads it by score.
- `ls:tomb` zset id → ended_at_ms: tombstones, forgotten `tombstone_ms` after they ended.
- `ls:own:{owner}` set of the owner's active stream ids: the cluster-wide per-key limit.
- `ls:claim:{id}` string `node|epoch` with a PX TTL: who serves the stream. The epoch (the record's
  `epoch`, +1 on every claim) fences a node whose claim lapsed and was taken over.
- `ls:claims` zset id → claim deadline (ms): the reaper finds claims nobody renewed (a lost node)
  by score, and ends those streams `node_lost` if the claim key is really gone.
- `ls:seq` counter and `ls:chg` zset id → seq of its last change: nodes mirror the records by
  reading changes since the seq they saw; `ls:gone` zset id → forgotten_at trims that log.
- `ls:gen`: a random token set once; a changed token means Redis lost its data (a restart without
  persistence): nodes then resync in full and owners restore their streams' records.
- `ls:nodes` hash node → JSON heartbeat; `ls:seen` zset node → last heartbeat ms.
- `ls:wc:{node}` hash owner → that node's watches not ended, with a PX TTL of 3 ticks (a lost
  node's count lapses): the cluster-wide per-key watch limit sums them.
- `ls:w:{watch}` hash: where a watch runs (`node`: the owner of its stream), its key (`owner`) and
  `snap`, its API view as its node last published it (what other nodes answer once that node is
  lost); PX `ended_kept_ms` once it ended. `ls:wo:{owner}` hash watch → node: the key's watches
  cluster-wide (what `GET /v1/watches` fans out over). Both go when the watch is forgotten.
- `ls:keys` hash SHA-256 digest → JSON API key; `ls:revoked` hash key id → revoked_at_ms.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from livesight.core.errors import ClusterUnavailable
from livesight.core.records import EndReason, SourceSpec, StreamFacts, StreamState
from livesight.store import redis_scripts as lua
from livesight.store.keys import ApiKey
from livesight.store.streams import _dump_final, _dump_source, _end_reason, _load_final, _load_source, _state

P = "ls:"
LEASE, TOMB, SEQ, CHG, GONE, GEN = P + "lease", P + "tomb", P + "seq", P + "chg", P + "gone", P + "gen"
CLAIMS, WATCH_COUNTS = P + "claims", P + "wc:"
NODES, SEEN, KEYS, REVOKED = P + "nodes", P + "seen", P + "keys", P + "revoked"
CHANGE_LOG_KEEP_MS = 60_000  # a forgotten id stays in the change log this long (mirrors see it go)


def rec_key(stream_id: str) -> str:
    return f"{P}s:{stream_id}"


def own_key(owner: str) -> str:
    return f"{P}own:{owner}"


def claim_key(stream_id: str) -> str:
    return f"{P}claim:{stream_id}"


def watch_key(watch_id: str) -> str:
    return f"{P}w:{watch_id}"


def watch_index_key(owner: str) -> str:
    return f"{P}wo:{owner}"


@dataclass(frozen=True, slots=True)
class SharedWatch:
    """Where a watch runs, whose it is, and its API view as that node last published it."""

    id: str
    node: str
    owner: str
    snap: dict[str, object]


@dataclass(frozen=True, slots=True)
class SharedStream:
    """A stream record as Redis holds it."""

    id: str
    owner: str
    created_at_ms: int
    ttl_seconds: int
    expires_at_ms: int
    state: StreamState
    node: str
    epoch: int
    source: SourceSpec | None = None
    ended_at_ms: int | None = None
    end_reason: EndReason | None = None
    final: StreamFacts | None = None
    facts: StreamFacts | None = None  # an active stream's facts as its owner last published them


@dataclass(frozen=True, slots=True)
class Changes:
    """Records changed since a seq: `records` by id (None: forgotten); `full` when it is every record."""

    seq: int
    gen: str
    full: bool
    records: dict[str, SharedStream | None]


@dataclass(frozen=True, slots=True)
class NodeBeat:
    node: str
    last_seen_ms: int
    info: dict[str, object]


def _parse(stream_id: str, h: Mapping[str, str]) -> SharedStream | None:
    if "owner" not in h:
        return None
    ended = h.get("ended_at_ms")
    return SharedStream(
        id=stream_id,
        owner=h["owner"],
        created_at_ms=int(h.get("created_at_ms", 0)),
        ttl_seconds=int(h.get("ttl_seconds", 0)),
        expires_at_ms=int(h.get("expires_at_ms", 0)),
        state=_state(h.get("state", "ended")),
        node=h.get("node", ""),
        epoch=int(h.get("epoch", 0)),
        source=_load_source(h.get("source") or None),
        ended_at_ms=int(ended) if ended else None,
        end_reason=_end_reason(h.get("end_reason")),
        final=_load_final(h.get("final") or None),
        facts=_load_final(h.get("facts") or None),
    )


class ClusterState:
    """The Redis side of the cluster: each method is one round trip (a script or a pipeline)."""

    def __init__(self, client: Redis) -> None:
        self.redis = client
        self._create = client.register_script(lua.CREATE)
        self._keepalive = client.register_script(lua.KEEPALIVE)
        self._end = client.register_script(lua.END)
        self._final = client.register_script(lua.FINAL)
        self._facts = client.register_script(lua.FACTS)
        self._renew = client.register_script(lua.RENEW)
        self._claim = client.register_script(lua.CLAIM)
        self._release = client.register_script(lua.RELEASE)
        self._forget = client.register_script(lua.FORGET)
        self._admit_watch = client.register_script(lua.ADMIT_WATCH)

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0) -> ClusterState:
        # One immediate retry on a fresh connection: after a Redis restart each pooled connection fails
        # once ("connection closed"); a real outage still fails fast (connection refused, twice).
        client = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        return cls(client)

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def generation(self) -> str:
        """The data generation: set once per Redis dataset (see the module docstring)."""
        await self.redis.set(GEN, secrets.token_hex(8), nx=True)
        return str(await self.redis.get(GEN) or "")

    # --- streams ---------------------------------------------------------------------------------

    async def create(self, s: SharedStream, *, claim_ttl_ms: int, limit: int, now_ms: int) -> int:
        """Insert an active stream claimed by `s.node`: its epoch, or -1 when the owner is at `limit`."""
        keys = [rec_key(s.id), LEASE, own_key(s.owner), claim_key(s.id), CLAIMS, SEQ, CHG]
        argv: list[str | int] = [s.id, s.owner, s.created_at_ms, s.ttl_seconds, s.expires_at_ms]
        argv.append(_dump_source(s.source) or "")
        return int(await self._create(keys, [*argv, s.node, claim_ttl_ms, limit, now_ms + claim_ttl_ms]))

    async def keepalive(self, stream_id: str, owner: str, expires_at_ms: int) -> int:
        """1 renewed, 0 not active, -2 unknown (or another owner's)."""
        keys = [rec_key(stream_id), LEASE, SEQ, CHG]
        return int(await self._keepalive(keys, [stream_id, owner, expires_at_ms]))

    async def end(
        self,
        stream_id: str,
        reason: EndReason,
        ended_at_ms: int,
        final: StreamFacts | None = None,
        *,
        if_due_by_ms: int | None = None,
        if_unclaimed: bool = False,
    ) -> bool:
        """End an active stream (True), or nothing (False: not active, renewed past `if_due_by_ms`, or
        with `if_unclaimed` still claimed by a node)."""
        keys = [rec_key(stream_id), LEASE, TOMB, claim_key(stream_id), CLAIMS, SEQ, CHG]
        due = "" if if_due_by_ms is None else str(if_due_by_ms)
        argv: list[str | int] = [stream_id, reason, ended_at_ms, _dump_final(final) or "", P + "own:", due]
        argv.append("1" if if_unclaimed else "")
        return bool(await self._end(keys, argv))

    async def set_final(self, stream_id: str, final: StreamFacts) -> None:
        await self._final([rec_key(stream_id), SEQ, CHG], [stream_id, _dump_final(final) or ""])

    async def publish_facts(self, facts: Mapping[str, StreamFacts]) -> None:
        """An owner's streams' live facts (buffer, publisher) for other nodes to show; bumps the change log."""
        if not facts:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, value in facts.items():
                await self._facts([rec_key(sid), SEQ, CHG], [sid, _dump_final(value) or ""], client=pipe)
            await pipe.execute()

    async def due(self, now_ms: int, limit: int = 200) -> list[str]:
        """Active streams whose lease deadline has passed."""
        return [str(x) for x in await self.redis.zrangebyscore(LEASE, "-inf", now_ms, start=0, num=limit)]

    async def unrenewed(self, now_ms: int, limit: int = 200) -> list[str]:
        """Active streams whose claim deadline has passed (their node stopped renewing)."""
        return [str(x) for x in await self.redis.zrangebyscore(CLAIMS, "-inf", now_ms, start=0, num=limit)]

    async def forget_tombstones(self, ended_before_ms: int, now_ms: int) -> int:
        keys = [TOMB, GONE, SEQ, CHG]
        return int(await self._forget(keys, [ended_before_ms, P + "s:", now_ms, now_ms - CHANGE_LOG_KEEP_MS]))

    async def renew(self, s: SharedStream, *, claim_ttl_ms: int, now_ms: int) -> int:
        """Renew `s.node`'s claim (1), restore a record Redis lost (2); 0 fenced, -1 ended."""
        return int(await self._renew(*_renew_args(s, claim_ttl_ms, now_ms)))

    async def renew_all(self, streams: Sequence[SharedStream], *, claim_ttl_ms: int, now_ms: int) -> list[int]:
        """`renew` for many streams in one pipeline."""
        if not streams:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for s in streams:
                await self._renew(*_renew_args(s, claim_ttl_ms, now_ms), client=pipe)
            return [int(x) for x in await pipe.execute()]

    async def claim(self, stream_id: str, node: str, *, claim_ttl_ms: int, now_ms: int) -> int:
        """Take over an active stream whose claim lapsed: the new epoch; 0 held by a node, -1 not active."""
        keys = [rec_key(stream_id), claim_key(stream_id), CLAIMS, SEQ, CHG]
        return int(await self._claim(keys, [stream_id, node, claim_ttl_ms, now_ms + claim_ttl_ms]))

    async def release(self, stream_id: str, node: str, epoch: int) -> bool:
        """Give up `node`'s claim (epoch `epoch`) so another node re-places the stream at once; False when
        the claim is no longer that one."""
        return bool(await self._release([claim_key(stream_id), CLAIMS], [stream_id, f"{node}|{epoch}"]))

    async def claim_holder(self, stream_id: str) -> str | None:
        value = await self.redis.get(claim_key(stream_id))
        return str(value) if value is not None else None

    async def record(self, stream_id: str) -> SharedStream | None:
        row: dict[str, str] = await self.redis.hgetall(rec_key(stream_id))  # type: ignore[assignment]
        return _parse(stream_id, row)

    async def active_count(self, owner: str) -> int:
        return int(await self.redis.scard(own_key(owner)))

    async def changes(self, since_seq: int, gen: str) -> Changes:
        """Records changed after `since_seq`; every record when `gen` is not the current generation."""
        current_gen = await self.generation()
        full = current_gen != gen
        seq = int(await self.redis.get(SEQ) or 0)
        low = "-inf" if full else f"({since_seq}"
        ids = [str(x) for x in await self.redis.zrangebyscore(CHG, low, seq)]
        records: dict[str, SharedStream | None] = {}
        if ids:
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in ids:
                    pipe.hgetall(rec_key(sid))
                rows = await pipe.execute()
            records = {sid: _parse(sid, row) for sid, row in zip(ids, rows, strict=True)}
        return Changes(seq, current_gen, full, records)

    # --- nodes ------------------------------------------------------------------------------------

    async def heartbeat(self, node: str, now_ms: int, info: Mapping[str, object]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(NODES, node, json.dumps(dict(info), separators=(",", ":")))
            pipe.zadd(SEEN, {node: now_ms})
            await pipe.execute()

    async def leave(self, node: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(NODES, node)
            pipe.zrem(SEEN, node)
            await pipe.execute()

    async def nodes(self) -> list[NodeBeat]:
        seen: list[tuple[str, float]] = await self.redis.zrange(SEEN, 0, -1, withscores=True)  # type: ignore[assignment]
        infos: dict[str, str] = await self.redis.hgetall(NODES)  # type: ignore[assignment]
        beats = []
        for node, at in seen:
            raw = infos.get(node)
            loaded: object = json.loads(raw) if raw else {}
            info = {str(k): v for k, v in loaded.items()} if isinstance(loaded, dict) else {}
            beats.append(NodeBeat(str(node), int(at), info))
        return beats

    # --- watch counts ----------------------------------------------------------------------------

    async def admit_watch(self, node: str, owner: str, here: int, limit: int, *, ttl_ms: int) -> bool:
        keys = [SEEN, WATCH_COUNTS + node]
        return bool(await self._admit_watch(keys, [owner, here, limit, node, WATCH_COUNTS, ttl_ms]))

    async def publish_watch_counts(self, node: str, counts: Mapping[str, int], *, ttl_ms: int) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(WATCH_COUNTS + node)
            if counts:
                pipe.hset(WATCH_COUNTS + node, mapping={k: v for k, v in counts.items()})
                pipe.pexpire(WATCH_COUNTS + node, ttl_ms)
            await pipe.execute()

    # --- API keys ---------------------------------------------------------------------------------

    # --- watches: where each runs (docs/scale-out.md "Watches") ------------------------------------

    async def place_watch(self, w: SharedWatch) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(watch_key(w.id), mapping={"node": w.node, "owner": w.owner, "snap": json.dumps(w.snap)})
            pipe.hset(watch_index_key(w.owner), w.id, w.node)
            await pipe.execute()

    async def publish_watches(self, watches: Sequence[SharedWatch], *, ended_kept_ms: int) -> None:
        """Refresh the snapshots (an ended watch's record lapses `ended_kept_ms` later)."""
        if not watches:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for w in watches:
                key = watch_key(w.id)
                pipe.hset(key, mapping={"node": w.node, "owner": w.owner, "snap": json.dumps(w.snap)})
                if w.snap.get("state") == "ended":
                    pipe.pexpire(key, ended_kept_ms)
            await pipe.execute()

    async def watch(self, watch_id: str) -> SharedWatch | None:
        row: dict[str, str] = await self.redis.hgetall(watch_key(watch_id))  # type: ignore[assignment]
        if "node" not in row:
            return None
        snap = json.loads(row.get("snap") or "{}")
        return SharedWatch(watch_id, row["node"], row.get("owner", ""), snap if isinstance(snap, dict) else {})

    async def watch_node(self, watch_id: str) -> str | None:
        node = await self.redis.hget(watch_key(watch_id), "node")
        return str(node) if node else None

    async def watch_index(self, owner: str) -> dict[str, str]:
        """The owner's watches cluster-wide: watch id → node."""
        row: dict[str, str] = await self.redis.hgetall(watch_index_key(owner))  # type: ignore[assignment]
        return dict(row)

    async def lapse_watch(self, watch_id: str, ttl_ms: int) -> None:
        """A lost node's watch: its record lapses `ttl_ms` from the first time this is said."""
        await self.redis.pexpire(watch_key(watch_id), ttl_ms, nx=True)

    async def forget_watches(self, watches: Sequence[tuple[str, str]]) -> None:
        """(watch id, owner) pairs: out of the records and the owners' index."""
        if not watches:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for watch_id, owner in watches:
                pipe.delete(watch_key(watch_id))
                pipe.hdel(watch_index_key(owner), watch_id)
            await pipe.execute()

    async def push_keys(self, keys: Sequence[tuple[str, ApiKey]]) -> None:
        """Publish (digest, key) pairs; revoked ones also to the revocation hash."""
        if not keys:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for dig, key in keys:
                pipe.hset(KEYS, dig, _dump_key(key))
                if key.revoked_at_ms is not None:
                    pipe.hset(REVOKED, key.id, key.revoked_at_ms)
            await pipe.execute()

    async def revoke_keys(self, revoked: Mapping[str, int]) -> None:
        """Key id → revoked_at_ms, cluster-wide."""
        await self.redis.hset(REVOKED, mapping={k: v for k, v in revoked.items()})

    async def pull_keys(self) -> tuple[dict[str, ApiKey], dict[str, int]]:
        """Every published key by digest, and every revoked key id → revoked_at_ms."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(KEYS)
            pipe.hgetall(REVOKED)
            raw_keys, raw_revoked = await pipe.execute()
        keys = {str(d): k for d, raw in raw_keys.items() if (k := _load_key(raw)) is not None}
        return keys, {str(k): int(v) for k, v in raw_revoked.items()}

    async def aclose(self) -> None:
        await self.redis.aclose()


def _renew_args(s: SharedStream, claim_ttl_ms: int, now_ms: int) -> tuple[list[str], list[str | int]]:
    keys = [rec_key(s.id), claim_key(s.id), LEASE, own_key(s.owner), CLAIMS, SEQ, CHG]
    argv: list[str | int] = [s.id, f"{s.node}|{s.epoch}", claim_ttl_ms, s.node, s.epoch, s.owner, s.created_at_ms]
    return keys, [*argv, s.ttl_seconds, s.expires_at_ms, _dump_source(s.source) or "", now_ms + claim_ttl_ms]


def _dump_key(key: ApiKey) -> str:
    body = {"id": key.id, "name": key.name, "prefix": key.prefix, "created_at_ms": key.created_at_ms}
    return json.dumps({**body, "revoked_at_ms": key.revoked_at_ms, "demo": key.demo}, separators=(",", ":"))


def _load_key(raw: str) -> ApiKey | None:
    obj: object = json.loads(raw)
    if not isinstance(obj, dict):
        return None
    kid, name, prefix, created = obj.get("id"), obj.get("name"), obj.get("prefix"), obj.get("created_at_ms")
    revoked = obj.get("revoked_at_ms")
    if not (isinstance(kid, str) and isinstance(name, str) and isinstance(prefix, str) and isinstance(created, int)):
        return None
    return ApiKey(kid, name, prefix, created, revoked if isinstance(revoked, int) else None, obj.get("demo") is True)


class WatchCounts:
    """Implements `watches.model.WatchQuota` on Redis: the per-key watch limit counted over every node."""

    def __init__(self, state: ClusterState, node: str, *, ttl_ms: int) -> None:
        self.state, self.node, self.ttl_ms = state, node, ttl_ms

    async def admit(self, owner: str, here: int, limit: int) -> bool:
        try:
            return await self.state.admit_watch(self.node, owner, here, limit, ttl_ms=self.ttl_ms)
        except (RedisError, OSError) as exc:
            raise ClusterUnavailable("the cluster state is unreachable; retry shortly") from exc

    async def publish(self, counts: Mapping[str, int]) -> None:
        await self.state.publish_watch_counts(self.node, counts, ttl_ms=self.ttl_ms)


class WatchRecords:
    """Implements `watches.model.WatchPlaces` on Redis: which node runs each watch, and its snapshot."""

    def __init__(self, state: ClusterState, node: str, *, ended_kept_ms: int) -> None:
        self.state, self.node, self.ended_kept_ms = state, node, ended_kept_ms

    def _shared(self, watch_id: str, owner: str, snap: Mapping[str, object]) -> SharedWatch:
        return SharedWatch(watch_id, self.node, owner, dict(snap))

    async def placed(self, watch_id: str, owner: str, snap: Mapping[str, object]) -> None:
        try:
            await self.state.place_watch(self._shared(watch_id, owner, snap))
        except (RedisError, OSError) as exc:
            raise ClusterUnavailable("the cluster state is unreachable; retry shortly") from exc

    async def changed(self, snaps: Sequence[tuple[str, str, Mapping[str, object]]]) -> None:
        shared = [self._shared(watch_id, owner, snap) for watch_id, owner, snap in snaps]
        await self.state.publish_watches(shared, ended_kept_ms=self.ended_kept_ms)

    async def forgotten(self, watches: Sequence[tuple[str, str]]) -> None:
        await self.state.forget_watches(watches)
