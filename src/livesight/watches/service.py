"""WatchService: the owner's watches, one asyncio task per watch that has not ended, their results.

Each watch's task ticks every `interval_ms` of real time (event-loop clock). A tick that finds the
previous run still going counts `skipped.busy` and starts nothing: runs of one watch never overlap
and never queue. Before a model call a tick checks, cheaply: the watch has not expired, its streams
are still active (else it ends, `stream_ended`), there is a frame newer than the last run
(`only_on_new_frames`, else `skipped.no_new_frames`) and the newest frame differs enough from the
last one used (`min_change`, else `skipped.no_change`). Then it waits its turn at the ModelGate and
runs the chat request through the ChatRunner. An error is a result (`error` set) and the next tick
tries again, except a 4xx that will not heal (runner.ends_watch), which ends the watch (`failed`).
Timestamps (`at_ms`, `created_at_ms`, expiry) come from the injected Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field

from livesight.core.clock import Clock
from livesight.core.errors import (
    InternalError,
    LivesightError,
    RequestInvalid,
    StreamNotFound,
    StreamUnauthorized,
    WatchLimitExceeded,
    WatchNotFound,
)
from livesight.core.jsontypes import JsonObject
from livesight.core.metrics import NULL_RECORDER, WatchRecorder
from livesight.serving.protocol import ChatCompletionRequest
from livesight.store.watches import SQLiteWatchStore
from livesight.streams.directory import StreamDirectory
from livesight.watches.change import Thumb, changed_fraction, thumbnail
from livesight.watches.gate import ModelGate
from livesight.watches.journal import WatchJournal
from livesight.watches.model import (
    EndReason,
    Watch,
    WatchLimits,
    WatchPlaces,
    WatchQuota,
    WatchSpec,
    Webhook,
    new_secret,
    new_watch_id,
)
from livesight.watches.results import WatchResult, build_result
from livesight.watches.runner import ChatRunner, ends_watch
from livesight.watches.triggers import decide
from livesight.watches.validate import check_webhook, stream_ids_of
from livesight.watches.webhooks import Deliverer, Outcome

log = logging.getLogger("livesight.watches")


@dataclass(slots=True)
class _Runtime:
    """What a watch has only while this process runs it."""

    body: ChatCompletionRequest
    results: deque[WatchResult]
    task: asyncio.Task[None] | None = None
    run: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    last_thumb: Thumb | None = None


class WatchService:
    def __init__(
        self,
        registry: StreamDirectory,
        runner: ChatRunner,
        clock: Clock,
        gate: ModelGate,
        deliverer: Deliverer,
        limits: WatchLimits,
        store: SQLiteWatchStore | None = None,
        recorder: WatchRecorder = NULL_RECORDER,
        quota: WatchQuota | None = None,
        places: WatchPlaces | None = None,
    ) -> None:
        self.registry, self.runner, self.clock = registry, runner, clock
        self.quota = quota
        self.places = places  # a cluster: where each watch runs, its snapshot for the other nodes
        self._dirty: set[str] = set()  # watches whose snapshot changed since `publish` last ran
        self._publishing: set[asyncio.Task[None]] = set()
        self.gate, self.deliverer, self.limits, self.recorder = gate, deliverer, limits, recorder
        self.journal = WatchJournal(store, limits.results_kept, limits.results_max_age_ms)
        self._watches: dict[str, Watch] = {}
        self._rt: dict[str, _Runtime] = {}
        registry.add_end_hook(self._stream_ended)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Load stored watches and resume those that have not ended (call on the event loop)."""
        for watch, results in self.journal.load():
            self._watches[watch.id] = watch
            self._rt[watch.id] = _Runtime(_body(watch.request), deque(results, self.limits.results_kept))
            if watch.state != "ended":
                if not all(self._stream_active(sid, watch.owner) for sid in watch.stream_ids):
                    self._end(watch, "stream_ended")
                else:
                    self._launch(watch)
        self._resume_deliveries()
        resumed = sum(1 for w in self._watches.values() if w.state != "ended")
        if resumed:
            log.info("resumed %d watches", resumed)

    async def aclose(self) -> None:
        tasks = [t for rt in self._rt.values() for t in (rt.task, rt.run) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.deliverer.aclose()
        self.journal.close()

    # --- the API's operations ---------------------------------------------------------------------

    async def create(self, owner: str, request: JsonObject, spec: WatchSpec) -> Watch:
        """A new active watch; `spec` holds the create body's other fields (validated by the API)."""
        self._sweep()
        request = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
        body = _body(request)
        stream_ids = stream_ids_of(await self.runner.check(body), self.registry, owner)
        now = self.clock.now_ms()
        expires = spec.expires_at_ms
        if expires is not None and expires <= now:
            raise RequestInvalid(f"expires_at_ms={expires} is not in the future (now is {now})")
        webhook: Webhook | None = None
        if spec.webhook_url is not None:
            webhook = {"url": spec.webhook_url, "secret": spec.webhook_secret or new_secret()}
            await check_webhook(spec.webhook_url, self.deliverer.policy)
        limit, here = self.limits.max_active_per_owner, self.active_count(owner)
        if here >= limit or (self.quota is not None and not await self.quota.admit(owner, here, limit)):
            where = " across the cluster" if self.quota is not None else ""
            raise WatchLimitExceeded(
                f"this key has {limit} watches that have not ended{where} (max_active_watches_per_key): "
                "delete one first"
            )
        watch = Watch(
            id=new_watch_id(),
            owner=owner,
            request=request,
            stream_ids=stream_ids,
            interval_ms=spec.interval_ms,
            only_on_new_frames=spec.only_on_new_frames,
            min_change=spec.min_change,
            trigger=spec.trigger,
            webhook=webhook,
            expires_at_ms=expires,
            created_at_ms=now,
        )
        if self.places is not None:  # every node can find it before the client learns the id
            await self.places.placed(watch.id, owner, watch.public())
        self._watches[watch.id] = watch
        self._rt[watch.id] = _Runtime(body, deque(maxlen=self.limits.results_kept))
        await self.journal.save(watch)  # on disk before the client learns the id
        self._launch(watch)
        return watch

    def get(self, watch_id: str, owner: str) -> Watch:
        watch = self._watches.get(watch_id)
        if watch is None or watch.owner != owner:
            raise WatchNotFound(f"watch {watch_id} not found")
        return watch

    def owned(self, owner: str) -> list[Watch]:
        """The owner's watches, newest first."""
        self._sweep()
        mine = [w for w in self._watches.values() if w.owner == owner]
        return sorted(mine, key=lambda w: (w.created_at_ms, w.id), reverse=True)

    async def update(self, watch: Watch, *, state: str | None = None, interval_ms: int | None = None) -> Watch:
        if watch.state == "ended":
            if state is None and interval_ms is None:
                return watch
            raise RequestInvalid(f"watch {watch.id} has ended ({watch.end_reason}): it cannot be changed")
        if interval_ms is not None:
            watch.interval_ms = interval_ms
        if state is not None:
            watch.state = "paused" if state == "paused" else "active"
        self._rt[watch.id].wake.set()
        await self.journal.save(watch)
        await self._publish_now(watch)
        return watch

    async def delete(self, watch: Watch) -> Watch:
        """End the watch (idempotent: an ended watch stays as it ended)."""
        self._end(watch, "deleted")
        await self.journal.save(watch)
        await self._publish_now(watch)
        return watch

    def results(self, watch: Watch, after: int = 0, limit: int = 100) -> list[WatchResult]:
        rt = self._rt.get(watch.id)
        if rt is None:  # forgotten since it was looked up (ended_kept_ms passed)
            return []
        oldest = self.clock.now_ms() - self.limits.results_max_age_ms
        fresh = [r for r in rt.results if (r["seq"] or 0) > after and r["at_ms"] >= oldest]
        return fresh[:limit]

    async def wait_results(self, watch: Watch, after: int, timeout_s: float) -> list[WatchResult]:
        """Results after `after`, waiting up to `timeout_s` for one (empty when none came or it ended)."""
        rt = self._rt.get(watch.id)
        got = self.results(watch, after)
        if got or watch.state == "ended" or rt is None:
            return got
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.changed.wait(), timeout_s)
        return self.results(watch, after)

    # --- the tick loop ----------------------------------------------------------------------------

    def _launch(self, watch: Watch) -> None:
        rt = self._rt[watch.id]
        rt.task = asyncio.create_task(self._loop(watch, rt), name=f"watch {watch.id}")

    async def _loop(self, watch: Watch, rt: _Runtime) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while watch.state != "ended":
            delay = next_at - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rt.wake.wait(), delay)
                if rt.wake.is_set():  # paused, resumed, new interval or ended: start the schedule again
                    rt.wake.clear()
                    next_at = loop.time() + (0 if watch.state == "active" else watch.interval_ms / 1000)
                    continue
            next_at = max(next_at + watch.interval_ms / 1000, loop.time())
            if watch.expires_at_ms is not None and self.clock.now_ms() >= watch.expires_at_ms:
                self._end(watch, "expired")  # paused or not
                self.journal.persist(watch)
                return
            if watch.state != "active":
                continue
            if rt.run is not None and not rt.run.done():
                self._skipped(watch, "busy")
                continue
            rt.run = asyncio.create_task(self._tick(watch, rt))

    async def _tick(self, watch: Watch, rt: _Runtime) -> None:
        try:
            await self._tick_inner(watch, rt)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("watch %s: tick failed", watch.id)

    async def _tick_inner(self, watch: Watch, rt: _Runtime) -> None:
        ticked = time.perf_counter()
        at_ms = self.clock.now_ms()
        windows = {}
        for sid in watch.stream_ids:
            if not self._stream_active(sid, watch.owner):
                self._end(watch, "stream_ended")
                self.journal.persist(watch)
                return
            windows[sid] = self.registry.window(self.registry.get(sid, watch.owner))
        newest = {sid: w.last_index for sid, w in windows.items() if w is not None and w.last_index is not None}
        if watch.only_on_new_frames and not any(
            index > watch.last_frame_indexes.get(sid, -1) for sid, index in newest.items()
        ):
            self._skipped(watch, "no_new_frames")
            return
        thumb: Thumb | None = None
        if watch.min_change is not None and newest:
            sid = next(s for s in watch.stream_ids if s in newest)
            window = windows[sid]
            try:
                jpegs = await window.jpegs([newest[sid]], f"watch {watch.id}") if window is not None else None
            except LivesightError:  # evicted, undecodable or the decoders are busy: no change test this tick
                jpegs = None
            if jpegs:
                thumb = await asyncio.to_thread(thumbnail, jpegs[0])
                if rt.last_thumb is not None and changed_fraction(rt.last_thumb, thumb) < watch.min_change:
                    watch.last_frame_indexes.update(newest)
                    self._skipped(watch, "no_change")
                    return
        watch.last_frame_indexes.update(newest)
        await self.gate.acquire(watch.owner)
        waited_ms = (time.perf_counter() - ticked) * 1000
        try:
            completion: JsonObject | None = await self.runner.complete(rt.body, watch.owner)
            error: LivesightError | None = None
        except LivesightError as exc:
            completion, error = None, exc
        except Exception:
            log.exception("watch %s: the chat request failed", watch.id)
            completion, error = None, InternalError("internal error while running the watch; see the server log")
        finally:
            self.gate.release()
        if watch.state == "ended":
            return
        watch.counts.runs += 1
        self.recorder.watch_ran(error is None)
        watch.last_run_at_ms = at_ms
        if thumb is not None:
            rt.last_thumb = thumb
        trigger = watch.parsed_trigger
        matches = trigger.matches if trigger is not None else None
        result = build_result(watch.id, watch.wants_json, matches, at_ms, completion, error, ticked, waited_ms)
        self._settle(watch, rt, result, error)

    def _settle(self, watch: Watch, rt: _Runtime, result: WatchResult, error: LivesightError | None) -> None:
        """Count the result, record and deliver it as the trigger says; end the watch on a lasting 4xx."""
        trigger = watch.parsed_trigger
        if error is not None:
            watch.counts.errors += 1
            watch.last_error = result["error"]
            deliver_webhook = trigger is None or trigger.on == "always"
            recorded = True
        else:
            if result["matched"]:
                watch.counts.matches += 1
            recorded = decide(trigger, result["matched"], watch.trigger_state, result["at_ms"]) == "deliver"
            deliver_webhook = recorded
            if not recorded:
                watch.counts.held_back += 1
        watch.last_result = result
        self._dirty.add(watch.id)
        if recorded:
            watch.seq += 1
            result["seq"] = watch.seq
            watch.counts.results += 1
            rt.results.append(result)
        if error is not None and ends_watch(error):
            log.info("watch %s ends: %s", watch.id, error.message)
            self._end(watch, "failed")
        self.journal.persist(watch, result if recorded else None)
        if recorded:
            self._notify(rt)
            if deliver_webhook and watch.webhook is not None:
                self._deliver(watch, result)

    def _deliver(self, watch: Watch, result: WatchResult) -> None:
        msg_id = f"msg_{watch.id}_{result['seq']}"
        payload: dict[str, object] = {"type": "watch.result", **result}
        self.journal.add_delivery(msg_id, watch.id, payload)
        self._send(watch, msg_id, payload)

    def _send(self, watch: Watch, msg_id: str, payload: Mapping[str, object]) -> None:
        """Hand one delivery to the Deliverer; it is forgotten (in the store too) once it lands or is given up."""
        assert watch.webhook is not None

        def done(outcome: Outcome) -> None:
            self.recorder.webhook_attempt(outcome.kind)
            if outcome.delivered:
                watch.counts.deliveries += 1
            else:
                watch.counts.delivery_failures += 1
                watch.counts.deliveries_abandoned += outcome.final
                watch.last_error = {"code": "webhook_failed", "message": outcome.error or "webhook failed"}
            if outcome.delivered or outcome.final:
                self.journal.drop_delivery(msg_id)

        self.deliverer.deliver(
            watch.webhook["url"], watch.webhook["secret"], msg_id, payload, lambda: watch.state != "ended", done
        )

    def _resume_deliveries(self) -> None:
        """Deliveries a previous run left undone: sent again (same webhook-id) unless their watch has ended."""
        for msg_id, watch_id, payload in self.journal.pending_deliveries():
            watch = self._watches.get(watch_id)
            if watch is None or watch.state == "ended" or watch.webhook is None:
                self.journal.drop_delivery(msg_id)
            else:
                self._send(watch, msg_id, payload)

    # --- helpers ----------------------------------------------------------------------------------

    def _skipped(self, watch: Watch, reason: str) -> None:
        watch.counts.skipped[reason] += 1
        self.recorder.watch_skipped(reason)

    def _stream_active(self, stream_id: str, owner: str) -> bool:
        try:
            return self.registry.get(stream_id, owner).active
        except (StreamNotFound, StreamUnauthorized):
            return False

    def _stream_ended(self, stream_id: str) -> None:
        for watch in self._watches.values():
            if watch.state != "ended" and stream_id in watch.stream_ids:
                self._end(watch, "stream_ended")
                self.journal.persist(watch)

    def counts_by_owner(self) -> dict[str, int]:
        """Watches that have not ended, per owner (what a cluster node publishes for the quota)."""
        counts: dict[str, int] = {}
        for w in self._watches.values():
            if w.state != "ended":
                counts[w.owner] = counts.get(w.owner, 0) + 1
        return counts

    def active_count(self, owner: str | None = None) -> int:
        """Watches that have not ended (active or paused): the owner's, or all of them."""
        return sum(1 for w in self._watches.values() if w.state != "ended" and owner in (None, w.owner))

    def _end(self, watch: Watch, reason: EndReason) -> None:
        if watch.state == "ended":
            return
        watch.state, watch.end_reason, watch.ended_at_ms = "ended", reason, self.clock.now_ms()
        self._mark_ended(watch)
        rt = self._rt.get(watch.id)
        if rt is None:
            return
        rt.wake.set()
        if rt.run is not None and rt.run is not asyncio.current_task() and not rt.run.done():
            rt.run.cancel()
        self._notify(rt)

    # --- a cluster's view of this node's watches ---------------------------------------------------

    async def publish(self) -> None:
        """Publish the snapshots of watches that changed since the last call (a cluster tick hook)."""
        self._sweep()
        if self.places is None or not self._dirty:
            return
        ids, self._dirty = self._dirty, set()
        snaps = [(w.id, w.owner, w.public()) for w in (self._watches.get(i) for i in ids) if w is not None]
        try:
            await self.places.changed(snaps)
        except Exception:
            self._dirty |= ids  # Redis unreachable: the next tick tries again
            raise

    async def flush(self) -> None:
        """Wait for the snapshots being published, then publish what is still pending (at shutdown, after
        the node's streams ended: the other nodes then answer for its watches as they ended)."""
        await asyncio.gather(*self._publishing, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.publish()

    async def _publish_now(self, watch: Watch) -> None:
        if self.places is None:
            return
        self._dirty.discard(watch.id)
        try:
            await self.places.changed([(watch.id, watch.owner, watch.public())])
        except Exception:  # the next tick publishes it
            self._dirty.add(watch.id)

    def _mark_ended(self, watch: Watch) -> None:
        """An end is published at once (not at the next tick): a drained node may not see one."""
        if self.places is None:
            return
        self._dirty.add(watch.id)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no running loop (a synchronous end in a test): the next publish has it
            return
        self._background(self.publish())

    def _background(self, work: Coroutine[object, object, None]) -> None:
        async def quietly() -> None:
            try:
                await work
            except Exception as exc:  # Redis unreachable: the dirty set keeps what is still to publish
                log.debug("watch snapshot not published: %s", exc)

        task = asyncio.get_running_loop().create_task(quietly())
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    def _notify(self, rt: _Runtime) -> None:
        rt.changed.set()
        rt.changed = asyncio.Event()

    def _sweep(self) -> None:
        """Forget ended watches older than `ended_kept_ms`."""
        cutoff = self.clock.now_ms() - self.limits.ended_kept_ms
        gone = [w for w in self._watches.values() if w.ended_at_ms is not None and w.ended_at_ms < cutoff]
        old = [w.id for w in gone]
        for watch_id in old:
            self._watches.pop(watch_id, None)
            self._rt.pop(watch_id, None)
        self.journal.forget(old)
        if self.places is not None and old:
            self._background(self.places.forgotten([(w.id, w.owner) for w in gone]))


def _body(request: JsonObject) -> ChatCompletionRequest:
    """The stored request as the validated wire model the ChatRunner takes (validated at create)."""
    return ChatCompletionRequest.model_validate(request)
