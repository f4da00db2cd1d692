"""`/v1/watches` end to end: a real server on port 0, the fake vLLM, real webhook receivers on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from livesight.core.clock import FakeClock
from tests.api.chat_env import ChatEnv, chat_env, image_message, video_message
from tests.support.metrics import sample
from tests.support.polling import wait_for
from tests.support.webhook_receiver import run_receiver

QUESTION = "Is the door open?"


def body(env: ChatEnv, **extra: Any) -> dict[str, Any]:
    request = {
        "model": "qwen",
        "messages": image_message(env.ovs("frame_index=-1"), QUESTION),
        "response_format": {"type": "json_object"},
    }
    return {"request": request, "interval_ms": 250, "only_on_new_frames": False, **extra}


def create(env: ChatEnv, key: str | None = None, **extra: Any) -> dict[str, Any]:
    with env.server.client(key or env.key) as c:
        r = c.post("/v1/watches", json=body(env, **extra))
    assert r.status_code == 201, r.text
    return dict(r.json())


def get(env: ChatEnv, watch_id: str, key: str | None = None) -> dict[str, Any]:
    with env.server.client(key or env.key) as c:
        r = c.get(f"/v1/watches/{watch_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def results(env: ChatEnv, watch_id: str, after: int = 0) -> list[dict[str, Any]]:
    with env.server.client(env.key) as c:
        r = c.get(f"/v1/watches/{watch_id}/results", params={"after": after})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


@pytest.fixture
def env(tmp_path: Path) -> Any:
    with chat_env(tmp_path, FakeClock(), max_active_watches_per_key=3, webhook_first_backoff_s=0.2) as e:
        yield e


def test_create_inspect_list_pause_delete_and_results(env: ChatEnv) -> None:
    created = create(env, trigger={"json_path": "$.texts[0]", "equals": QUESTION})
    assert created["id"].startswith("watch_") and created["state"] == "active"
    assert created["stream_ids"] == [env.stream_id] and created["created_at_ms"] == env.server.clock.now_ms()
    wait_for(lambda: len(results(env, created["id"])) >= 2, timeout=10, what="two results")
    first = results(env, created["id"])[0]
    assert first["seq"] == 1 and first["watch_id"] == created["id"] and first["error"] is None
    assert first["data"]["texts"] == [QUESTION] and first["matched"] is True  # the fake model echoes the question
    assert first["frames"][0]["stream_id"] == env.stream_id and first["frames"][0]["frame_indexes"] == [99]
    shown = get(env, created["id"])
    assert shown["counts"]["runs"] >= 2 and shown["counts"]["matches"] >= 2 and shown["last_result"]["matched"]
    metrics = env.server.components.metrics
    assert sample(metrics, "livesight_watch_runs_total", outcome="ok") >= 2
    assert sample(metrics, "livesight_watches_active") == 1
    with env.server.client(env.key) as c:
        assert [w["id"] for w in c.get("/v1/watches").json()["data"]] == [created["id"]]
        paused = c.patch(f"/v1/watches/{created['id']}", json={"state": "paused", "interval_ms": 500})
        assert paused.status_code == 200 and paused.json()["state"] == "paused"
        assert paused.json()["interval_ms"] == 500
        assert results(env, created["id"], after=1)[0]["seq"] == 2
        for _ in range(2):  # idempotent
            gone = c.delete(f"/v1/watches/{created['id']}")
            assert gone.status_code == 200 and gone.json()["state"] == "ended"
            assert gone.json()["end_reason"] == "deleted"
        assert c.patch(f"/v1/watches/{created['id']}", json={"state": "active"}).status_code == 400
    assert sample(metrics, "livesight_watches_active") == 0


def test_another_key_sees_nothing(env: ChatEnv) -> None:
    watch_id = create(env)["id"]
    other = env.server.new_key("other")
    with env.server.client(other) as c:
        assert c.get("/v1/watches").json()["data"] == []
        for method, path in [
            ("GET", ""),
            ("PATCH", ""),
            ("DELETE", ""),
            ("GET", "/results"),
            ("GET", "/events"),
        ]:
            r = c.request(method, f"/v1/watches/{watch_id}{path}", json={} if method == "PATCH" else None)
            assert r.status_code == 404, (method, path, r.text)
        # and another key cannot watch this key's stream
        r = c.post("/v1/watches", json=body(env))
        assert r.status_code == 404 and env.stream_id in r.json()["detail"]
    assert get(env, watch_id)["state"] == "active"


def test_create_refusals(env: ChatEnv) -> None:
    with env.server.client(env.key) as c:
        bad_uri = body(env)
        bad_uri["request"]["messages"] = image_message(env.ovs("frame_index=abc"))
        r = c.post("/v1/watches", json=bad_uri)
        assert r.status_code == 400 and "frame_index" in r.json()["detail"]
        no_stream = body(env)
        no_stream["request"]["messages"] = [{"role": "user", "content": "hello"}]
        assert c.post("/v1/watches", json=no_stream).status_code == 400
        unknown = body(env)
        unknown["request"]["messages"] = image_message(
            "ovs://streams/00000000-0000-4000-8000-000000000000?frame_index=-1"
        )
        assert c.post("/v1/watches", json=unknown).status_code == 404
        no_model = body(env)
        no_model["request"]["model"] = "no-such-model"
        r = c.post("/v1/watches", json=no_model)
        assert r.status_code == 404 and "no-such-model" in r.json()["detail"], r.text
        no_video = body(env)
        no_video["request"].update(model="image-only", messages=video_message(env.ovs("start_offset_ms=-1000")))
        r = c.post("/v1/watches", json=no_video)
        assert r.status_code == 400 and "does not accept video" in r.json()["detail"], r.text
        assert c.post("/v1/watches", json=body(env, interval_ms=100)).status_code == 422
        past = body(env, expires_at_ms=env.server.clock.now_ms() - 1)
        assert c.post("/v1/watches", json=past).status_code == 400
        for _ in range(3):
            assert c.post("/v1/watches", json=body(env)).status_code == 201
        limited = c.post("/v1/watches", json=body(env))
        assert limited.status_code == 429 and "max_active_watches_per_key" in limited.json()["detail"]


def test_the_watch_ends_when_its_stream_is_deleted(env: ChatEnv) -> None:
    watch_id = create(env)["id"]
    with env.server.client(env.key) as c:
        assert c.delete(f"/v1/streams/{env.stream_id}").status_code == 200
    shown = get(env, watch_id)
    assert shown["state"] == "ended" and shown["end_reason"] == "stream_ended"


def sse_events(env: ChatEnv, watch_id: str, count: int, headers: dict[str, str]) -> list[tuple[str, str, Any]]:
    """The first `count` events (id, event, data) of the watch's SSE stream."""
    events: list[tuple[str, str, Any]] = []
    with (
        env.server.client(env.key) as c,
        c.stream("GET", f"/v1/watches/{watch_id}/events", headers=headers) as r,
    ):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in r.iter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if fields:
                events.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
                fields = {}
            if len(events) >= count:
                break
    return events


