"""The in-process backend on tiny random-weight models of two architectures (Idefics3 = SmolVLM v1, Qwen2-VL):
loading from a WeightStore, the chat template, single frames and segments, streaming, usage, stop sequences,
sampling, JSON-schema output that validates even with random weights, and a full queue answering 503."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest

from livesight.backends.request import ChatRequest, MediaPart, Message, TextPart
from livesight.backends.vlm import backend as vlm_backend
from livesight.backends.vlm.backend import VlmBackend
from livesight.backends.vlm.engine import Engine
from livesight.backends.vlm.prompt import build_prompt
from livesight.backends.weights import WeightStore
from livesight.core.clock import FakeClock
from livesight.core.errors import ModelBusy, ModelFailed, ModelLoading, ModelNotReady, RequestInvalid
from livesight.core.jsontypes import JsonObject
from livesight.core.media import MediaFrame, MediaItem
from livesight.settings import ModelConfig
from tests.backends.vlm.conftest import IDEFICS3, QWEN2VL
from tests.support.frames import text_jpeg

SCHEMA: JsonObject = {
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "people": {"type": "integer", "minimum": 0},
        "objects": {"type": "array", "items": {"type": "string"}},
        "alarm": {"type": "boolean"},
        "severity": {"enum": ["low", "medium", "high"]},
    },
    "required": ["description", "people", "objects", "alarm", "severity"],
    "additionalProperties": False,
}


# each architecture on each runtime it runs on (the tiny Idefics3 directory has the ONNX export too)
CASES = [
    pytest.param(IDEFICS3, "transformers", id="idefics3-torch"),
    pytest.param(IDEFICS3, "onnxruntime", id="idefics3-onnx"),
    pytest.param(QWEN2VL, "transformers", id="qwen2vl-torch"),
]
BOTH_RUNTIMES = pytest.mark.parametrize("runtime", ["transformers", "onnxruntime"])


def frame(i: int) -> MediaFrame:
    jpeg = text_jpeg(f"CAM {i}", 320, 180)
    return MediaFrame(jpeg=jpeg, width=320, height=180, index=i, timestamp_ms=1_000 + 500 * i)


def image() -> MediaItem:
    return MediaItem(kind="image", url="ovs://s1/frame", frames=(frame(0),), stream_id="s1")


def segment(n: int) -> MediaItem:
    return MediaItem("video", "ovs://s1/segment", tuple(frame(i) for i in range(n)), stream_id="s1", max_fps=2)


def ask(item: MediaItem, question: str = "What do you see?", **params: object) -> ChatRequest:
    message = Message("user", (MediaPart(item), TextPart(question)))
    return ChatRequest((message,), params=dict(params), include_usage=True)


def backend(root: Path, repo: str, **overrides: object) -> VlmBackend:
    config = ModelConfig(id="local/vlm", backend="transformers", weights=repo, **overrides)  # type: ignore[arg-type]
    return VlmBackend(config, clock=FakeClock(), weights=WeightStore(root), threads=1)


async def collect(chunks: AsyncIterator[JsonObject]) -> tuple[str, list[JsonObject]]:
    got = [c async for c in chunks]
    text = "".join(str(c["choices"][0]["delta"].get("content") or "") for c in got if c["choices"])  # type: ignore[index]
    return text, got


@pytest.fixture(scope="module")
def engines(weights_root: Path) -> dict[str, Engine]:
    return {repo: Engine(weights_root / repo.replace("/", "--"), threads=1) for repo in (IDEFICS3, QWEN2VL)}


@pytest.mark.parametrize("repo", [IDEFICS3, QWEN2VL])
def test_the_chat_template_puts_each_frame_after_its_stream_time(engines: dict[str, Engine], repo: str) -> None:
    engine = engines[repo]
    config = ModelConfig(id="m", backend="transformers", weights=repo)
    one = engine.inputs(build_prompt(config, ask(image())))
    three = engine.inputs(build_prompt(config, ask(segment(3))))
    text = engine.tokenizer.decode(three["input_ids"][0])
    assert text.index("t=+0.0s") < text.index("t=+0.5s") < text.index("t=+1.0s") < text.index("What do you see?")
    assert "Video segment of stream s1: 3 frames" in text
    image_token = "<image>" if repo == IDEFICS3 else "<|image_pad|>"
    per_frame = engine.tokenizer.decode(one["input_ids"][0]).count(image_token)
    assert per_frame > 0 and text.count(image_token) == 3 * per_frame


@pytest.mark.parametrize(("repo", "runtime"), CASES)
async def test_a_frame_and_a_segment_are_answered_with_real_token_counts(
    weights_root: Path, repo: str, runtime: str
) -> None:
    model = backend(weights_root, repo, runtime=runtime)
    try:
        assert model.state == "downloaded" and not model.ready
        one = await model.complete(ask(image(), max_tokens=6))
        seg = await model.complete(ask(segment(3), max_tokens=6))
        assert model.ready
        for reply in (one, seg):
            usage = reply["usage"]
            assert isinstance(usage, dict)
            choice = reply["choices"][0]  # type: ignore[index]
            assert choice["finish_reason"] in ("stop", "length")
            assert 1 <= usage["completion_tokens"] <= 6
            assert choice["finish_reason"] == "stop" or usage["completion_tokens"] == 6
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert seg["usage"]["prompt_tokens"] > 2 * one["usage"]["prompt_tokens"]  # type: ignore[index, operator]
    finally:
        await model.aclose()


@BOTH_RUNTIMES
async def test_a_stream_says_what_the_whole_answer_says_and_ends_with_usage(weights_root: Path, runtime: str) -> None:
    model = backend(weights_root, IDEFICS3, runtime=runtime)
    try:
        whole = await model.complete(ask(image(), max_tokens=12))
        text, chunks = await collect(model.stream(ask(image(), max_tokens=12)))
        assert text == whole["choices"][0]["message"]["content"]  # type: ignore[index]
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # type: ignore[index]
        assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1  # type: ignore[index, union-attr]
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
        assert chunks[-2]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]  # type: ignore[index]
    finally:
        await model.aclose()


@BOTH_RUNTIMES
async def test_a_stop_sequence_cuts_the_answer_before_it(weights_root: Path, runtime: str) -> None:
    model = backend(weights_root, IDEFICS3, runtime=runtime)
    try:
        full = str((await model.complete(ask(image(), max_tokens=24)))["choices"][0]["message"]["content"])  # type: ignore[index]
        stop = full[len(full) // 2 : len(full) // 2 + 2]
        assert stop.strip("\ufffd")
        cut = await model.complete(ask(image(), max_tokens=24, stop=[stop]))
        text, _ = await collect(model.stream(ask(image(), max_tokens=24, stop=stop)))
        assert cut["choices"][0]["message"]["content"] == text == full[: full.index(stop)]  # type: ignore[index]
        assert cut["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
    finally:
        await model.aclose()


@pytest.mark.parametrize(("repo", "runtime"), [(QWEN2VL, "transformers"), (IDEFICS3, "onnxruntime")])
async def test_the_same_seed_samples_the_same_answer(weights_root: Path, repo: str, runtime: str) -> None:
    model = backend(weights_root, repo, runtime=runtime)
    try:
        a, b = [
            (await model.complete(ask(image(), max_tokens=16, temperature=1.0, top_p=0.9, seed=7)))["choices"]
            for _ in range(2)
        ]
        greedy = await model.complete(ask(image(), max_tokens=16))
        assert a == b
        assert a != greedy["choices"]
    finally:
        await model.aclose()


@pytest.mark.parametrize("repo", [IDEFICS3, QWEN2VL])
async def test_json_schema_output_validates_even_with_random_weights(weights_root: Path, repo: str) -> None:
    model = backend(weights_root, repo, runtime="transformers")  # onnxruntime: test_engine_onnx.py
    fmt = {"type": "json_schema", "json_schema": {"name": "scene", "schema": SCHEMA, "strict": True}}
    try:
        for seed in range(4):
            request = ask(segment(2), max_tokens=96, temperature=1.0, seed=seed, response_format=fmt)
            reply = await model.complete(request)
            content = reply["choices"][0]["message"]["content"]  # type: ignore[index]
            jsonschema.validate(json.loads(str(content)), SCHEMA)
        text, _ = await collect(model.stream(ask(image(), max_tokens=64, response_format={"type": "json_object"})))
        assert isinstance(json.loads(text), dict)
    finally:
        await model.aclose()


async def test_a_schema_it_cannot_follow_is_400(weights_root: Path) -> None:
    model = backend(weights_root, IDEFICS3)
    try:
        bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "minProperties": "a"}}}
        with pytest.raises(RequestInvalid):
            await model.complete(ask(image(), response_format=bad))
        with pytest.raises(RequestInvalid):
            await model.complete(ask(image(), response_format={"type": "json_schema"}))
    finally:
        await model.aclose()


@BOTH_RUNTIMES
async def test_a_full_queue_is_503_model_busy_with_retry_after(weights_root: Path, runtime: str) -> None:
    model = backend(weights_root, IDEFICS3, queue_limit=0, max_output_tokens=4000, runtime=runtime)
    try:
        await model.complete(ask(image(), max_tokens=1))  # loaded
        running = model.stream(ask(image(), max_tokens=4000))
        await anext(running)  # the first answer is running on the worker
        with pytest.raises(ModelBusy) as refused:
            await model.complete(ask(image(), max_tokens=1))
        assert refused.value.status == 503 and int(refused.value.headers["Retry-After"]) >= 1
        await running.aclose()  # the client leaves: generation stops at the next token, the slot frees
        reply = await asyncio.wait_for(_until_admitted(model), timeout=60)
        assert reply["usage"]["completion_tokens"] == 1  # type: ignore[index]
    finally:
        await model.aclose()


async def _until_admitted(model: VlmBackend) -> JsonObject:
    while True:
        try:
            return await model.complete(ask(image(), max_tokens=1))
        except ModelBusy:
            await asyncio.sleep(0.05)


async def test_without_the_extra_the_error_names_the_install_command(
    weights_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vlm_backend, "missing_modules", lambda runtime: ["torch"])
    model = backend(weights_root, IDEFICS3, runtime="transformers")
    try:
        assert model.state == "unavailable" and "make vlm" in (model.not_ready_reason or "")
        with pytest.raises(ModelNotReady, match="make vlm"):
            await model.complete(ask(image()))
    finally:
        await model.aclose()


async def test_weights_that_are_not_here_and_may_not_be_pulled_say_what_to_run(tmp_path: Path) -> None:
    config = ModelConfig(id="local/vlm", backend="transformers", weights="org/not-here")
    model = VlmBackend(config, clock=FakeClock(), weights=WeightStore(tmp_path), auto_pull=False)
    try:
        assert model.state == "not downloaded"
        with pytest.raises(ModelNotReady, match="livesight models pull org/not-here") as refused:
            await model.complete(ask(image()))
        assert refused.value.code == "model_not_ready" and str(tmp_path / "org--not-here") in refused.value.message
    finally:
        await model.aclose()


async def test_a_broken_default_install_names_the_reinstall_command(
    weights_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        vlm_backend, "missing_modules", lambda runtime: [] if runtime == "transformers" else ["llguidance"]
    )
    model = backend(weights_root, IDEFICS3)  # runtime auto: onnxruntime here, all in the default install
    try:
        assert model.state == "unavailable" and "make setup" in (model.not_ready_reason or "")
    finally:
        await model.aclose()


async def test_server_start_logs_the_install_command_when_the_extra_is_missing(
    weights_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(vlm_backend, "missing_modules", lambda runtime: ["torch", "llguidance"])
    model = backend(weights_root, IDEFICS3, runtime="transformers")
    try:
        with caplog.at_level("WARNING", logger="livesight.models"):
            model.start()
        assert any(
            "make vlm" in r.getMessage() and "torch, llguidance missing" in r.getMessage() for r in caplog.records
        )
    finally:
        await model.aclose()


async def test_a_failure_inside_the_model_is_a_typed_500_not_a_trace(
    weights_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = backend(weights_root, IDEFICS3)
    try:
        await model.complete(ask(image(), max_tokens=1))
        engine = model._engine
        assert engine is not None

        def broken(*_: object) -> None:
            raise RuntimeError("shape mismatch deep inside torch")

        monkeypatch.setattr(engine, "generate", broken)
        with pytest.raises(ModelFailed) as failed:
            await model.complete(ask(image(), max_tokens=1))
        assert failed.value.status == 500 and "shape mismatch" not in failed.value.message
    finally:
        await model.aclose()


async def test_a_failed_pull_is_retried_by_a_request_after_the_retry_delay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ModelConfig(id="local/vlm", backend="transformers", weights="org/offline")
    model = VlmBackend(config, clock=FakeClock(), weights=WeightStore(tmp_path, "http://127.0.0.1:9"))
    try:
        with pytest.raises(ModelLoading):
            await model.complete(ask(image()))
        for _ in range(200):
            if model.state == "unavailable":
                break
            await asyncio.sleep(0.05)
        assert model.state == "unavailable" and "are you offline?" in (model.error or "")
        with pytest.raises(ModelNotReady) as refused:
            await model.complete(ask(image()))
        assert refused.value.code == "model_not_ready" and 1 <= int(refused.value.headers["Retry-After"]) <= 30
        monkeypatch.setattr(vlm_backend, "RETRY_S", 0.0)
        with pytest.raises(ModelLoading):  # a new pull started
            await model.complete(ask(image()))
        assert model.state in ("not downloaded", "downloading", "unavailable")
    finally:
        await model.aclose()


@BOTH_RUNTIMES
async def test_an_answer_past_timeout_s_ends_there_as_length(weights_root: Path, runtime: str) -> None:
    model = backend(weights_root, IDEFICS3, timeout_s=0.3, max_output_tokens=20_000, runtime=runtime)
    try:
        await model.complete(ask(image(), max_tokens=1))  # loaded (the timeout counts from the answer's start)
        reply = await model.complete(ask(image(), max_tokens=20_000))
        assert reply["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
        assert 1 <= reply["usage"]["completion_tokens"] < 20_000  # type: ignore[index, operator]
    finally:
        await model.aclose()
