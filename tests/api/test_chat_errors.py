"""Every error row of CONTRACT §5.3 and §6 through the openai SDK, with the exact chat envelope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from livesight.core.clock import FakeClock
from tests.api.chat_env import ChatEnv, chat_env, image_message, video_message
from tests.support.polling import wait_for

UNKNOWN = "7d9c1f7e-0b7a-4e1b-8d0e-1a2b3c4d5e6f"


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock) -> Iterator[ChatEnv]:
    with chat_env(tmp_path, clock, retention_seconds=8) as e:
        yield e


def _fail(
    env: ChatEnv, messages: list[dict[str, Any]], model: str = "qwen", key: str | None = None
) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as err:
        env.client(key).chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
    return err.value


def _envelope(exc: openai.APIStatusError, status: int, type_: str, code: str) -> dict[str, Any]:
    """The exact chat envelope: Overshoot's `detail.error`, the same object as top-level `error`, and the
    SDK's exception carrying our message, code and type (it reads them from `error`)."""
    assert exc.status_code == status, exc.response.text
    body = exc.response.json()
    assert set(body) == {"detail", "error"}
    assert set(body["detail"]) == {"error"}
    error = body["detail"]["error"]
    assert body["error"] == error
    assert set(error) == {"message", "type", "code", "upstream"}
    assert (error["type"], error["code"]) == (type_, code)
    assert isinstance(error["message"], str) and error["message"]
    assert error["message"] in str(exc) and str(status) in str(exc)
    assert (exc.code, exc.type) == (code, type_)
    return dict(error)


# --- CONTRACT §5.1 / §5.2 / §5.3 ------------------------------------------------------------------------

URI_ERRORS = [
    # (part, query or full URL, status, type, code, words the message must contain)
    ("image", "ovs://streams/not-a-uuid?frame_index=-1", 400, "stream_error", "stream_url_invalid", ["not-a-uuid"]),
    ("image", "ovs://stream/{sid}?frame_index=-1", 400, "stream_error", "stream_url_invalid", ["ovs://stream/"]),
    ("image", "frame_index=1&frame_index=2", 400, "stream_error", "query_param_invalid", ["duplicate", "frame_index"]),
    ("image", "frame_index=1&offset_ms=-5", 400, "stream_error", "query_param_invalid", ["offset_ms"]),
    ("image", "frame_index=abc", 400, "stream_error", "query_param_invalid", ["frame_index"]),
    ("image", "tolerance_ms=5", 400, "stream_error", "query_param_invalid", ["anchor"]),
    ("image", "frame_index=-1&zoom=2", 400, "stream_error", "query_param_invalid", ["zoom"]),
    ("video", "end_offset_ms=-5", 400, "stream_error", "query_param_invalid", ["start_"]),
    ("video", "start_offset_ms=-5&max_fps=0", 400, "stream_error", "query_param_invalid", ["max_fps"]),
    ("image", "frame_index=3", 410, "stream_error", "frame_evicted", ["frame_index=3"]),
    ("image", "frame_index=100", 409, "stream_error", "frame_not_yet_produced", ["frame_index=100"]),
    ("image", "frame_index=50000", 409, "stream_error", "frame_not_yet_produced", ["frame_index=50000"]),
    ("image", "timestamp_ms=50000", 404, "stream_error", "segment_empty", ["timestamp_ms=50000"]),
    ("image", "timestamp_ms=4250&tolerance_ms=20", 404, "stream_error", "segment_empty", ["tolerance_ms=20"]),
    ("video", "start_frame_index=1&end_frame_index=5", 404, "stream_error", "segment_empty", ["end_frame_index=5"]),
    ("video", "start_offset_ms=-5000&end_offset_ms=0", 400, "stream_error", "segment_invalid", ["end_offset_ms=0"]),
    ("video", "start_frame_index=500", 400, "stream_error", "segment_invalid", ["omitting the end means now"]),
    ("image", f"ovs://streams/{UNKNOWN}?frame_index=-1", 404, "stream_error", "stream_not_found", [UNKNOWN]),
]


@pytest.mark.parametrize(("part", "query", "status", "type_", "code", "words"), URI_ERRORS)
def test_uri_errors(env: ChatEnv, part: str, query: str, status: int, type_: str, code: str, words: list[str]) -> None:
    url = query.format(sid=env.stream_id) if query.startswith("ovs://") else env.ovs(query)
    messages = image_message(url) if part == "image" else video_message(url)
    error = _envelope(_fail(env, messages), status, type_, code)
    assert url in error["message"], "the message names the URI"
    for word in words:
        assert word in error["message"]
    assert error["upstream"] is None
    assert env.fake.requests == [], "nothing reached the model"


