"""The onnxruntime runtime on the tiny SmolVLM-architecture model and its ONNX export (tests/support/onnx_export.py):
the same answers as the torch runtime token for token, `runtime = "auto"` picking it on a CPU only when the
export is there, JSON-schema output, and a clear error when the chosen precision's files are missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from livesight.backends.vlm.backend import default_engine_factory
from livesight.backends.vlm.engine import Engine
from livesight.backends.vlm.engine_onnx import OnnxEngine
from livesight.backends.vlm.files import choose_runtime
from livesight.backends.vlm.prompt import Prompt, Sampling, build_prompt
from livesight.backends.weights import local_paths
from livesight.core.errors import ModelNotReady
from livesight.settings import ModelConfig
from tests.backends.vlm.conftest import IDEFICS3
from tests.backends.vlm.test_backend import SCHEMA, ask, backend, image, segment


@pytest.fixture(scope="module")
def directory(weights_root: Path) -> Path:
    return weights_root / IDEFICS3.replace("/", "--")


@pytest.fixture(scope="module")
def both(directory: Path) -> tuple[Engine, OnnxEngine]:
    return Engine(directory, threads=1), OnnxEngine(directory, threads=1)


def prompt_of(item_frames: int) -> Prompt:
    config = ModelConfig(id="m", backend="transformers", weights=IDEFICS3)
    return build_prompt(config, ask(segment(item_frames) if item_frames > 1 else image()))


@pytest.mark.parametrize("frames", [1, 3])
def test_greedy_answers_are_the_same_token_for_token_as_torch(both: tuple[Engine, OnnxEngine], frames: int) -> None:
    torch_engine, onnx_engine = both
    prompt = prompt_of(frames)
    pieces: list[str] = []
    on_torch = torch_engine.generate(prompt, Sampling(max_tokens=24), lambda _: None, lambda: False)
    on_onnx = onnx_engine.generate(prompt, Sampling(max_tokens=24), pieces.append, lambda: False)
    assert on_onnx == on_torch
    assert on_onnx.prompt_tokens == int(torch_engine.inputs(prompt)["input_ids"].shape[1])
    assert "".join(pieces) == on_onnx.text and len(pieces) > 1  # streamed as it came


def test_the_prompt_with_its_frames_gives_torchs_logits(both: tuple[Engine, OnnxEngine]) -> None:
    """The image features land in the `<image>` tokens' places: the whole prompt's logits match torch's."""
    import torch

    torch_engine, onnx_engine = both
    prompt = prompt_of(2)
    inputs = onnx_engine.inputs(prompt)
    embeds = onnx_engine.prompt_embeddings(inputs)
    logits = onnx_engine.prefill_logits(embeds)
    with torch.inference_mode():
        theirs = torch_engine.model(**torch_engine.inputs(prompt)).logits.numpy()
    assert logits.shape == theirs.shape
    assert np.abs(logits - theirs).max() < 1e-3 * max(1.0, float(np.abs(theirs).max()))


def test_auto_runs_on_onnxruntime_on_a_cpu_only_when_the_export_is_there(directory: Path, tmp_path: Path) -> None:
    config = ModelConfig(id="m", backend="transformers", weights=str(directory), device="cpu")
    assert isinstance(default_engine_factory(directory, config, 1), OnnxEngine)
    assert isinstance(
        default_engine_factory(directory, config.model_copy(update={"runtime": "transformers"}), 1), Engine
    )
    bare = tmp_path / "no-onnx"
    shutil.copytree(directory, bare, ignore=shutil.ignore_patterns("onnx"))
    assert choose_runtime("auto", "cpu", local_paths(bare)) == "transformers"
    assert isinstance(default_engine_factory(bare, config, 1), Engine)
    assert choose_runtime("auto", "cuda", local_paths(directory)) == "transformers"  # a GPU: torch


def test_a_missing_precision_names_the_files_it_needs(directory: Path) -> None:
    config = ModelConfig(
        id="m", backend="transformers", weights=str(directory), runtime="onnxruntime", onnx_variant="q4"
    )
    with pytest.raises(FileNotFoundError, match=r"onnx/vision_encoder_q4\.onnx.*the q4 ONNX export"):
        default_engine_factory(directory, config, 1)


def test_a_runtime_that_is_not_installed_says_what_to_install(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from livesight.backends.vlm import backend as vlm_backend

    monkeypatch.setattr(vlm_backend, "missing_modules", lambda runtime: ["torch"] if runtime == "transformers" else [])
    config = ModelConfig(id="m", backend="transformers", weights=str(directory), runtime="transformers")
    with pytest.raises(ModelNotReady, match=r"runs on transformers, which is not installed \(torch\); run make vlm"):
        default_engine_factory(directory, config, 1)


@pytest.fixture(scope="module")
def quantized(directory: Path) -> Path:
    from tests.support.onnx_export import quantize_int8

    if not (directory / "onnx" / "decoder_model_merged_int8.onnx").is_file():
        quantize_int8(directory)
    return directory


def test_the_int8_variant_loads_its_own_files_and_answers(quantized: Path) -> None:
    engine = OnnxEngine(quantized, threads=1, variant="int8")
    assert sorted(p.name for p in engine.files) == [
        "decoder_model_merged_int8.onnx",
        "embed_tokens_int8.onnx",
        "vision_encoder_int8.onnx",
    ]
    done = engine.generate(prompt_of(2), Sampling(max_tokens=8), lambda _: None, lambda: False)
    assert done.completion_tokens >= 1 and done.prompt_tokens == onnx_prompt_tokens(engine, prompt_of(2))


def onnx_prompt_tokens(engine: OnnxEngine, prompt: Prompt) -> int:
    return int(engine.inputs(prompt)["input_ids"].shape[1])


@pytest.mark.parametrize("variant", ["fp32", "int8"])
async def test_json_schema_output_validates_on_onnxruntime(quantized: Path, weights_root: Path, variant: str) -> None:
    model = backend(weights_root, IDEFICS3, runtime="onnxruntime", onnx_variant=variant)
    fmt = {"type": "json_schema", "json_schema": {"name": "scene", "schema": SCHEMA, "strict": True}}
    try:
        for seed in range(3):
            reply = await model.complete(
                ask(segment(2), max_tokens=96, temperature=1.0, seed=seed, response_format=fmt)
            )
            jsonschema.validate(json.loads(str(reply["choices"][0]["message"]["content"])), SCHEMA)  # type: ignore[index]
        assert isinstance(model._engine, OnnxEngine)
    finally:
        await model.aclose()
