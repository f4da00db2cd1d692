"""The torch side of the in-process backend: one model loaded from a directory, and `generate`.

Imported only when a model loads (torch and transformers take ~2–3 s to import and most of the memory),
never at server start. Everything here runs on the backend's one worker thread.

- Loading: `AutoProcessor` + `AutoModelForImageTextToText` from the directory (Hugging Face layout),
  float32 on CPU, bfloat16 on CUDA. Processors that need torchvision for their video half (Qwen2-VL,
  Qwen2.5-VL; torchvision is not installed beside the CPU torch) are assembled from the tokenizer and the
  image processor instead, and image tokens are expanded here the way the Qwen processor does.
- Decoding: `model.generate` runs the model and the KV cache; the choice of each token is ours
  (`decode.Picker` behind a logits processor that returns a one-hot row, so generate's own greedy step
  takes it): the grammar mask, temperature, top-p, `seed`. A streamer feeds `decode.TextSink` (text as it
  comes, cut at stop sequences), and `generate` stops at end-of-sequence, a stop sequence, `max_tokens`,
  or when the request was cancelled.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import (
    AutoImageProcessor,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from livesight.backends.vlm.constrain import TokenTable, grammar_for
from livesight.backends.vlm.decode import Picker, TextSink, eos_ids, frame_images
from livesight.backends.vlm.prompt import Generated, Prompt, Sampling

_QWEN_IMAGE = "<|image_pad|>"


class Engine:
    def __init__(self, directory: Path, *, device: str = "auto", threads: int | None = None) -> None:
        # default: the cores less one, which the server's own work (video decode, the event loop) keeps;
        # on the shared 2-core dev VM one thread was 3x faster than two (docs/benchmarks.md)
        torch.set_num_threads(threads or max(1, len(os.sched_getaffinity(0)) - 1))
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(directory, dtype=dtype).to(self.device).eval()
        self._qwen = self.model.config.model_type in ("qwen2_vl", "qwen2_5_vl")
        if self._qwen:
            self.tokenizer = AutoTokenizer.from_pretrained(directory)
            self._images = AutoImageProcessor.from_pretrained(directory)
            self._processor = None
        else:
            self._processor = AutoProcessor.from_pretrained(directory)
            self.tokenizer = self._processor.tokenizer
        self.eos_ids = eos_ids(self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id)
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self._table: TokenTable | None = None

    def table(self) -> TokenTable:
        """The tokenizer as the grammar library sees it (built on the first structured request)."""
        if self._table is None:
            self._table = TokenTable(self.tokenizer, self.vocab_size, self.eos_ids)
        return self._table

    def inputs(self, prompt: Prompt) -> dict[str, torch.Tensor]:
        images = frame_images(prompt)
        if self._processor is not None:
            text = self._processor.apply_chat_template(prompt.turns, add_generation_prompt=True, tokenize=False)
            split = images and self.model.config.model_type in ("idefics3", "smolvlm")
            kwargs: dict[str, object] = {"do_image_splitting": False} if split else {}  # one tile a frame
            batch = self._processor(text=text, images=[images] if images else None, return_tensors="pt", **kwargs)
        else:
            text = self.tokenizer.apply_chat_template(prompt.turns, add_generation_prompt=True, tokenize=False)
            extra: dict[str, torch.Tensor] = {}
            if images:
                extra = dict(self._images(images=images, return_tensors="pt"))
                merge = int(getattr(self._images, "merge_size", 2)) ** 2
                counts = [int(g.prod()) // merge for g in extra["image_grid_thw"]]
                pieces = text.split(_QWEN_IMAGE)
                if len(pieces) != len(counts) + 1:
                    raise ValueError(f"the chat template wrote {len(pieces) - 1} image tokens for {len(counts)} images")
                text = pieces[0] + "".join(_QWEN_IMAGE * n + rest for n, rest in zip(counts, pieces[1:], strict=True))
            batch = {**dict(self.tokenizer(text, return_tensors="pt")), **extra}
        return {k: v.to(self.device) for k, v in dict(batch).items() if isinstance(v, torch.Tensor)}

    def generate(
        self, prompt: Prompt, sampling: Sampling, emit: Callable[[str], None], cancelled: Callable[[], bool]
    ) -> Generated:
        grammar = grammar_for("this model", sampling.response_format)
        inputs = self.inputs(prompt)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        matcher = self.table().matcher(grammar, sampling.max_tokens) if grammar is not None else None
        picker = _Picker(Picker(sampling, matcher))
        sink = _Sink(TextSink(self.tokenizer, sampling.stop, self.eos_ids, emit))
        with torch.inference_mode():
            self.model.generate(
                **inputs,
                max_new_tokens=sampling.max_tokens,
                do_sample=False,
                logits_processor=LogitsProcessorList([picker]),
                stopping_criteria=StoppingCriteriaList([_Until(lambda: sink.text.stopped or cancelled())]),
                streamer=sink,
                eos_token_id=list(self.eos_ids) or None,
                pad_token_id=self.tokenizer.pad_token_id or (self.eos_ids or (0,))[0],
            )
        sink.text.finish()
        finish = "stop" if sink.text.done else "length"
        return Generated(sink.text.text, prompt_tokens, len(sink.text.ids), finish)


class _Picker(LogitsProcessor):  # type: ignore[misc]
    """generate's view of `Picker`: the chosen token as a one-hot row, which generate's greedy step takes."""

    def __init__(self, picker: Picker) -> None:
        self._picker = picker

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        token = self._picker.pick(scores[0].float().cpu().numpy())
        out = torch.full_like(scores, -math.inf)
        out[0, token] = 0.0
        return out


class _Until(StoppingCriteria):  # type: ignore[misc]
    def __init__(self, done: Callable[[], bool]) -> None:
        self._done = done

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self._done(), dtype=torch.bool, device=input_ids.device)


class _Sink(BaseStreamer):  # type: ignore[misc]
    """generate's streamer: the prompt first (skipped), then each step's new ids into a `TextSink`."""

    def __init__(self, text: TextSink) -> None:
        self.text = text
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.text.put(value.reshape(-1).tolist())

    def end(self) -> None:
        pass
