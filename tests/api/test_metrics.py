"""GET /metrics: counters move by what a flow did, labels never name a stream or a key, and the
endpoint is refused to whoever may not scrape it (docs/metrics.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from livesight.api.app import create_app
from livesight.core.clock import FakeClock
from livesight.settings import BUILTIN_MODELS, load_settings
from tests.api.chat_env import chat_env, image_message, video_message
from tests.support.server import LiveServer, run_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(server: LiveServer, **headers: str) -> httpx.Response:
    with server.client() as c:
        return c.get("/metrics", headers=headers)


@pytest.mark.timeout(300)
def test_a_flow_moves_the_counters_and_no_label_names_a_stream_or_key(tmp_path: Path) -> None:
    with chat_env(tmp_path, FakeClock(), builtin_models=list(BUILTIN_MODELS)) as env:
        key, plain = env.server.keys.create("metrics")
        client = env.client()
        sid = env.new_stream(plain)  # a second stream, with no frames, owned by another key
        client.chat.completions.create(model="qwen", messages=image_message(env.ovs("frame_index=-1")))  # type: ignore[arg-type]
        segment = env.ovs("start_frame_index=10&end_frame_index=40&max_fps=2")
        stream = client.chat.completions.create(model="qwen", messages=video_message(segment), stream=True)  # type: ignore[arg-type]
        chunks = list(stream)
        segment_frames = len(getattr(chunks[-1], "overshoot")["frames"][0]["frame_indexes"])  # noqa: B009
        assert segment_frames > 1
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="nowhere", messages=image_message(env.ovs("frame_index=-1")))  # type: ignore[arg-type]
        env.fake.behaviour.fail_status = 500
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="qwen", messages=image_message(env.ovs("frame_index=-1")))  # type: ignore[arg-type]
        env.fake.behaviour.fail_status = None
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="no-such-model", messages=image_message(env.ovs("frame_index=-1")))  # type: ignore[arg-type]
        ocr = client.chat.completions.create(model="livesight/ocr", messages=image_message(env.ovs("frame_index=5")))  # type: ignore[arg-type]
        assert "FRAME 5" in (ocr.choices[0].message.content or "")
        with env.server.client(plain) as c:
            assert c.delete(f"/v1/streams/{sid}").status_code in (200, 204)
        response = scrape(env.server)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for secret in (env.stream_id, sid, plain, env.key, key.id):
        assert secret not in response.text
    s = parse(response.text)
    assert value(s, "livesight_streams_created_total") == 2
    assert value(s, "livesight_streams_ended_total", reason="deleted") == 1
    assert value(s, "livesight_streams_active") == 1
    assert value(s, "livesight_ingest_frames_received_total", codec="unknown") == 100
    assert value(s, "livesight_ingest_frames_kept_total", codec="unknown") == 100
    assert value(s, "livesight_buffer_retained_frames") == 100
    assert value(s, "livesight_buffer_retained_bytes") > 0
    assert value(s, "livesight_chat_requests_total", model="qwen", status="ok") == 2
    assert value(s, "livesight_chat_requests_total", model="livesight/ocr", status="ok") == 1
    assert value(s, "livesight_chat_requests_total", model="nowhere", status="model_not_ready") == 1
    assert value(s, "livesight_chat_requests_total", model="qwen", status="upstream_http_500") == 1
    assert value(s, "livesight_chat_requests_total", model="unknown", status="model_unavailable") == 1
    assert value(s, "livesight_upstream_errors_total", code="upstream_http_500") == 1
    assert sum(v for (name, _), v in s.items() if name == "livesight_upstream_errors_total") == 1
    assert value(s, "livesight_chat_upstream_first_token_seconds_count", model="qwen") == 2
    assert value(s, "livesight_chat_total_seconds_count", model="qwen") == 2
    assert value(s, "livesight_chat_resolve_seconds_count", model="livesight/ocr") == 1
    assert value(s, "livesight_chat_newest_frame_age_seconds_count", model="qwen") == 2
    assert value(s, "livesight_chat_frames_count", model="qwen") == 2
    assert value(s, "livesight_chat_frames_sum", model="qwen") == 1 + segment_frames, "a frame, then a segment"
    assert value(s, "livesight_chat_frames_sum", model="livesight/ocr") == 1
    chat_route = {"route": "/chat/completions", "method": "POST"}
    assert value(s, "livesight_http_requests_total", **chat_route, status="200") == 3
    assert value(s, "livesight_http_requests_total", **chat_route, status="502") == 1
    assert value(s, "livesight_http_requests_total", **chat_route, status="503") == 1
    assert (
        value(s, "livesight_http_requests_total", route="/streams/{stream_id}", method="DELETE", status="204")
        + (value(s, "livesight_http_requests_total", route="/streams/{stream_id}", method="DELETE", status="200"))
        == 1
    )
    assert all(not dict(labels).get("route", "/").count(sid) for _, labels in s)


def test_a_token_protects_metrics(tmp_path: Path) -> None:
    with run_server(tmp_path, builtin_models=[], metrics_token="scrape-me-please") as server:
        api_key = server.new_key()
        assert scrape(server).status_code == 401
        assert scrape(server, Authorization="Bearer wrong").status_code == 401
        assert scrape(server, Authorization=f"Bearer {api_key}").status_code == 401
        ok = scrape(server, Authorization="Bearer scrape-me-please")
        assert ok.status_code == 200
        assert "livesight_streams_created_total" in ok.text
        assert "/metrics" not in server.app.openapi()["paths"]


def _status_from(tmp_path: Path, client_host: str) -> int:
    settings = load_settings(None, data_dir=tmp_path, builtin_models=[])
    app = create_app(settings)

    async def get() -> int:
        transport = httpx.ASGITransport(app=app, client=(client_host, 40000))  # in-process: no traffic
        async with httpx.AsyncClient(transport=transport, base_url="http://livesight") as c:
            return (await c.get("/metrics")).status_code

    return asyncio.run(get())


def test_without_a_token_only_loopback_may_scrape(tmp_path: Path) -> None:
    assert _status_from(tmp_path / "a", "127.0.0.1") == 200
    assert _status_from(tmp_path / "b", "::1") == 200
    assert _status_from(tmp_path / "c", "192.0.2.7") == 401


def test_an_error_inside_an_sse_stream_counts_with_its_code(tmp_path: Path) -> None:
    with chat_env(tmp_path, FakeClock()) as env:
        env.fake.behaviour.mid_stream_error = True
        body = {"model": "qwen", "stream": True, "messages": image_message(env.ovs("frame_index=-1"))}
        with env.server.client(env.key) as c:
            answer = c.post("/v1/chat/completions", json=body)
        assert answer.status_code == 200
        events = [line[6:] for line in answer.text.splitlines() if line.startswith("data: {")]
        errors = [json.loads(e)["error"] for e in events if "error" in json.loads(e)]
        assert len(errors) == 1
        s = parse(scrape(env.server).text)
    code = errors[0]["code"]
    assert value(s, "livesight_chat_requests_total", model="qwen", status=code) == 1
    assert value(s, "livesight_chat_requests_total", model="qwen", status="ok") == 0
    assert value(s, "livesight_upstream_errors_total", code=code) == (1 if code.startswith("upstream_") else 0)
