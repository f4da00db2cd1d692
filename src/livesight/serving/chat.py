"""`ChatService`: one chat request, resolve → backend → report, for the HTTP route and for watches.

The route (api/chat.py) authenticates, rate-limits, watches the client and frames SSE; everything
between the validated wire request and the answer's JSON happens here, in order: the model is looked
up and made ready (404 `model_unavailable`, 503 `model_not_ready`), the draft is built (`ovs://` URIs
parsed), resolved against the owner's streams, sent to the backend, and the answer gets its
`overshoot` report. Failures are recorded (metrics, an upstream failure also logged) and raised as
`LivesightError`s.

A streamed request awaits its first chunk before it returns, so an upstream that refuses it still gets
its proper status; if the caller is cancelled meanwhile (the client left) the upstream request is closed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from livesight.backends.base import Backend
from livesight.backends.registry import ModelRegistry
from livesight.backends.request import ChatRequest
from livesight.core.clock import Clock
from livesight.core.errors import InternalError, LivesightError
from livesight.core.jsontypes import JsonObject
from livesight.core.metrics import NULL_RECORDER, ChatRecorder
from livesight.resolve.draft import ChatDraft
from livesight.resolve.request import ChatResolver
from livesight.serving.answer import AnswerStream, Report, aclose, estimated_usage, record_failure
from livesight.serving.build import draft_from
from livesight.serving.protocol import ChatCompletionRequest


@dataclass(slots=True)
class _Prepared:
    backend: Backend
    request: ChatRequest
    report: Report


class ChatService:
    def __init__(
        self, models: ModelRegistry, resolver: ChatResolver, clock: Clock, recorder: ChatRecorder = NULL_RECORDER
    ) -> None:
        self._models = models
        self._resolver = resolver
        self._clock = clock
        self.recorder = recorder

    async def complete(self, body: ChatCompletionRequest, owner: str) -> JsonObject:
        """The whole `chat.completion`, `usage` (estimated if the model gave none) and `overshoot` included."""
        started = time.perf_counter()
        model = "unknown"  # a metrics label: only a configured model id, never what the client typed
        try:
            model = (await self._models.find(body.model)).id
            prepared = await self._prepare(body, owner, model, started)
            upstream_started = time.perf_counter()
            completion = await prepared.backend.complete(prepared.request)
            prepared.report.first_token_ms = (time.perf_counter() - upstream_started) * 1000
            if not isinstance(completion.get("usage"), dict):
                completion["usage"] = estimated_usage(body, completion)
            completion["overshoot"] = prepared.report.overshoot(completion["usage"])
            return completion
        except LivesightError as exc:
            record_failure(self.recorder, model, exc)
            raise

    async def stream(self, body: ChatCompletionRequest, owner: str) -> AnswerStream:
        """The answer as chunks, once the first one has arrived."""
        started = time.perf_counter()
        model = "unknown"
        try:
            model = (await self._models.find(body.model)).id
            prepared = await self._prepare(body, owner, model, started)
            chunks = prepared.backend.stream(prepared.request).__aiter__()
            upstream_started = time.perf_counter()
            try:
                first = await anext(chunks, None)
            except BaseException:
                await aclose(chunks)
                raise
            if first is None:
                await aclose(chunks)
                raise InternalError(f"model {model} ended its stream without sending an answer")
            prepared.report.first_token_ms = (time.perf_counter() - upstream_started) * 1000
            return AnswerStream(first, chunks, prepared.report, prepared.request.include_usage)
        except LivesightError as exc:
            record_failure(self.recorder, model, exc)
            raise

    async def check(self, body: ChatCompletionRequest) -> ChatDraft:
        """What the request would be refused for before any stream is read, without running it: an unknown
        model (404 `model_unavailable`), a bad ovs:// URI or media the model does not take (400)."""
        entry = await self._models.find(body.model)
        draft = draft_from(body)
        draft.check_capabilities(entry.config)
        return draft

    async def _prepare(self, body: ChatCompletionRequest, owner: str, model: str, started: float) -> _Prepared:
        entry = await self._models.get_ready(body.model)
        request = await self._resolver.resolve(draft_from(body), owner, entry.config)
        resolve_ms = (time.perf_counter() - started) * 1000
        newest = request.newest_arrival_ms
        report = Report(
            request,
            model,
            body.thread_id,
            started,
            resolve_ms,
            self._clock.now_ms() - newest if newest is not None else None,
            self.recorder,
        )
        return _Prepared(entry.backend, request, report)
