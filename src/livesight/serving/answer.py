"""What a chat answer carries beyond the model's: the `overshoot` report (CONTRACT §6), and a streamed
answer's chunks with that report on the last one.

With `stream_options.include_usage` the last chunk before `[DONE]` carries `usage` and `overshoot`;
without it, `overshoot` rides on the last chunk (no extra chunk with empty `choices`). A tail chunk (one
that finishes a choice or carries usage) is held back one step so that it can be that last chunk.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from livesight.backends.base import Chunk, estimate_tokens
from livesight.backends.request import ChatRequest
from livesight.core.errors import InternalError, LivesightError, UpstreamError
from livesight.core.jsontypes import JsonObject, JsonValue
from livesight.core.metrics import ChatRecorder, ChatTiming
from livesight.serving.protocol import ChatCompletionRequest

log = logging.getLogger("livesight.chat")
_BASE_FIELDS = ("id", "object", "created", "model")


@dataclass(slots=True)
class Report:
    """Builds the `overshoot` object of one request and records its metrics when it is built."""

    request: ChatRequest
    model: str  # a configured model id: the metrics label
    thread_id: str | None
    started: float  # perf_counter() when the request arrived
    resolve_ms: float
    newest_frame_age_ms: int | None
    recorder: ChatRecorder
    first_token_ms: float | None = None

    def overshoot(self, usage: JsonValue) -> JsonObject:
        details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
        tokens = details.get("cached_tokens") if isinstance(details, dict) else None
        cached = tokens if isinstance(tokens, int) else 0
        timing = ChatTiming(
            resolve_ms=round(self.resolve_ms, 3),
            upstream_first_token_ms=round(self.first_token_ms, 3) if self.first_token_ms is not None else None,
            total_ms=round((time.perf_counter() - self.started) * 1000, 3),
            newest_frame_age_ms=self.newest_frame_age_ms,
        )
        frames = self.request.frames_used()
        self.recorder.chat_done(self.model, timing, sum(len(f.frame_indexes) for f in frames))
        return {
            "cache": {"thread_id": self.thread_id, "cache_hit": cached > 0, "cached_input_tokens": cached},
            "frames": [f.wire() for f in frames],
            "timing": {
                "resolve_ms": timing.resolve_ms,
                "upstream_first_token_ms": timing.upstream_first_token_ms,
                "total_ms": timing.total_ms,
                "newest_frame_age_ms": timing.newest_frame_age_ms,
            },
        }

    def failed(self, exc: LivesightError) -> None:
        record_failure(self.recorder, self.model, exc)


def record_failure(recorder: ChatRecorder, model: str, exc: LivesightError) -> None:
    recorder.chat_failed(model, exc)
    if isinstance(exc, UpstreamError):
        log.warning("upstream failed: %s", exc.message, extra={"model": model, "code": exc.code_for_envelope()})


def estimated_usage(body: ChatCompletionRequest, completion: JsonObject) -> JsonObject:
    """`usage` for a completion whose model reported none: 4 characters a token."""
    prompt = sum(
        estimate_tokens(json.dumps(m.model_dump(mode="json", exclude_unset=True).get("content"))) for m in body.messages
    )
    choices = completion.get("choices")
    text = ""
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        text += str(content or "")
    completion_tokens = estimate_tokens(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


class AnswerStream:
    """A streamed answer whose first chunk has arrived. Iterating yields the chunks to send, `overshoot`
    on the last; an error after the start is raised as a `LivesightError` (recorded and logged here; an
    unexpected exception becomes an `InternalError`). `aclose` closes the backend's stream (and with it
    the upstream request)."""

    def __init__(self, first: Chunk, chunks: AsyncIterator[Chunk], report: Report, include_usage: bool) -> None:
        self._first = first
        self._chunks = chunks
        self._report = report
        self._include_usage = include_usage

    async def aclose(self) -> None:
        await aclose(self._chunks)

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        try:
            async for chunk in self._with_report():
                yield chunk
        except LivesightError as exc:
            log.warning("chat stream failed: %s", exc.message)
            self._report.failed(exc)
            raise
        except Exception:
            log.exception("chat stream failed")
            self._report.failed(InternalError("internal error while streaming"))
            raise InternalError("internal error while streaming; see the server log") from None
        finally:
            await self.aclose()

    async def _with_report(self) -> AsyncIterator[Chunk]:
        held: Chunk | None = None  # a tail chunk, kept back so `overshoot` can ride on the last one
        text: list[str] = []
        usage: JsonValue = None
        last: Chunk = self._first
        chunk: Chunk | None = self._first
        while chunk is not None:
            last = chunk
            if chunk.get("usage"):
                usage = chunk["usage"]
            text.extend(_delta_texts(chunk))
            if held is not None:
                yield held
                held = None
            if _is_tail(chunk):
                held = chunk
            else:
                yield chunk
            chunk = await anext(self._chunks, None)
        if self._include_usage and usage is None:
            completion_tokens = estimate_tokens("".join(text))
            usage = {"prompt_tokens": 0, "completion_tokens": completion_tokens, "total_tokens": completion_tokens}
            if held is not None:
                yield held
            held = {**_base(last), "choices": [], "usage": usage}
        if held is None:
            held = {**_base(last), "choices": []}
        held["overshoot"] = self._report.overshoot(usage)
        yield held


def _base(chunk: Chunk) -> JsonObject:
    return {k: chunk[k] for k in _BASE_FIELDS if k in chunk}


def _delta_texts(chunk: Chunk) -> list[str]:
    choices = chunk.get("choices")
    out: list[str] = []
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str):
            out.append(content)
    return out


def _is_tail(chunk: Chunk) -> bool:
    """A chunk that may be the last one: it finishes a choice or carries usage."""
    if chunk.get("usage"):
        return True
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason") for c in choices)


async def aclose(chunks: AsyncIterator[Chunk]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()