def test_max_segment_frames_is_configurable(tmp_path: Path, clock: FakeClock) -> None:
    with chat_env(tmp_path, clock, max_segment_frames=5) as env:
        error = _envelope(
            _fail(env, video_message(env.ovs("start_offset_ms=-9000"))), 400, "stream_error", "segment_invalid"
        )
        assert "10 frames" in error["message"] and "limit of 5" in error["message"]


def test_model_max_frames(env: ChatEnv) -> None:
    error = _envelope(
        _fail(env, video_message(env.ovs("start_offset_ms=-5000")), model="small"),
        400,
        "stream_error",
        "segment_invalid",
    )
    assert "max_frames" in error["message"] and "small" in error["message"]


def test_no_frame_yet(env: ChatEnv) -> None:
    empty = env.new_stream()
    for messages in (
        image_message(env.ovs("frame_index=-1", empty)),
        video_message(env.ovs("start_offset_ms=-5000", empty)),
    ):
        error = _envelope(_fail(env, messages), 404, "stream_error", "segment_empty")
        assert "no frame has arrived" in error["message"]


def test_deleted_stream_is_not_found(env: ChatEnv) -> None:
    with env.server.client(env.key) as c:
        assert c.delete(f"/v1/streams/{env.stream_id}").status_code == 200
    error = _envelope(_fail(env, image_message(env.ovs("frame_index=-1"))), 404, "stream_error", "stream_not_found")
    assert env.stream_id in error["message"]


def test_expired_stream_is_not_found(env: ChatEnv, clock: FakeClock) -> None:
    clock.advance(301_000)
    with env.server.client(env.key) as c:
        wait_for(lambda: c.get(f"/v1/streams/{env.stream_id}").json()["state"] == "ended", what="lease expiry")
    _envelope(_fail(env, image_message(env.ovs("frame_index=-1"))), 404, "stream_error", "stream_not_found")


def test_another_keys_stream_is_forbidden(env: ChatEnv) -> None:
    other_key = env.server.new_key("other")
    error = _envelope(
        _fail(env, image_message(env.ovs("frame_index=-1")), key=other_key),
        403,
        "stream_error",
        "stream_unauthorized",
    )
    assert env.stream_id in error["message"]


def test_video_to_an_image_only_model(env: ChatEnv) -> None:
    url = env.ovs("start_offset_ms=-2000")
    error = _envelope(
        _fail(env, video_message(url), model="image-only"), 400, "validation_error", "model_video_unsupported"
    )
    assert url in error["message"] and "image-only" in error["message"]
    inline = "data:video/mp4;base64,AAAA"
    _envelope(_fail(env, video_message(inline), model="image-only"), 400, "validation_error", "model_video_unsupported")


# --- CONTRACT §6 model and upstream errors ----------------------------------------------------------------


def test_unknown_model(env: ChatEnv) -> None:
    error = _envelope(
        _fail(env, [{"role": "user", "content": "hi"}], model="Qwen"), 404, "provider_error", "model_unavailable"
    )
    assert "'Qwen'" in error["message"]


@pytest.mark.parametrize(("upstream_status", "status"), [(500, 502), (400, 502), (503, 502), (429, 429), (401, 502)])
def test_upstream_http_errors(env: ChatEnv, upstream_status: int, status: int) -> None:
    env.fake.behaviour.fail_status = upstream_status
    env.fake.behaviour.rate_limit_headers = {"x-ratelimit-remaining-requests": "0", "retry-after": "3"}
    error = _envelope(
        _fail(env, image_message(env.ovs("frame_index=-1"))),
        status,
        "upstream_error",
        f"upstream_http_{upstream_status}",
    )
    upstream = error["upstream"]
    assert upstream["provider"] == env.fake.base_url.split("/")[2]
    assert upstream["status"] == upstream_status
    assert upstream["body"]["error"]["message"] == "simulated failure"
    assert upstream["body"]["error"]["code"] == upstream_status
    assert upstream["rate_limits"]["x-ratelimit-remaining-requests"] == "0"


