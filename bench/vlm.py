"""In-process VLM latency at the REAL sizes of SmolVLM-256M and -500M, with random weights (no download).

    .venv/bin/python bench/vlm.py [--models 256m,500m] [--frames 1,8] [--tokens 30] [--threads N] [--runs 2]
                                  [--runtimes transformers,onnxruntime]

Same compute as the real models: the Idefics3 architecture with the published sizes (text: SmolLM2-135M /
-360M, vision: SigLIP base patch16 at 512 px, pixel shuffle 4 → 64 tokens an image tile, vocab 49,280);
the parameter count is printed so the size can be checked against the model names. The run goes through
the backend's own engines (`engine.Engine` on torch: processor, chat template, generate with the token
picker; `engine_onnx.OnnxEngine` on onnxruntime, from the three-graph ONNX export of the same random
weights, `tests/support/onnx_export.py`; `--onnx-variants int8` quantizes it here), one 1280×720 JPEG
frame and an 8-frame segment, image splitting off (one 512×512 tile a frame, as the backend does). It
forces `--tokens` new tokens (random weights would stop anywhere) and reports time to first token
(prefill: vision encoder + prompt) and decode tokens/s after it.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

SIZES = {
    "256m": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "heads": 9, "kv": 3},
    "500m": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32, "heads": 15, "kv": 5},
}
VISION = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "image_size": 512,
    "patch_size": 16,
}
VOCAB = 49_280


def smolvlm_config(size: str, image_token_id: int) -> object:
    """The real SmolVLM-256M/-500M shape (Idefics3), for random-weight models of it."""
    from transformers import Idefics3Config

    s = SIZES[size]
    return Idefics3Config(
        vision_config=VISION,
        text_config={
            "model_type": "llama",
            "vocab_size": VOCAB,
            "hidden_size": s["hidden_size"],
            "intermediate_size": s["intermediate_size"],
            "num_hidden_layers": s["num_hidden_layers"],
            "num_attention_heads": s["heads"],
            "num_key_value_heads": s["kv"],
            "max_position_embeddings": 8192,
            "tie_word_embeddings": True,
        },
        scale_factor=4,
        image_token_id=image_token_id,
    )


def build(size: str, directory: Path) -> int:
    import torch
    from tests.support.tiny_vlm import IDEFICS3_TEMPLATE, build_idefics3
    from transformers import (
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    tiny = build_idefics3(directory / "tokenizer")  # its tokenizer, template and special tokens
    processor = Idefics3Processor.from_pretrained(tiny)
    config = smolvlm_config(size, processor.tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    images = Idefics3ImageProcessorPil(size={"longest_edge": 2048}, max_image_size={"longest_edge": 512})
    real = Idefics3Processor(
        image_processor=images, tokenizer=processor.tokenizer, image_seq_len=64, chat_template=IDEFICS3_TEMPLATE
    )
    out = directory / size
    model.save_pretrained(out)
    real.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def frame_jpeg() -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def stamp_decoder(engine: object, stamps: list[float]) -> Any:
    """Record the end of every decoder pass into `stamps`; returns what undoes it."""
    model = getattr(engine, "model", None)
    if model is not None:  # torch: a forward hook (generate's own eos is off for a forced length)
        model.generation_config.eos_token_id = None
        return model.register_forward_hook(lambda *_: stamps.append(time.perf_counter())).remove
    session = engine._decoder  # type: ignore[attr-defined]

    class Stamped:
        def run(self, *args: Any, **kwargs: Any) -> Any:
            out = session.run(*args, **kwargs)
            stamps.append(time.perf_counter())
            return out

    engine._decoder = Stamped()  # type: ignore[attr-defined]
    return lambda: setattr(engine, "_decoder", session)


def run(engine: object, frames: int, tokens: int) -> tuple[float, float, int]:
    from livesight.backends.vlm.prompt import Prompt, Sampling

    jpeg = frame_jpeg()
    parts: list[dict[str, object]] = []
    for i in range(frames):
        parts += [{"type": "text", "text": f"t=+{i * 0.5:.1f}s"}, {"type": "image"}]
    parts.append({"type": "text", "text": "What is happening? Answer in one sentence."})
    prompt = Prompt([{"role": "user", "content": parts}], [jpeg] * frames)
    stamps: list[float] = []  # the end of each forward pass: the first is prefill, the others one token each
    remove = stamp_decoder(engine, stamps)
    eos = engine.eos_ids  # type: ignore[attr-defined]
    engine.eos_ids = ()  # type: ignore[attr-defined]  # forced length: random weights stop anywhere
    started = time.perf_counter()
    try:
        done = engine.generate(prompt, Sampling(max_tokens=tokens), lambda _: None, lambda: False)  # type: ignore[attr-defined]
    finally:
        remove()
        engine.eos_ids = eos  # type: ignore[attr-defined]
    first, last = stamps[0], stamps[-1]
    rate = (len(stamps) - 1) / (last - first) if len(stamps) > 1 else float("nan")
    return first - started, rate, done.prompt_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="256m,500m")
    parser.add_argument("--tokens", type=int, default=30)
    parser.add_argument("--threads", type=int, default=max(1, len(os.sched_getaffinity(0)) - 1))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--frames", default="1,8", help="frame counts to time, e.g. 1 or 1,8")
    parser.add_argument("--runtimes", default="transformers", help="transformers, onnxruntime or both")
    parser.add_argument(
        "--onnx-variants", default="fp32", help="fp32 and/or int8 (int8: quantized here from the fp32 export)"
    )
    args = parser.parse_args()
    import onnxruntime
    import torch

    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.models.split(","):
            params = build(size, Path(tmp))
            print(f"SmolVLM-{size} shape: {params / 1e6:.0f} M parameters")
            for runtime in args.runtimes.split(","):
                for variant in args.onnx_variants.split(",") if runtime == "onnxruntime" else ["fp32"]:
                    measure(Path(tmp) / size, runtime, variant, args)


def measure(directory: Path, runtime: str, variant: str, args: Any) -> None:
    import torch

    if runtime == "onnxruntime":
        from tests.support.onnx_export import export_smolvlm, quantize_int8

        from livesight.backends.vlm.engine_onnx import OnnxEngine

        if not (directory / "onnx").is_dir():
            started = time.perf_counter()
            export_smolvlm(directory)
            print(f"  ONNX export {time.perf_counter() - started:.0f} s")
        if variant == "int8" and not (directory / "onnx" / "decoder_model_merged_int8.onnx").is_file():
            quantize_int8(directory)
        graphs = sorted((directory / "onnx").glob(f"*{'_int8' if variant == 'int8' else ''}.onnx"))
        graphs = [p for p in graphs if variant == "int8" or "_int8" not in p.name]
        print("  " + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.0f} MB" for p in graphs))
        engine: object = OnnxEngine(directory, threads=args.threads, variant=variant)  # type: ignore[arg-type]
    else:
        from livesight.backends.vlm.engine import Engine

        engine = Engine(directory, device="cpu", threads=args.threads)
    torch.set_num_threads(args.threads)
    run(engine, 1, 2)  # warm-up
    print(f"  {runtime}{f' {variant}' if runtime == 'onnxruntime' else ''}:")
    for frames in (int(n) for n in args.frames.split(",")):
        results = [run(engine, frames, args.tokens) for _ in range(args.runs)]
        ttft = statistics.median(r[0] for r in results)
        rate = statistics.median(r[1] for r in results)
        print(
            f"    {frames} frame(s) 1280x720, {results[0][2]} prompt tokens: time to first token "
            f"{ttft:.2f} s, decode {rate:.1f} tokens/s, {args.tokens} tokens in "
            f"{ttft + (args.tokens - 1) / rate:.2f} s"
        )
    print(f"    load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
