"""transformers + torch vs onnxruntime for SmolVLM-256M/-500M on CPU, random weights at the real sizes.

    PYTHONPATH=src:. .venv/bin/python bench/vlm_onnx.py [--models 256m] [--threads 1,2] [--runs 5] [--past 100]

The model is bench/vlm.py's: the Idefics3 architecture with SmolVLM's published sizes, random weights (no
download), so the compute is the real one. Two pieces are exported with `torch.onnx.export` (the TorchScript
exporter: the `onnx` package is not installed here) and run in both runtimes on the same inputs:

- the vision encoder + connector: one 512x512 tile (a frame, image splitting off, as the backend does) →
  64 image tokens;
- one decoder step: one new token over a KV cache of `--past` tokens (a one-frame prompt is ~90), logits
  and the grown cache out; timed as `--tokens` consecutive steps, each feeding the cache the last returned.

Both runtimes get the same thread count (torch.set_num_threads / intra_op_num_threads, inter-op 1). The
ONNX outputs are checked against torch's (max abs difference printed) before anything is timed. Numbers
are medians (and the best) of `--runs`, torch and onnxruntime interleaved run by run so both see the same
load; on a shared machine they are "under load" (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.support.onnx_export import vision_module as export_vision_module  # noqa: E402
from tests.support.onnx_export import without_onnx_package  # noqa: E402

from bench.vlm import VISION, VOCAB, smolvlm_config  # noqa: E402


def build_model(size: str) -> Any:
    import torch
    from transformers import Idefics3ForConditionalGeneration

    config = smolvlm_config(size, VOCAB - 1)
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(config).eval()
    return model


def vision_module(model: Any) -> Any:
    """The vision encoder + connector for one full tile [1, 3, H, W]: `tests/support/onnx_export.py`'s wrapper
    (the one the onnxruntime engine's export uses: full-tile position ids 0..N-1, as Idefics3's bucketized
    ones do not export) with every pixel real. `check_vision` asserts it equals the model's own path."""
    import torch

    images = export_vision_module(model)

    class OneTile(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.images = images

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            b, _, h, w = pixel_values.shape
            mask = torch.ones(b, 1, h, w, dtype=torch.bool)
            return self.images(pixel_values.unsqueeze(1), mask)  # type: ignore[no-any-return]

    return OneTile().eval()


def check_vision(model: Any, vision: Any, pixels: Any) -> float:
    """Max abs difference between the wrapper and the model's own image features (must be ~0)."""
    own = model.model.get_image_features(pixels[None]).pooler_output[0]
    return float((own - vision(pixels)[0]).abs().max())


def step_module(model: Any, layers: int) -> Any:
    import torch
    from transformers import DynamicCache

    class Step(torch.nn.Module):
        """One decoder step: (token, position, past k/v per layer) → (logits, present k/v per layer)."""

        def __init__(self) -> None:
            super().__init__()
            self.text = model.model.text_model
            self.head = model.lm_head

        def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, *past: torch.Tensor) -> Any:
            cache = DynamicCache()
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.text(input_ids=input_ids, position_ids=position_ids, past_key_values=cache, use_cache=True)
            logits = self.head(out.last_hidden_state)
            present = []
            for layer in out.past_key_values.layers:
                present += [layer.keys, layer.values]
            return (logits, *present)

    return Step().eval()


def session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def paired_times(a: Any, b: Any, runs: int) -> tuple[list[float], list[float]]:
    """Seconds per run of `a` and of `b`, interleaved (a, b, a, b, …) after one warm-up each, so both see
    the same load on a shared machine."""
    a()
    b()
    times_a, times_b = [], []
    for _ in range(runs):
        for fn, times in ((a, times_a), (b, times_b)):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    return times_a, times_b


def summary(label: str, unit: float, torch_s: list[float], ort_s: list[float], digits: int) -> str:
    """`label torch M (best B) ms, onnxruntime M (best B) ms (ratio of medians)`."""
    tm, om = statistics.median(torch_s) / unit, statistics.median(ort_s) / unit
    tb, ob = min(torch_s) / unit, min(ort_s) / unit
    return (
        f"{label} torch {tm * 1000:.{digits}f} (best {tb * 1000:.{digits}f}) ms, onnxruntime "
        f"{om * 1000:.{digits}f} (best {ob * 1000:.{digits}f}) ms: {tm / om:.2f}x"
    )