def test_upstream_error_body_is_bounded(env: ChatEnv) -> None:
    env.fake.behaviour.fail_status = 500
    env.fake.behaviour.fail_message = "x" * 10_000
    error = _envelope(_fail(env, [{"role": "user", "content": "hi"}]), 502, "upstream_error", "upstream_http_500")
    assert isinstance(error["upstream"]["body"], str)
    assert len(error["upstream"]["body"].encode()) <= 4096


def test_upstream_timeout(env: ChatEnv) -> None:
    env.fake.behaviour.delay_s = 2
    error = _envelope(
        _fail(env, [{"role": "user", "content": "hi"}], model="slow"), 504, "upstream_error", "upstream_timeout"
    )
    assert error["upstream"]["status"] is None


def test_unreachable_upstream_is_a_model_that_is_not_ready(env: ChatEnv) -> None:
    # CONTRACT §6: a configured model whose backend is down is not unknown: 503 model_not_ready, with
    # Retry-After = when the next health probe may say otherwise, and a message that says why
    exc = _fail(env, [{"role": "user", "content": "hi"}], model="nowhere")
    error = _envelope(exc, 503, "provider_error", "model_not_ready")
    assert "'nowhere'" in error["message"] and "cannot reach 127.0.0.1:9" in error["message"]
    assert exc.response.headers["retry-after"] == "5"  # model_probe_ttl_s, default 5 s
    assert env.fake.requests == []
    listed = {m["id"]: m["status"] for m in httpx.get(env.api + "/models").json()["data"]}
    assert listed["nowhere"] == "unavailable"


def test_retry_after_of_a_model_that_is_not_ready_follows_the_probe_ttl(tmp_path: Path, clock: FakeClock) -> None:
    with chat_env(tmp_path, clock, frames=False, model_probe_ttl_s=2.5) as env:
        exc = _fail(env, [{"role": "user", "content": "hi"}], model="nowhere")
        _envelope(exc, 503, "provider_error", "model_not_ready")
        assert exc.response.headers["retry-after"] == "3"


def test_connection_failure_after_a_good_probe_is_upstream_request_failed(env: ChatEnv) -> None:
    env.client().chat.completions.create(model="qwen", messages=[{"role": "user", "content": "hi"}])  # probe passes
    env.fake.behaviour.drop_connection = True
    error = _envelope(_fail(env, [{"role": "user", "content": "hi"}]), 502, "upstream_error", "upstream_request_failed")
    assert error["upstream"]["provider"] == env.fake.base_url.split("/")[2]
    assert error["upstream"]["status"] is None


def test_upstream_refusing_a_stream_gets_a_proper_status(env: ChatEnv) -> None:
    env.fake.behaviour.fail_status = 400
    with pytest.raises(openai.APIStatusError) as err:
        env.client().chat.completions.create(model="qwen", messages=[{"role": "user", "content": "hi"}], stream=True)
    _envelope(err.value, 502, "upstream_error", "upstream_http_400")


def test_mid_stream_error_is_one_event_then_done(env: ChatEnv) -> None:
    env.fake.behaviour.mid_stream_error = True
    with httpx.Client(timeout=10) as c:
        response = c.post(
            env.api + "/chat/completions",
            headers={"Authorization": f"Bearer {env.key}"},
            json={"model": "qwen", "messages": image_message(env.ovs("frame_index=-1")), "stream": True},
        )
    assert response.status_code == 200
    events = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    import json

    error = json.loads(events[-2])
    assert set(error) == {"error"}
    assert (error["error"]["type"], error["error"]["code"]) == ("upstream_error", "upstream_http_500")
    assert error["error"]["upstream"]["body"]["error"]["message"] == "simulated engine failure"
    with pytest.raises(openai.APIError) as err:
        list(
            env.client().chat.completions.create(
                model="qwen", messages=image_message(env.ovs("frame_index=-1")), stream=True
            )
        )  # type: ignore[arg-type]
    assert err.value.body["code"] == "upstream_http_500"  # type: ignore[index]


