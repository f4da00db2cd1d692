"""The watch scheduler (watches/service.py) with a fake ChatRunner at the seam and a real registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import simplejpeg

from livesight.core.errors import ModelUnavailable, SegmentEmpty, UpstreamTimeout
from tests.support.webhook_receiver import run_receiver
from tests.watches.env import OWNER, until, watch_env


async def test_a_slow_model_skips_ticks_and_never_runs_twice_at_once() -> None:
    async with watch_env() as env:
        env.push(3)
        env.runner.delay_s = 0.3
        watch = await env.create(interval_ms=50, only_on_new_frames=False)
        await until(lambda: watch.counts.runs >= 3, what="three runs")
        assert env.runner.most_running == 1
        assert watch.counts.skipped["busy"] >= 3  # ~5 ticks pass during each 0.3 s run
        assert [r["seq"] for r in env.service.results(watch)] == list(range(1, watch.counts.results + 1))


async def test_only_on_new_frames_skips_until_a_frame_arrives() -> None:
    async with watch_env() as env:
        watch = await env.create()
        await until(lambda: watch.counts.skipped["no_new_frames"] >= 3, what="skips without frames")
        assert env.runner.calls == 0
        env.push(1)
        await until(lambda: watch.counts.runs == 1, what="one run")
        await until(lambda: watch.counts.skipped["no_new_frames"] >= 6, what="more skips")
        assert watch.counts.runs == 1 and env.runner.seen == [0]
        env.push(2)
        await until(lambda: watch.counts.runs == 2, what="a second run")
        assert env.runner.seen == [0, 2]
        assert env.service.results(watch)[-1]["data"] == {"n": 2}  # response_format json_object: parsed


async def test_min_change_skips_frames_that_look_the_same() -> None:
    grey = bytes(simplejpeg.encode_jpeg(np.full((360, 640, 3), 128, np.uint8), quality=90))
    half = np.full((360, 640, 3), 128, np.uint8)
    half[:, 320:] = 250  # the right half lit: about half of the picture changed
    lit = bytes(simplejpeg.encode_jpeg(half, quality=90))
    async with watch_env() as env:
        env.push(1, jpeg=lambda i: grey)
        watch = await env.create(min_change=0.2)
        await until(lambda: watch.counts.runs == 1, what="the first run")
        env.push(1, jpeg=lambda i: grey)  # new frame, same picture
        await until(lambda: watch.counts.skipped["no_change"] == 1, what="a no_change skip")
        assert watch.counts.runs == 1
        env.push(1, jpeg=lambda i: lit)
        await until(lambda: watch.counts.runs == 2, what="a run on the changed picture")
        assert env.runner.seen == [0, 2]


async def test_an_error_is_a_result_and_the_watch_goes_on() -> None:
    async with watch_env() as env:
        env.push(1)
        failures = [UpstreamTimeout("the model timed out", provider="fake"), SegmentEmpty("no frames yet")]
        env.runner.fail = lambda: failures.pop(0) if failures else None
        watch = await env.create(only_on_new_frames=False)
        await until(lambda: watch.counts.runs >= 3, what="three runs")
        results = env.service.results(watch)
        assert [r["error"]["code"] if r["error"] else None for r in results[:3]] == [
            "upstream_timeout",
            "segment_empty",
            None,
        ]
        assert results[2]["output"] == '{"n": 0}' and watch.state == "active"
        assert watch.counts.errors == 2


async def test_a_4xx_that_will_not_heal_ends_the_watch() -> None:
    async with watch_env() as env:
        env.push(1)
        env.runner.fail = lambda: ModelUnavailable("model fake is not served here")
        watch = await env.create()
        await until(lambda: watch.state == "ended", what="the watch to end")
        assert watch.end_reason == "failed"
        assert watch.last_error == {"code": "model_unavailable", "message": "model fake is not served here"}
        assert env.service.results(watch)[-1]["error"]["code"] == "model_unavailable"


async def test_the_watch_ends_with_its_stream_and_when_it_expires() -> None:
    async with watch_env() as env:
        env.push(1)
        watch = await env.create()
        expiring = await env.create(expires_at_ms=env.clock.now_ms() + 1000)
        await until(lambda: watch.counts.runs == 1 and expiring.counts.runs == 1, what="first runs")
        env.clock.advance(1000)
        await until(lambda: expiring.state == "ended", what="expiry")
        assert expiring.end_reason == "expired" and watch.state == "active"
        paused = await env.create(expires_at_ms=env.clock.now_ms() + 1000)
        await env.service.update(paused, state="paused")
        env.clock.advance(1000)
        await until(lambda: paused.state == "ended", what="a paused watch's expiry")
        assert paused.end_reason == "expired"
        env.registry.end(env.stream, "deleted")
        assert watch.state == "ended" and watch.end_reason == "stream_ended"


async def test_change_trigger_with_cooldown_on_numbered_frames() -> None:
    async with watch_env() as env:
        trigger = {"json_path": "$.n", "equals": 3, "on": "change", "cooldown_ms": 0}
        watch = await env.create(trigger=trigger)
        for _ in range(6):  # frames 0..5, one run each: matched only at n == 3
            runs = watch.counts.runs
            env.push(1)
            await until(lambda r=runs: watch.counts.runs == r + 1, what="a run per frame")
        recorded = env.service.results(watch)
        assert [(r["data"]["n"], r["matched"]) for r in recorded] == [(0, False), (3, True), (4, False)]
        assert watch.counts.held_back == 3 and watch.counts.matches == 1


async def test_pause_resume_and_delete() -> None:
    async with watch_env() as env:
        env.push(1)
        watch = await env.create(only_on_new_frames=False)
        await until(lambda: watch.counts.runs >= 1, what="a run")
        await env.service.update(watch, state="paused")
        runs = watch.counts.runs
        await asyncio.sleep(0.3)
        assert watch.counts.runs <= runs + 1  # at most the run in flight when it paused
        await env.service.update(watch, state="active", interval_ms=60)
        await until(lambda: watch.counts.runs > runs + 1, what="runs after resume")
        await env.service.delete(watch)
        await env.service.delete(watch)  # idempotent
        assert watch.state == "ended" and watch.end_reason == "deleted"


async def test_restart_resumes_active_watches_and_keeps_results(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    async with watch_env(db) as env:
        env.push(1)
        watch = await env.create(only_on_new_frames=False)
        await until(lambda: watch.counts.results >= 2, what="two results")
        watch_id = watch.id
    async with watch_env(db) as env2:
        # a new registry: its stream ids differ, so the stored watch's stream is gone and it ends
        again = env2.service.get(watch_id, OWNER)
        assert again.state == "ended" and again.end_reason == "stream_ended"
        assert [r["seq"] for r in env2.service.results(again)][:2] == [1, 2]


async def test_a_webhook_delivery_left_undone_is_sent_again_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with run_receiver(fail_first=1_000_000) as receiver:  # down for now
        async with watch_env(db) as env:
            env.push(1)
            watch = await env.create(webhook={"url": receiver.url})
            await until(lambda: watch.counts.delivery_failures >= 1, what="a failed delivery")
            watch_id, registry = watch.id, env.registry
        receiver.fail_first = 0  # back up; the first server is gone
        failed_ids = {r.headers["webhook-id"] for r in receiver.received}
        assert failed_ids == {f"msg_{watch_id}_1"}
        async with watch_env(db, registry=registry) as env2:
            again = env2.service.get(watch_id, OWNER)
            assert again.state == "active"
            await until(lambda: receiver.ok(), what="the delivery after the restart")
            assert receiver.ok()[0].headers["webhook-id"] == f"msg_{watch_id}_1"
            # the receiver answers before the deliverer reads the answer: wait for the count, do not race it
            await until(lambda: again.counts.deliveries >= 1, what="the delivery counted")