def time_runtimes(
    n: int, vision: Any, step: Any, paths: tuple[Path, Path], past: list[Any], names: list[str], args: Any
) -> str:
    """One line: vision encoder per frame and decode per token, torch vs onnxruntime, with `n` threads."""
    import numpy as np
    import torch

    torch.set_num_threads(n)
    vs, ds = session(paths[0], n), session(paths[1], n)
    pixels = torch.randn(1, 3, VISION["image_size"], VISION["image_size"])
    token = torch.tensor([[42]])

    def torch_decode() -> None:
        kvs = past
        for i in range(args.tokens):
            kvs = list(step(token, torch.tensor([[args.past + i]]), *kvs)[1:])

    def ort_decode() -> None:
        kvs = [t.numpy() for t in past]
        for i in range(args.tokens):
            feeds = {"input_ids": token.numpy(), "position_ids": np.array([[args.past + i]])}
            kvs = ds.run(None, feeds | dict(zip(names, kvs, strict=True)))[1:]

    load = os.getloadavg()[0]
    vision_times = paired_times(
        lambda: vision(pixels), lambda: vs.run(None, {"pixel_values": pixels.numpy()}), args.runs
    )
    decode_times = paired_times(torch_decode, ort_decode, args.runs)
    return (
        f"  {n} thread(s), load average {load:.2f} → {os.getloadavg()[0]:.2f}, medians of {args.runs}:\n"
        f"    {summary('vision encoder per frame:', 1, *vision_times, 0)}\n"
        f"    {summary(f'decode per token (past {args.past}):', args.tokens, *decode_times, 1)}"
    )


def measure(size: str, tmp: Path, threads: list[int], args: Any) -> None:
    import numpy as np
    import torch

    model = build_model(size)
    text = model.config.text_config
    layers, kv, head_dim = text.num_hidden_layers, text.num_key_value_heads, text.head_dim
    params = sum(p.numel() for p in model.parameters())
    print(f"SmolVLM-{size} shape: {params / 1e6:.0f} M parameters, {layers} decoder layers")

    # the vision encoder + connector: one tile in, 64 image tokens out
    vision = vision_module(model)
    pixels = torch.randn(1, 3, VISION["image_size"], VISION["image_size"])
    print(f"  vision wrapper vs the model's own image features: max abs diff {check_vision(model, vision, pixels):.1e}")
    vision_path = tmp / f"vision-{size}.onnx"
    started = time.perf_counter()
    torch.onnx.export(
        vision, (pixels,), str(vision_path), input_names=["pixel_values"], output_names=["image_embeds"],
        opset_version=17, dynamo=False,
    )  # fmt: skip
    print(f"  vision export {time.perf_counter() - started:.1f} s, {vision_path.stat().st_size / 1e6:.0f} MB")

    # one decoder step over a KV cache of --past tokens (the cache length is a dynamic axis)
    step = step_module(model, layers)
    past = [torch.randn(1, kv, args.past, head_dim) for _ in range(2 * layers)]
    token, position = torch.tensor([[42]]), torch.tensor([[args.past]])
    step_path = tmp / f"step-{size}.onnx"
    names = [f"{kind}.{i}" for i in range(layers) for kind in ("past_key", "past_value")]
    present = [f"{kind}.{i}" for i in range(layers) for kind in ("present_key", "present_value")]
    dynamic = {n: {2: "past"} for n in names} | {n: {2: "total"} for n in present}
    started = time.perf_counter()
    torch.onnx.export(
        step, (token, position, *past), str(step_path), input_names=["input_ids", "position_ids", *names],
        output_names=["logits", *present], dynamic_axes=dynamic, opset_version=17, dynamo=False,
    )  # fmt: skip
    print(f"  decoder-step export {time.perf_counter() - started:.1f} s")

    # the same answers before anything is timed
    vs, ds = session(vision_path, threads[0]), session(step_path, threads[0])
    (got,) = vs.run(None, {"pixel_values": pixels.numpy()})
    expected = vision(pixels).numpy()
    feeds = {"input_ids": token.numpy(), "position_ids": position.numpy()}
    step_got = ds.run(None, feeds | {name: t.numpy() for name, t in zip(names, past, strict=True)})[0]
    step_expected = step(token, position, *past)[0].numpy()
    print(
        f"  onnxruntime vs torch, max abs difference: vision {np.abs(got - expected).max():.2e} "
        f"(of {np.abs(expected).max():.2f}), logits {np.abs(step_got - step_expected).max():.2e} "
        f"(of {np.abs(step_expected).max():.2f})"
    )
    del vs, ds
    for n in threads:
        print(time_runtimes(n, vision, step, (vision_path, step_path), past, names, args), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="256m")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--past", type=int, default=100, help="KV-cache length before the timed decode steps")
    parser.add_argument("--tokens", type=int, default=10, help="decode steps per timed run")
    args = parser.parse_args()
    import onnxruntime as ort
    import torch
    import transformers

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, onnxruntime {ort.__version__}, "
        f"{len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.2f}"
    )
    without_onnx_package()
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for size in args.models.split(","):
            measure(size, Path(tmp), [int(t) for t in args.threads.split(",")], args)


if __name__ == "__main__":
    main()
