"""Backend `builtin`: `livesight/ocr`, the offline model (no download, no GPU).

It wraps `livesight.backends.ocr.OcrModel`, which reads the text in the referenced frames with
rapidocr and describes what it can measure (size, time, brightness, colours, change between frames).
Loading (~0.5 s) and answering (~0.3 s a 720p frame) are blocking CPU work: both run in a
one-thread executor, so requests queue instead of oversubscribing the cores. The model is `ready`
once loaded; a failed load (e.g. rapidocr missing) leaves it `unavailable` with the reason.

It reads `ovs://` frames and inline `data:image/jpeg` images, never fetches a URL, and answers in
plain text (`response_format: json_object` wraps the answer as `{"answer": ...}`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import importlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Protocol

from livesight.backends.base import Chunk, check_max_images, estimate_tokens
from livesight.backends.imaging import jpeg_size
from livesight.backends.request import ChatRequest, MediaPart, Message, Part, PassPart, message_text
from livesight.core.clock import Clock
from livesight.core.errors import ModelNotReady, RequestInvalid
from livesight.core.jsontypes import JsonObject
from livesight.core.media import MediaFrame, MediaItem
from livesight.settings import ModelConfig

log = logging.getLogger(__name__)
OCR_MODEL_ID = "livesight/ocr"
_JPEG_DATA = "data:image/jpeg;base64,"
_IMAGE_TOKENS = 85  # what one image counts for in `usage` (no tokenizer here)


class AnswerModel(Protocol):
    def load(self) -> None: ...

    def answer(self, question: str, media: Sequence[MediaItem]) -> str: ...


def default_ocr_factory(config: ModelConfig) -> AnswerModel:
    # Imported when the model loads (it pulls in rapidocr and onnxruntime), not at server start.
    ocr = importlib.import_module("livesight.backends.ocr")
    model: AnswerModel = ocr.OcrModel(min_score=config.min_score)
    return model


def builtin_config(model_id: str) -> ModelConfig:
    """The configuration a built-in model has when the config file does not name it.

    `max_frames` is 256 (the default `max_segment_frames`): the OCR model reads text in a few frames
    spread over a segment and only computes cheap statistics (~2 ms a frame) on the rest, so a minute
    at 2 fps or more is fine, and refusing it would only be a limit for its own sake."""
    return ModelConfig(
        id=model_id, backend="builtin", image=True, video=True, max_frames=256, timeout_s=300, owned_by="livesight"
    )


class OcrBackend:
    def __init__(
        self,
        config: ModelConfig,
        *,
        clock: Clock,
        factory: Callable[[ModelConfig], AnswerModel] = default_ocr_factory,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._factory = factory
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="livesight-ocr")
        self._model: AnswerModel | None = None
        self._loading: asyncio.Future[None] | None = None
        self.error: str | None = None

    probe_before_use = False  # loads on first use; a failed load is 503 model_not_ready from _ensure_loaded

    @property
    def ready(self) -> bool:
        return self._model is not None

    @property
    def not_ready_reason(self) -> str | None:
        if self._model is not None:
            return None
        return f"it failed to load ({self.error})" if self.error else "it is still loading"

    def start(self) -> None:
        """Begin loading in the background (idempotent). Call on the event loop."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())

    async def _load(self) -> None:
        def load() -> AnswerModel:
            model = self._factory(self.config)
            model.load()
            return model

        try:
            self._model = await asyncio.get_running_loop().run_in_executor(self._executor, load)
            log.info("built-in model loaded", extra={"model": self.config.id})
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("built-in model %s failed to load: %s", self.config.id, self.error)

    async def probe(self) -> bool:
        self.start()
        return self.ready

    async def aclose(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _ensure_loaded(self) -> AnswerModel:
        self.start()
        assert self._loading is not None
        await asyncio.shield(self._loading)
        if self._model is None:
            raise ModelNotReady(f"model {self.config.id} is configured but not ready: it failed to load ({self.error})")
        return self._model

    async def _answer(self, request: ChatRequest) -> tuple[str, int]:
        _check_options(self.config.id, request.params)
        question, prompt_tokens = _question(request.messages)
        media = [p.item if isinstance(p, MediaPart) else inline_item(self.config.id, p) for p in request.media_parts()]
        check_max_images(self.config, sum(1 for m in media if m.kind == "image"))
        model = await self._ensure_loaded()
        text = await asyncio.get_running_loop().run_in_executor(self._executor, model.answer, question, media)
        if _wants_json(request.params):
            text = json.dumps({"answer": text}, ensure_ascii=False)
        return text, prompt_tokens + _IMAGE_TOKENS * sum(len(m.frames) for m in media)

    async def complete(self, request: ChatRequest) -> JsonObject:
        text, prompt_tokens = await self._answer(request)
        n = _choices(request.params)
        completion_tokens = estimate_tokens(text) * n
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": self._clock.now_ms() // 1000,
            "model": self.config.id,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
                for i in range(n)
            ],
            "usage": _usage(prompt_tokens, completion_tokens),
        }

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        text, prompt_tokens = await self._answer(request)
        n = _choices(request.params)
        base: JsonObject = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": self._clock.now_ms() // 1000,
            "model": self.config.id,
        }

        def chunk(index: int, delta: JsonObject, finish: str | None = None) -> Chunk:
            choice: JsonObject = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
            return {**base, "choices": [choice]}

        for i in range(n):
            yield chunk(i, {"role": "assistant", "content": ""})
            for piece in _pieces(text):
                yield chunk(i, {"content": piece})
            yield chunk(i, {}, "stop")
        if request.include_usage:
            yield {**base, "choices": [], "usage": _usage(prompt_tokens, estimate_tokens(text) * n)}


