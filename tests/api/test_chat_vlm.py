"""An in-process model end to end: listed `not downloaded`, pulled from a (fake, local) hub by its first
request (503 `model_loading` with Retry-After meanwhile, progress in GET /v1/models), loaded, then answering
through the official openai SDK: ovs:// frames and segments, streaming with usage, and json_schema output
that validates. The model is a tiny random-weight Idefics3 (SmolVLM v1 architecture) built at test time, with
its ONNX export, so on this CPU it runs on onnxruntime as `livesight/smolvlm-256m` would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")

import jsonschema

from livesight.backends.weights import Progress, WeightStore
from tests.support.fake_hub import FakeRepo, run_fake_hub
from tests.support.frames import push_frames
from tests.support.polling import wait_for
from tests.support.server import LiveServer, run_server

REPO = "TinyOrg/tiny-smolvlm"
MODEL = {"id": "local/tiny", "backend": "transformers", "weights": REPO, "queue_limit": 4}
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "people": {"type": "integer"}, "moving": {"type": "boolean"}},
    "required": ["answer", "people", "moving"],
    "additionalProperties": False,
}


def cards(srv: LiveServer) -> dict[str, dict[str, object]]:
    with srv.client() as c:
        return {m["id"]: m for m in c.get("/v1/models").json()["data"]}


@pytest.fixture(scope="module")
def tiny_repo(tiny_vlm_root: Path) -> FakeRepo:
    built = tiny_vlm_root / "tiny--idefics3"
    files = {p.relative_to(built).as_posix(): p.read_bytes() for p in built.rglob("*") if p.is_file()}
    return FakeRepo(files=files, lfs={"model.safetensors", *(f for f in files if f.endswith(".onnx"))})


@pytest.fixture(scope="module")
def vlm(tmp_path_factory: pytest.TempPathFactory, tiny_repo: FakeRepo) -> Iterator[tuple[LiveServer, str]]:
    data = tmp_path_factory.mktemp("vlm")
    with (
        run_fake_hub(repos={REPO: tiny_repo}) as hub,
        run_server(data, builtin_models=[], models=[MODEL], hf_endpoint=hub.base_url) as srv,
    ):
        key = srv.new_key()
        with srv.client(key) as c:
            sid = c.post("/v1/streams").json()["id"]
        push_frames(srv, sid, [i * 500 for i in range(8)], label="DOCK")
        assert cards(srv)["local/tiny"]["status"] == "not downloaded"
        body = {"model": "local/tiny", "messages": [{"role": "user", "content": "What do you see?"}]}
        with srv.client(key) as c:
            first = c.post("/v1/chat/completions", json=body)
        assert first.status_code == 503, first.text
        assert first.json()["error"]["code"] == "model_loading" and "downloading" in first.json()["error"]["message"]
        assert int(first.headers["retry-after"]) >= 1
        wait_for(
            lambda: cards(srv)["local/tiny"]["status"] == "ready" or None, timeout=120, what="model pulled, loaded"
        )
        pulled = data / "models" / "TinyOrg--tiny-smolvlm"
        # on this CPU the repository's ONNX export runs (runtime auto): only its files came, not the safetensors
        assert (pulled / "onnx" / "decoder_model_merged.onnx").is_file() and (pulled / "tokenizer.json").is_file()
        assert not (pulled / "model.safetensors").exists()
        yield srv, key


@pytest.fixture
def client(vlm: tuple[LiveServer, str]) -> openai.OpenAI:
    srv, key = vlm
    return openai.OpenAI(base_url=srv.base_url + "/v1", api_key=key, max_retries=0, timeout=120)


def sid_of(vlm: tuple[LiveServer, str]) -> str:
    srv, key = vlm
    with srv.client(key) as c:
        return str(c.get("/v1/streams").json()["data"][0]["id"])


@pytest.mark.timeout(300)
def test_json_schema_through_the_sdk_validates(vlm: tuple[LiveServer, str], client: openai.OpenAI) -> None:
    sid = sid_of(vlm)
    reply = client.chat.completions.create(
        model="local/tiny",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "video_url", "video_url": {"url": f"ovs://streams/{sid}?start_offset_ms=-2000&max_fps=1"}},
                    {"type": "text", "text": "Is anyone at the dock?"},
                ],
            }
        ],  # type: ignore[list-item, misc]
        response_format={"type": "json_schema", "json_schema": {"name": "dock", "schema": SCHEMA, "strict": True}},
        max_tokens=96,
        temperature=1.0,
        seed=5,
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content or ""), SCHEMA)
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert len((reply.model_extra or {})["overshoot"]["frames"][0]["frame_indexes"]) >= 2


@pytest.mark.timeout(300)
def test_a_frame_streams_with_usage(vlm: tuple[LiveServer, str], client: openai.OpenAI) -> None:
    sid = sid_of(vlm)
    stream = client.chat.completions.create(
        model="local/tiny",
        messages=[
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": f"ovs://streams/{sid}?frame_index=3"}}],
            }
        ],  # type: ignore[list-item, misc]
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=8,
    )
    chunks = list(stream)
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    assert chunks[-1].usage is not None and 1 <= chunks[-1].usage.completion_tokens <= 8
    assert (chunks[-1].model_extra or {})["overshoot"]["frames"][0]["frame_indexes"] == [3]


def test_a_pull_in_progress_is_listed_with_bytes_speed_and_eta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow_pull(
        self: WeightStore, repo: str, revision: str = "main", progress: object = None, select: object = None
    ) -> object:
        assert callable(progress)
        progress(Progress("model.safetensors", 5_000_000, 20_000_000, 5_000_000, 20_000_000, 2_500_000.0, 6.0))
        release.wait(30)
        raise RuntimeError("stopped by the test")

    monkeypatch.setattr(WeightStore, "pull", slow_pull)
    with run_server(tmp_path, builtin_models=[], models=[MODEL]) as srv:
        key = srv.new_key()
        body = {"model": "local/tiny", "messages": [{"role": "user", "content": "hi"}]}
        try:
            with srv.client(key) as c:
                assert c.post("/v1/chat/completions", json=body).status_code == 503
            card = wait_for(lambda: (c := cards(srv)["local/tiny"])["download"] and c, what="progress listed")
            assert card["status"] == "downloading"
            assert card["download"] == {
                "file": "model.safetensors",
                "done_bytes": 5_000_000,
                "total_bytes": 20_000_000,
                "speed_bps": 2_500_000.0,
                "eta_s": 6.0,
            }
            with srv.client(key) as c:
                again = c.post("/v1/chat/completions", json=body)
            assert again.status_code == 503 and "5.0 MB of 20.0 MB (25%)" in again.json()["error"]["message"]
        finally:
            release.set()
        wait_for(lambda: cards(srv)["local/tiny"]["status"] == "unavailable" or None, what="the failed pull shown")


def test_offline_the_error_says_what_to_download_where(tmp_path: Path) -> None:
    with run_server(tmp_path, builtin_models=[], models=[MODEL], hf_endpoint="http://127.0.0.1:9") as srv:
        key = srv.new_key()
        body = {"model": "local/tiny", "messages": [{"role": "user", "content": "hi"}]}
        with srv.client(key) as c:
            assert c.post("/v1/chat/completions", json=body).status_code == 503
        wait_for(lambda: cards(srv)["local/tiny"]["status"] == "unavailable" or None, what="the pull failed")
        with srv.client(key) as c:
            refused = c.post("/v1/chat/completions", json=body)
        message = refused.json()["error"]["message"]
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_not_ready"
        assert "are you offline?" in message and str(tmp_path / "models" / "TinyOrg--tiny-smolvlm") in message


def test_the_ready_ids_are_listed_not_downloaded_by_default(tmp_path: Path) -> None:
    with run_server(tmp_path, preload_builtin_models=False) as srv:
        listed = cards(srv)
    for model_id in ("livesight/smolvlm-256m", "livesight/smolvlm-500m"):
        assert (listed[model_id]["status"], listed[model_id]["backend"]) == ("not downloaded", "transformers")
        assert listed[model_id]["download"] is None
    assert "livesight/ocr" in listed