def test_client_disconnect_cancels_the_upstream_stream(env: ChatEnv) -> None:
    env.fake.behaviour.chunk_delay_s = 1.0
    stream = env.client().chat.completions.create(
        model="qwen", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    stream.close()
    wait_for(lambda: env.fake.cancelled >= 1, timeout=10, what="the upstream stream to be cancelled")


def test_client_disconnect_cancels_a_non_streaming_request(env: ChatEnv) -> None:
    env.fake.behaviour.chunk_delay_s = 0
    env.fake.behaviour.delay_s = 3
    with pytest.raises(openai.APITimeoutError):
        env.client(timeout=0.5).chat.completions.create(model="qwen", messages=[{"role": "user", "content": "hi"}])
    wait_for(lambda: env.fake.cancelled >= 1, timeout=10, what="the upstream request to be abandoned")
    env.fake.behaviour.delay_s = 0
    env.client().chat.completions.create(model="qwen", messages=[{"role": "user", "content": "hi"}])


# --- auth, validation, rate limits --------------------------------------------------------------------------


def test_bad_key(env: ChatEnv) -> None:
    _envelope(_fail(env, [{"role": "user", "content": "hi"}], key="ovs-nope"), 401, "validation_error", "unauthorized")


def test_validation_envelope(env: ChatEnv) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as err:
        env.client().chat.completions.create(model="qwen", messages=[{"role": "robot", "content": "hi"}])  # type: ignore[list-item, misc]
    body = err.value.response.json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == "validation_error"
    assert body["message"] == "Request validation failed"
    assert body["details"] and {"loc", "msg", "type"} <= set(body["details"][0])
    assert body["details"][0]["loc"][:4] == ["body", "messages", 0, "role"]
    # Envelope 3 keeps Overshoot's string `error` (CONTRACT §2), so the SDK's text is the bare status and
    # its `body` is that string; what failed is in the response's `details`.
    assert str(err.value) == "Error code: 422"
    assert err.value.body == "validation_error"
    with pytest.raises(openai.UnprocessableEntityError):
        env.client().chat.completions.create(
            model="qwen",
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],  # type: ignore[list-item, typeddict-item]
        )


def test_body_too_large_on_chat_is_a_readable_413(tmp_path: Path, clock: FakeClock) -> None:
    with chat_env(tmp_path, clock, frames=False, max_body_bytes=4096) as env:
        error = _envelope(
            _fail(env, [{"role": "user", "content": "x" * 8192}]), 413, "validation_error", "request_too_large"
        )
    assert "4096-byte limit" in error["message"]


def test_routes_an_openai_client_may_call_but_livesight_lacks_say_so(env: ChatEnv) -> None:
    """The SDK's other endpoints land on unknown routes: 404/405 with `message`, which the SDK shows."""
    client = env.client()
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("qwen")
    assert missing.value.response.json() == {"detail": "Not Found", "message": "Not Found"}
    assert "Not Found" in str(missing.value)
    with pytest.raises(openai.NotFoundError) as responses:
        client.responses.create(model="qwen", input="hi")
    assert "Not Found" in str(responses.value)
    with pytest.raises(openai.APIStatusError) as wrong_method:
        client.post("/models", body={}, cast_to=httpx.Response)
    assert wrong_method.value.status_code == 405
    assert "Method Not Allowed" in str(wrong_method.value)
    assert wrong_method.value.response.headers["allow"] == "GET"
    with pytest.raises(openai.APIStatusError) as chat_method:  # the chat path keeps the chat envelope
        client.get("/chat/completions", cast_to=httpx.Response)
    _envelope(chat_method.value, 405, "validation_error", "http_405")


def test_rate_limit(tmp_path: Path, clock: FakeClock) -> None:
    with chat_env(tmp_path, clock, frames=False, rate_limit_rps=2) as env:
        client = env.client()
        raw = client.chat.completions.with_raw_response.create(
            model="qwen", messages=[{"role": "user", "content": "a"}]
        )
        assert raw.headers["x-ratelimit-limit"] == "2"
        assert raw.headers["x-ratelimit-remaining"] == "1"
        assert int(raw.headers["x-ratelimit-reset"]) >= clock.now_ms() // 1000
        client.chat.completions.create(model="qwen", messages=[{"role": "user", "content": "b"}])
        exc = _fail(env, [{"role": "user", "content": "c"}])
        _envelope(exc, 429, "rate_limit_error", "rate_limit_exceeded")
        assert exc.response.headers["retry-after"] == "1"
        assert exc.response.headers["x-ratelimit-remaining"] == "0"
        other = env.server.new_key("other")
        env.client(other).chat.completions.create(model="qwen", messages=[{"role": "user", "content": "d"}])
        clock.advance(1000)
        client.chat.completions.create(model="qwen", messages=[{"role": "user", "content": "e"}])