def test_sse_streams_results_and_resumes_after_last_event_id(env: ChatEnv) -> None:
    watch_id = create(env)["id"]
    first = sse_events(env, watch_id, 2, {})
    assert [(e[0], e[1], e[2]["seq"]) for e in first] == [("1", "result", 1), ("2", "result", 2)]
    resumed = sse_events(env, watch_id, 2, {"Last-Event-ID": "2"})
    assert [e[2]["seq"] for e in resumed] == [3, 4]
    with env.server.client(env.key) as c:
        c.delete(f"/v1/watches/{watch_id}")
    last = results(env, watch_id)[-1]["seq"]
    tail = sse_events(env, watch_id, 1, {"Last-Event-ID": str(last)})
    assert tail[0][1] == "end" and tail[0][2]["end_reason"] == "deleted"


def test_webhooks_are_signed_retried_until_they_land_and_verify(env: ChatEnv) -> None:
    with run_receiver(fail_first=2) as receiver:
        created = create(env, webhook={"url": receiver.url})
        secret = created["webhook"]["secret"]
        assert secret.startswith("whsec_") and get(env, created["id"])["webhook"]["secret"] is None
        first_id = f"msg_{created['id']}_1"

        def settled() -> bool:
            failed = {r.headers["webhook-id"] for r in receiver.received if r.status == 500}
            landed = {r.headers["webhook-id"] for r in receiver.ok()}
            return first_id in landed and failed <= landed and len(landed) >= 2

        wait_for(settled, timeout=15, what="every failed message retried until it landed, and two landed")
        with env.server.client(env.key) as c:
            c.delete(f"/v1/watches/{created['id']}")
    failed = {r.headers["webhook-id"] for r in receiver.received if r.status == 500}
    landed = {r.headers["webhook-id"] for r in receiver.ok()}
    assert len(failed) >= 1 and failed <= landed  # each failed message was retried, under its id, until it landed
    metrics = env.server.components.metrics

    def attempts_counted() -> bool:  # each attempt is counted once its answer is back at the server
        failed = sample(metrics, "livesight_webhook_attempts_total", outcome="failed")
        delivered = sample(metrics, "livesight_webhook_attempts_total", outcome="delivered")
        return (failed, delivered) == (len([r for r in receiver.received if r.status == 500]), len(receiver.ok()))

    wait_for(attempts_counted, timeout=5, what="webhook attempts in livesight_webhook_attempts_total")
    verifier = Webhook(secret)
    for got in receiver.ok():
        payload = verifier.verify(got.body, got.headers)
        assert payload["type"] == "watch.result" and payload["watch_id"] == created["id"]
    tampered = dict(receiver.ok()[0].headers)
    with pytest.raises(Exception, match="signature"):
        verifier.verify(receiver.ok()[0].body + b" ", tampered)
    counts = get(env, created["id"])["counts"]
    assert counts["deliveries"] >= 2 and counts["delivery_failures"] >= 2