def _usage(prompt_tokens: int, completion_tokens: int) -> JsonObject:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _choices(params: JsonObject) -> int:
    n = params.get("n")
    return n if isinstance(n, int) and 1 <= n <= 8 else 1


def _pieces(text: str) -> list[str]:
    """The answer cut after each sentence, so a stream shows it sentence by sentence."""
    pieces: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch in ".!?\n" and (i + 1 == len(text) or text[i + 1] in " \n"):
            pieces.append(text[start : i + 1])
            start = i + 1
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _wants_json(params: JsonObject) -> bool:
    fmt = params.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") == "json_object"


def _check_options(model_id: str, params: JsonObject) -> None:
    fmt = params.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        raise RequestInvalid(
            f"model {model_id} cannot follow a JSON schema; use response_format json_object (it answers "
            '{"answer": "..."}) or a model served by an upstream'
        )
    choice = params.get("tool_choice")
    if choice == "required" or isinstance(choice, dict):
        raise RequestInvalid(f"model {model_id} cannot call tools; it answers in text (tool_choice: auto or none)")


def _question(messages: tuple[Message[Part], ...]) -> tuple[str, int]:
    """The last user message's text, and a token estimate of all text in the request."""
    question = ""
    total = 0
    for message in messages:
        text = message_text(message)
        total += estimate_tokens(text) + 4
        if message.role == "user" and text.strip():
            question = text
    return question, total


def inline_item(model_id: str, part: PassPart) -> MediaItem:
    """An inline JPEG data URL as an item; any other inline media is refused (this model fetches nothing)."""
    kind, url = part.kind, part.url or ""
    if kind == "image_url" and url[: len(_JPEG_DATA)].lower() == _JPEG_DATA:
        try:
            jpeg = base64.b64decode(url[len(_JPEG_DATA) :], validate=True)
        except (binascii.Error, ValueError):
            raise RequestInvalid(f"model {model_id}: an image_url data URL is not valid base64") from None
        width, height = jpeg_size(jpeg)
        return MediaItem(kind="image", url=url[:64] + "…", frames=(MediaFrame(jpeg=jpeg, width=width, height=height),))
    raise RequestInvalid(
        f"model {model_id} reads ovs:// frames and segments and inline data:image/jpeg images; it does not fetch "
        f"{kind} {url[:80]}"
    )
