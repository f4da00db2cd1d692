"""Which runtime runs an in-process model, and which of its repository's files that runtime needs. No torch.

Two runtimes (docs/local-models.md "Runtimes"):

- `transformers` (torch): any `AutoModelForImageTextToText` from its safetensors, CPU or CUDA.
- `onnxruntime`: models whose repository carries the three-graph ONNX export transformers.js uses
  (SmolVLM, SmolVLM2: `onnx/vision_encoder.onnx`, `onnx/embed_tokens.onnx`, `onnx/decoder_model_merged.onnx`,
  each also in fp16, int8, q4… under a suffix). Measured faster on CPU (`bench/vlm_onnx.py`).

`runtime = "auto"` (the default) picks onnxruntime when the model is to run on the CPU and its repository has
that export, transformers otherwise. "On the CPU" is decided without importing torch: `device = "cpu"`, or
`auto` on a machine with no NVIDIA driver (`/proc/driver/nvidia`), or without torch installed at all.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from livesight.backends.hub import FileSelection
from livesight.settings import OnnxVariant

Runtime = Literal["transformers", "onnxruntime"]
ONNX_PARTS = ("vision_encoder", "embed_tokens", "decoder_model_merged")

# what every runtime reads: the configs, the tokenizer, the processor, the chat template (top level only)
_COMMON = (
    "*.json",
    "tokenizer.model",
    "*.txt",
    "*.jinja",
)
# copies of the model for other runtimes and frameworks, never loaded by transformers + torch (which reads the
# top level of a repository only)
_NOT_TORCH: tuple[str, ...] = (
    "*/*/**",
    "*.onnx",
    "*.onnx_data",
    "*.gguf",
    "*.tflite",
    "*.h5",
    "*.msgpack",
    "*.ckpt",
    "*.ot",
)


def suffix(variant: OnnxVariant) -> str:
    return "" if variant == "fp32" else f"_{variant}"


def onnx_paths(variant: OnnxVariant) -> tuple[str, ...]:
    """The three graphs of `variant`, as repository paths."""
    return tuple(f"onnx/{part}{suffix(variant)}.onnx" for part in ONNX_PARTS)


def selection(runtime: Runtime, variant: OnnxVariant = "fp32", paths: Iterable[str] = ()) -> FileSelection:
    """The files `runtime` loads. For transformers, `pytorch_model*.bin` are left out when the repository
    (`paths`, its listing) has safetensors, as transformers prefers those."""
    if runtime == "onnxruntime":
        graphs = tuple(g + ext for g in onnx_paths(variant) for ext in ("", "_data", "_data_*"))
        return FileSelection(f"onnxruntime {variant} files", include=_COMMON + graphs)
    exclude: tuple[str, ...] = _NOT_TORCH
    if any(p.endswith(".safetensors") and "/" not in p for p in paths):
        exclude += ("*.bin", "*.pt", "*.pth")
    return FileSelection("transformers files", exclude=exclude)


def has_onnx_export(paths: Iterable[str], variant: OnnxVariant = "fp32") -> bool:
    have = set(paths)
    return all(p in have for p in onnx_paths(variant))


def on_cpu(device: str) -> bool:
    """Whether a model with this `device` setting would run on the CPU, known without importing torch."""
    if device == "cpu":
        return True
    if device == "cuda":
        return False
    return not Path("/proc/driver/nvidia").exists() or importlib.util.find_spec("torch") is None


def choose_runtime(requested: str, device: str, paths: Iterable[str], variant: OnnxVariant = "fp32") -> Runtime:
    """The runtime of a model: `requested` unless it is "auto" (see the module docstring)."""
    if requested == "transformers":
        return "transformers"
    if requested == "onnxruntime":
        return "onnxruntime"
    return "onnxruntime" if on_cpu(device) and has_onnx_export(paths, variant) else "transformers"
