"""The torch side of the in-process backend: one model loaded from a directory, and `generate`.

Imported only when a model loads (torch and transformers take ~2–3 s to import and most of the memory),
never at server start. Everything here runs on the backend's one worker thread.

- Loading: `AutoProcessor` + `AutoModelForImageTextToText` from the directory (Hugging Face layout),
  float32 on CPU, bfloat16 on CUDA. Processors that need torchvision for their video half (Qwen2-VL,
  Qwen2.5-VL; torchvision is not installed beside the CPU torch) are assembled from the tokenizer and the
  image processor instead, and image tokens are expanded here the way the Qwen processor does.
- Decoding: `model.generate` runs the model and the KV cache; the choice of each token is ours
  (`_Picker`, a logits processor that returns a one-hot row, so generate's own greedy step takes it):
  the grammar mask (`constrain.py`), temperature, top-p and a per-request `torch.Generator` for `seed`.
  A streamer turns token ids into text as they come, cuts at stop sequences (text that could still
  become one is held back), and `generate` stops at end-of-sequence, a stop sequence, `max_tokens`, or
  when the request was cancelled.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
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

from livesight.backends.vlm.constrain import Matcher, TokenTable, grammar_for
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
        eos = self.model.generation_config.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        self.eos_ids: tuple[int, ...] = tuple(int(i) for i in ids)
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self._table: TokenTable | None = None

    def table(self) -> TokenTable:
        """The tokenizer as the grammar library sees it (built on the first structured request)."""
        if self._table is None:
            self._table = TokenTable(self.tokenizer, self.vocab_size, self.eos_ids)
        return self._table

    def inputs(self, prompt: Prompt) -> dict[str, torch.Tensor]:
        images = [_image(jpeg) for jpeg in prompt.images]
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
        picker = _Picker(sampling, matcher)
        sink = _Sink(self.tokenizer, sampling.stop, self.eos_ids, emit)
        with torch.inference_mode():
            self.model.generate(
                **inputs,
                max_new_tokens=sampling.max_tokens,
                do_sample=False,
                logits_processor=LogitsProcessorList([picker]),
                stopping_criteria=StoppingCriteriaList([_Until(lambda: sink.stopped or cancelled())]),
                streamer=sink,
                eos_token_id=list(self.eos_ids) or None,
                pad_token_id=self.tokenizer.pad_token_id or (self.eos_ids or (0,))[0],
            )
        sink.finish()
        finish = "stop" if sink.stopped or sink.ended else "length"
        return Generated(sink.text, prompt_tokens, len(sink.ids), finish)


def _image(jpeg: bytes) -> Image.Image:
    with Image.open(io.BytesIO(jpeg)) as img:
        return img.convert("RGB")


class _Picker(LogitsProcessor):  # type: ignore[misc]
    """Chooses each token: grammar mask, then greedy or temperature/top-p sampling with its own generator."""

    def __init__(self, sampling: Sampling, matcher: Matcher | None) -> None:
        self._s = sampling
        self._matcher = matcher
        self._started = False
        self._gen: torch.Generator | None = None
        if sampling.temperature:
            self._gen = torch.Generator()
            self._gen.manual_seed(sampling.seed if sampling.seed is not None else torch.seed())

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._matcher is not None:
            if self._started:
                self._matcher.consume(int(input_ids[0, -1]))
            allowed = torch.from_numpy(self._matcher.allowed())
            row = scores[0].float().cpu()
            keep = torch.zeros(row.shape[0], dtype=torch.bool)
            keep[: allowed.shape[0]] = allowed[: row.shape[0]]
            row = row.masked_fill(~keep, -math.inf)
        else:
            row = scores[0].float().cpu()
        self._started = True
        token = self._choose(row)
        out = torch.full_like(scores, -math.inf)
        out[0, token] = 0.0
        return out

    def _choose(self, row: torch.Tensor) -> int:
        temperature = self._s.temperature
        if not temperature or self._gen is None:
            return int(torch.argmax(row))
        probs = torch.softmax(row / temperature, dim=-1)
        top_p = self._s.top_p
        if top_p is not None and top_p < 1:
            ordered, order = torch.sort(probs, descending=True)
            cut = torch.cumsum(ordered, dim=-1) - ordered > top_p
            ordered[cut] = 0
            probs = torch.zeros_like(probs).scatter_(0, order, ordered)
        if not torch.isfinite(probs).all() or float(probs.sum()) <= 0:
            return int(torch.argmax(row))
        return int(torch.multinomial(probs, 1, generator=self._gen))


class _Until(StoppingCriteria):  # type: ignore[misc]
    def __init__(self, done: Callable[[], bool]) -> None:
        self._done = done

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self._done(), dtype=torch.bool, device=input_ids.device)


class _Sink(BaseStreamer):  # type: ignore[misc]
    """Token ids → text pieces for `emit`, cut at the first stop sequence."""

    def __init__(self, tokenizer: object, stops: Sequence[str], eos_ids: Sequence[int], emit: Callable[[str], None]):
        self._tok = tokenizer
        self._stops = tuple(stops)
        self._eos = frozenset(eos_ids)
        self._emit = emit
        self._prompt_seen = False
        self.ids: list[int] = []
        self.text = ""  # what has been emitted
        self.stopped = False  # a stop sequence was reached
        self.ended = False  # end-of-sequence was generated

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        if self.stopped or self.ended:
            return
        for token in value.reshape(-1).tolist():
            self.ids.append(int(token))
            if int(token) in self._eos:
                self.ended = True
                break
        self._advance(final=False)

    def end(self) -> None:
        pass

    def finish(self) -> None:
        if not self.stopped:
            self._advance(final=True)

    def _advance(self, *, final: bool) -> None:
        decoded: str = self._tok.decode(self.ids, skip_special_tokens=True)  # type: ignore[attr-defined]
        for stop in self._stops:
            at = decoded.find(stop, max(0, len(self.text) - len(stop)))
            if at >= 0:
                decoded, self.stopped = decoded[:at], True
        safe = len(decoded)
        if not final and not self.stopped:
            if decoded.endswith("\ufffd"):  # a character cut between tokens
                safe = len(decoded.rstrip("\ufffd"))
            for stop in self._stops:  # text that may still turn into a stop sequence waits
                for k in range(min(len(stop) - 1, safe), 0, -1):
                    if decoded[:safe].endswith(stop[:k]):
                        safe -= k
                        break
        if safe > len(self.text) and decoded[: len(self.text)] == self.text:
            piece = decoded[len(self.text) : safe]
            self.text += piece
            self._emit(piece)