def test_a_hanging_receiver_does_not_stop_the_watch(tmp_path: Path) -> None:
    with (
        chat_env(tmp_path, FakeClock(), webhook_timeout_s=0.5, webhook_first_backoff_s=0.2) as env,
        run_receiver(hang=True) as receiver,
    ):
        created = create(env, webhook={"url": receiver.url})
        wait_for(lambda: get(env, created["id"])["counts"]["delivery_failures"] >= 2, timeout=15, what="timeouts")
        shown = get(env, created["id"])
        assert shown["state"] == "active" and shown["counts"]["results"] >= 2
        assert shown["last_error"]["code"] == "webhook_failed"


def test_a_webhook_outside_the_outbound_policy_is_refused(tmp_path: Path) -> None:
    with (
        chat_env(tmp_path, FakeClock(), outbound_allow_cidrs=["10.77.0.0/24"]) as env,
        run_receiver() as receiver,
        env.server.client(env.key) as c,
    ):
        r = c.post("/v1/watches", json=body(env, webhook={"url": receiver.url}))
        assert r.status_code == 400 and "outbound policy" in r.json()["detail"]
        assert receiver.received == []


def test_the_watch_operations_are_in_the_openapi_document(env: ChatEnv) -> None:
    with env.server.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/watches"]) == {"get", "post"}
    assert set(paths["/v1/watches/{watch_id}"]) == {"get", "patch", "delete"}
    events = paths["/v1/watches/{watch_id}/events"]["get"]["responses"]
    assert set(events["200"]["content"]) == {"text/event-stream"} and "404" in events
    assert "/v1/watches/{watch_id}/results" in paths
