"""The onnxruntime side of the in-process backend: SmolVLM / SmolVLM2 from their published ONNX export, on CPU.

Chosen for these models on a CPU (`files.choose_runtime`) because it is faster there: on the 2-core dev
VM the decoder step ran 1.5–3.5x faster than torch's and the vision encoder about even
(`bench/vlm_onnx.py`, docs/benchmarks.md). It needs no torch: the processor (chat template, tokenizer,
image resize and normalization) comes from transformers, the model from three graphs under `onnx/`
(the layout `tests/support/onnx_export.py` describes):

1. the prompt's token ids → `embed_tokens`; each frame's tile → `vision_encoder`; the image features take
   the place of the `<image>` tokens' embeddings;
2. `decoder_model_merged` on the whole prompt with an empty KV cache, then once per new token with the
   cache it returned (the cache's shapes are read from the graph's inputs);
3. each step's last logits row → `decode.Picker` (grammar mask, sampling), the token → `decode.TextSink`
   (text as it comes, stop sequences). It stops at end-of-sequence, a stop sequence, `max_tokens`, or
   when the request was cancelled (checked after every token).

Threads: one session per graph, `intra_op_num_threads` = the backend's `vlm_threads`, inter-op 1 and
sequential execution (the worker thread runs one answer at a time). `variant` picks the file suffix the
hub uses for a precision (`fp32` none, `q4` `_q4`, …), the same for the three graphs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from transformers import AutoProcessor

from livesight.backends.vlm.constrain import TokenTable, grammar_for
from livesight.backends.vlm.decode import Picker, TextSink, eos_ids, frame_images
from livesight.backends.vlm.files import ONNX_PARTS, suffix
from livesight.backends.vlm.prompt import Generated, Prompt, Sampling
from livesight.settings import OnnxVariant

_PAST = "past_key_values."
Array = npt.NDArray[np.generic]


class OnnxEngine:
    def __init__(self, directory: Path, *, threads: int | None = None, variant: OnnxVariant = "fp32") -> None:
        self.threads = threads or max(1, len(os.sched_getaffinity(0)) - 1)
        paths = {part: directory / "onnx" / f"{part}{suffix(variant)}.onnx" for part in ONNX_PARTS}
        missing = [p.relative_to(directory).as_posix() for p in paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{directory} has no {', '.join(missing)} (the {variant} ONNX export)")
        self.files = tuple(paths.values())  # the graphs loaded
        self._vision = self._session(paths["vision_encoder"])
        self._embed = self._session(paths["embed_tokens"])
        self._decoder = self._session(paths["decoder_model_merged"])
        self._processor = AutoProcessor.from_pretrained(directory)
        self.tokenizer = self._processor.tokenizer
        config = _json(directory / "config.json")
        generation = _json(directory / "generation_config.json")
        text = config.get("text_config")
        text_config = text if isinstance(text, dict) else {}
        image_token = config.get("image_token_id", config.get("image_token_index"))
        self.image_token_id = int(image_token) if isinstance(image_token, int) else None
        self.eos_ids = eos_ids(
            generation.get("eos_token_id", text_config.get("eos_token_id")), self.tokenizer.eos_token_id
        )
        vocab = text_config.get("vocab_size", config.get("vocab_size"))
        self.vocab_size = int(vocab) if isinstance(vocab, int) else len(self.tokenizer)
        inputs = self._decoder.get_inputs()
        self._past = [(i.name, i.shape, _dtype(i.type)) for i in inputs if i.name.startswith(_PAST)]
        self._embeds_type = next(_dtype(i.type) for i in inputs if i.name == "inputs_embeds")
        self._table: TokenTable | None = None

    def _session(self, path: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def table(self) -> TokenTable:
        """The tokenizer as the grammar library sees it (built on the first structured request)."""
        if self._table is None:
            self._table = TokenTable(self.tokenizer, self.vocab_size, self.eos_ids)
        return self._table

    def inputs(self, prompt: Prompt) -> dict[str, Array]:
        images = frame_images(prompt)
        text = self._processor.apply_chat_template(prompt.turns, add_generation_prompt=True, tokenize=False)
        kwargs: dict[str, object] = {"do_image_splitting": False} if images else {}  # one tile a frame
        batch = self._processor(text=text, images=[images] if images else None, return_tensors="np", **kwargs)
        return {k: np.asarray(v) for k, v in dict(batch).items()}

    def prompt_embeddings(self, inputs: dict[str, Array]) -> npt.NDArray[np.float32]:
        """The prompt's embeddings, each frame's image features in place of its `<image>` tokens."""
        ids = inputs["input_ids"].astype(np.int64)
        (embeds,) = self._embed.run(None, {"input_ids": ids})
        if "pixel_values" in inputs and self.image_token_id is not None:
            feeds = {"pixel_values": inputs["pixel_values"].astype(np.float32)}
            if "pixel_attention_mask" in inputs:
                feeds["pixel_attention_mask"] = inputs["pixel_attention_mask"].astype(np.bool_)
            (features,) = self._vision.run(["image_features"], feeds)
            slots = ids == self.image_token_id
            features = features.reshape(-1, features.shape[-1])
            if int(slots.sum()) != features.shape[0]:
                raise ValueError(
                    f"the prompt has {int(slots.sum())} image tokens for {features.shape[0]} image features"
                )
            embeds[slots] = features.astype(embeds.dtype)
        return np.asarray(embeds, dtype=np.float32)

    def prefill_logits(self, embeds: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The logits of every prompt position (what the first decoder run computes)."""
        logits, *_ = self._decoder.run(None, self._feeds(embeds, int(embeds.shape[1]), self._empty_cache()))
        return np.asarray(logits, dtype=np.float32)

    def _empty_cache(self) -> dict[str, Array]:
        return {name: np.zeros(_cache_shape(shape), dtype=dtype) for name, shape, dtype in self._past}

    def _feeds(self, embeds: npt.NDArray[np.float32], total: int, past: dict[str, Array]) -> dict[str, Array]:
        """The decoder's inputs for `embeds`, the newest of `total` tokens (all when the cache is empty)."""
        length = int(embeds.shape[1])
        return {
            "inputs_embeds": embeds.astype(self._embeds_type, copy=False),
            "attention_mask": np.ones((1, total), dtype=np.int64),
            "position_ids": np.arange(total - length, total, dtype=np.int64)[None],
        } | past

    def generate(
        self, prompt: Prompt, sampling: Sampling, emit: Callable[[str], None], cancelled: Callable[[], bool]
    ) -> Generated:
        grammar = grammar_for("this model", sampling.response_format)
        inputs = self.inputs(prompt)
        embeds = self.prompt_embeddings(inputs)
        length = int(embeds.shape[1])
        matcher = self.table().matcher(grammar, sampling.max_tokens) if grammar is not None else None
        picker = Picker(sampling, matcher)
        sink = TextSink(self.tokenizer, sampling.stop, self.eos_ids, emit)
        past, total = self._empty_cache(), length
        for _ in range(sampling.max_tokens):
            logits, *present = self._decoder.run(None, self._feeds(embeds, total, past))
            token = picker.pick(logits[0, -1])
            sink.put((token,))
            if sink.done or cancelled():
                break
            past = {name: value for (name, _, _), value in zip(self._past, present, strict=True)}
            (embeds,) = self._embed.run(None, {"input_ids": np.array([[token]], dtype=np.int64)})
            total += 1
        sink.finish()
        return Generated(sink.text, length, len(sink.ids), "stop" if sink.done else "length")


def _dtype(onnx_type: str) -> type[np.floating]:
    """The numpy type of a graph input (`tensor(float16)` for the fp16 exports, float32 otherwise)."""
    return np.float16 if "float16" in onnx_type else np.float32


def _cache_shape(shape: list[int | str | None]) -> tuple[int, ...]:
    """An empty KV cache for one layer: [batch 1, kv heads, 0 tokens, head dim] from the graph's input shape."""
    if len(shape) != 4 or not isinstance(shape[1], int) or not isinstance(shape[3], int):
        raise ValueError(f"unexpected KV cache input shape {shape} (want [batch, heads, past, head_dim])")
    return (1, shape[1], 0, shape[3])


def _json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}
