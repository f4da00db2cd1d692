"""What both runtimes (`engine.py` on torch, `engine_onnx.py` on onnxruntime) do around the model: no torch here.

- `Picker` chooses each token from one row of logits (numpy): the grammar mask (`constrain.py`), then
  greedy, or temperature / top-p sampling with the request's own `numpy.random.Generator` (`seed` makes
  it repeatable).
- `TextSink` turns token ids into text pieces as they come, cuts at stop sequences (text that could still
  become one is held back) and notices end-of-sequence.
- `eos_ids` and `frame_images` are the small pieces of loading and prompting both need.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from livesight.backends.vlm.constrain import Matcher
from livesight.backends.vlm.prompt import Prompt, Sampling

Logits = npt.NDArray[np.float32]


class Picker:
    """Chooses each token. Call `pick` once per step with that step's logits; the token chosen at a step is
    fed to the grammar matcher at the next call (a token is only final once the runtime has used it)."""

    def __init__(self, sampling: Sampling, matcher: Matcher | None) -> None:
        self._s = sampling
        self._matcher = matcher
        self._last: int | None = None
        self._rng = np.random.default_rng(sampling.seed) if sampling.temperature else None

    def pick(self, logits: Logits) -> int:
        row = np.asarray(logits, dtype=np.float32).reshape(-1)
        if self._matcher is not None:
            if self._last is not None:
                self._matcher.consume(self._last)
            allowed = self._matcher.allowed()
            keep = np.zeros(row.shape[0], dtype=bool)
            n = min(row.shape[0], allowed.shape[0])
            keep[:n] = allowed[:n]
            row = np.where(keep, row, -np.inf).astype(np.float32)
        token = self._choose(row)
        self._last = token
        return token

    def _choose(self, row: Logits) -> int:
        temperature = self._s.temperature
        if not temperature or self._rng is None:
            return int(np.argmax(row))
        finite = np.isfinite(row)
        if not finite.any():
            return int(np.argmax(row))
        z = np.where(finite, row / temperature, -np.inf)
        probs = np.exp(z - z[finite].max())
        top_p = self._s.top_p
        if top_p is not None and top_p < 1:
            order = np.argsort(-probs, kind="stable")
            ordered = probs[order] / probs.sum()
            cut = np.cumsum(ordered) - ordered > top_p
            probs = probs.copy()
            probs[order[cut]] = 0.0
        total = float(probs.sum())
        if not np.isfinite(total) or total <= 0:
            return int(np.argmax(row))
        return int(self._rng.choice(probs.shape[0], p=probs / total))


class TextSink:
    """Token ids → text pieces for `emit`, cut at the first stop sequence. `put` takes each step's new ids;
    `finish` flushes what was held back."""

    def __init__(
        self, tokenizer: object, stops: Sequence[str], eos_ids: Sequence[int], emit: Callable[[str], None]
    ) -> None:
        self._tok = tokenizer
        self._stops = tuple(stops)
        self._eos = frozenset(eos_ids)
        self._emit = emit
        self.ids: list[int] = []
        self.text = ""  # what has been emitted
        self.stopped = False  # a stop sequence was reached
        self.ended = False  # end-of-sequence was generated

    @property
    def done(self) -> bool:
        return self.stopped or self.ended

    def put(self, tokens: Iterable[int]) -> None:
        if self.done:
            return
        for token in tokens:
            self.ids.append(int(token))
            if int(token) in self._eos:
                self.ended = True
                break
        self._advance(final=False)

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


def eos_ids(generation_eos: object, tokenizer_eos: int | None) -> tuple[int, ...]:
    """The ids that end an answer: the generation config's (one or a list) and the tokenizer's."""
    ids = [generation_eos] if isinstance(generation_eos, int) else list(generation_eos or [])  # type: ignore[call-overload]
    if tokenizer_eos is not None and tokenizer_eos not in ids:
        ids.append(tokenizer_eos)
    return tuple(int(i) for i in ids)


def frame_images(prompt: Prompt) -> list[Image.Image]:
    return [_image(jpeg) for jpeg in prompt.images]


def _image(jpeg: bytes) -> Image.Image:
    with Image.open(io.BytesIO(jpeg)) as img:
        return img.convert("RGB")
