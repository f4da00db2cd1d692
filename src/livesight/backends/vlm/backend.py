"""`VlmBackend`: one in-process vision-language model behind an id, from weights on disk to streamed answers.

States (`state`, shown by GET /v1/models): `not downloaded` → (first request, `auto_pull_models`)
`downloading` (with `progress`: bytes, speed, ETA) → `loading` → `ready`; `unavailable` when the extra
is not installed or a pull or load failed (`not_ready_reason` says why and what to do; a failure is
retried by the first request `RETRY_S` after it). While downloading, a request gets 503 `model_loading`
with `Retry-After` and the progress in its message; while loading (seconds) it waits.

Work runs off the event loop: pulls on their own thread, loading and generation on one worker thread
(one model, one answer at a time; torch uses `vlm_threads` threads inside it). At most `queue_limit`
requests wait behind the running one; the next gets 503 `model_busy` with `Retry-After`, not a backlog.
A stream's tokens cross from the worker to the loop through an asyncio queue; a client that leaves
sets the cancel flag, which generation checks after every token; an answer still running `timeout_s`
after it started stops there with finish_reason `length` (as if it had reached max_tokens).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from livesight.backends.base import Chunk
from livesight.backends.hub import FileSelection
from livesight.backends.request import ChatRequest
from livesight.backends.vlm.catalog import install_hint, missing_modules
from livesight.backends.vlm.files import choose_runtime, selection
from livesight.backends.vlm.prompt import Generated, Prompt, Sampling, build_prompt, sampling_of
from livesight.backends.weights import Progress, WeightStore, format_bytes, local_paths
from livesight.core.clock import Clock
from livesight.core.errors import LivesightError, ModelBusy, ModelFailed, ModelLoading, ModelNotReady
from livesight.core.jsontypes import JsonObject
from livesight.settings import ModelConfig

log = logging.getLogger("livesight.models")
RETRY_S = 30.0
DOWNLOAD_RETRY_AFTER_S = 5


class Engine(Protocol):
    def generate(
        self, prompt: Prompt, sampling: Sampling, emit: Callable[[str], None], cancelled: Callable[[], bool]
    ) -> Generated: ...


EngineFactory = Callable[[Path, ModelConfig, int | None], Engine]


def default_engine_factory(directory: Path, config: ModelConfig, threads: int | None) -> Engine:
    """The runtime `config.runtime` names, or for "auto" the one its files suit (`files.choose_runtime`);
    its modules are imported only now (torch takes ~2–3 s and most of the memory)."""
    runtime = choose_runtime(config.runtime, config.device, local_paths(directory), config.onnx_variant)
    missing = missing_modules(runtime)
    if missing:
        raise ModelNotReady(
            f"model {config.id} runs on {runtime}, which is not installed ({', '.join(missing)}); "
            f"run {install_hint(runtime)}"
        )
    if runtime == "onnxruntime":
        onnx = importlib.import_module("livesight.backends.vlm.engine_onnx")
        engine: Engine = onnx.OnnxEngine(directory, threads=threads, variant=config.onnx_variant)
    else:
        module = importlib.import_module("livesight.backends.vlm.engine")
        engine = module.Engine(directory, device=config.device, threads=threads)
    log.info("model %s runs on %s", config.id, runtime)
    return engine


class VlmBackend:
    probe_before_use = False  # it makes itself ready on first use (pull, load)

    def __init__(
        self,
        config: ModelConfig,
        *,
        clock: Clock,
        weights: WeightStore | None,
        auto_pull: bool = True,
        threads: int | None = None,
        factory: EngineFactory = default_engine_factory,
    ) -> None:
        self.config = config
        self._clock = clock
        self._store = weights
        self._auto_pull = auto_pull
        self._threads = threads
        self._factory = factory
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livesight-vlm")
        self._puller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livesight-pull")
        self._engine: Engine | None = None
        self._preparing: asyncio.Future[None] | None = None
        self._failed_at: float | None = None
        self._admitted = 0  # running + waiting
        self._last_answer_s = 1.0
        self.state = "not downloaded"
        self.progress: Progress | None = None
        self.error: str | None = None
        missing = missing_modules(config.runtime)
        if missing:
            self.state = "unavailable"
            self.error = (
                f"the in-process model runtime is not installed ({', '.join(missing)} missing); "
                f"run {install_hint(config.runtime)}"
            )
        elif self._directory() is not None:
            self.state = "downloaded"

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def not_ready_reason(self) -> str | None:
        if self._engine is not None:
            return None
        if self.error:
            return self.error
        if self.state == "downloading":
            return f"its weights are downloading ({self._progress_text()})"
        if self.state == "not downloaded":
            return self._not_here() or "its weights are not downloaded yet: its first request downloads them"
        return "it is still loading"

    def start(self) -> None:
        """At server start: say when the extra is missing; load a model whose weights are here already."""
        if self.error:
            log.warning("model %s is listed but cannot run: %s", self.config.id, self.error)
        elif self.state == "downloaded":
            self._begin()

    async def probe(self) -> bool:
        return self.ready

    async def aclose(self) -> None:
        if self._preparing is not None and not self._preparing.done():
            self._preparing.cancel()
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._puller.shutdown(wait=False, cancel_futures=True)

    # --- getting ready ------------------------------------------------------------------------------

    def _directory(self) -> Path | None:
        """Where the weights are: `weights` as a directory, or its pulled copy once every file is verified."""
        name = self.config.weights
        if name is None:
            return None
        if _is_path(name):
            path = Path(name).expanduser()
            return path if path.is_dir() else None
        found = self._store.find(name) if self._store is not None else None
        return found.path if found is not None and found.has(self._files(found.listed)) else None

    def _files(self, paths: tuple[str, ...]) -> FileSelection:
        """The files of the repository the runtime this model will run on loads (chosen from what the
        repository has: its listing, or the files of a copied-in directory)."""
        variant = self.config.onnx_variant
        return selection(choose_runtime(self.config.runtime, self.config.device, paths, variant), variant, paths)

    def _begin(self) -> None:
        if self._preparing is None:
            self._preparing = asyncio.ensure_future(self._prepare())

    async def _prepare(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            directory = self._directory()
            if directory is None:
                directory = await self._pull(loop)
            self.state = "loading"
            started = time.perf_counter()
            self._engine = await loop.run_in_executor(
                self._worker, self._factory, directory, self.config, self._threads
            )
            self.state, self.error = "ready", None
            log.info("model %s loaded from %s in %.1f s", self.config.id, directory, time.perf_counter() - started)
        except Exception as exc:
            self.state, self.error = "unavailable", str(exc) or type(exc).__name__
            self._failed_at = time.monotonic()
            log.warning("model %s is unavailable: %s", self.config.id, self.error)

    def _not_here(self) -> str | None:
        """Why the weights cannot come by themselves (None: the first request pulls them)."""
        repo = self.config.weights or ""
        if _is_path(repo):
            return f"its weights directory {repo} does not exist"
        if self._store is not None and self._auto_pull:
            return None
        where = self._store.model_dir(repo) if self._store is not None else "<data_dir>/models"
        return (
            f"its weights are not here: run `livesight models pull {repo}` (or copy the files of {repo} into {where})"
        )

    async def _pull(self, loop: asyncio.AbstractEventLoop) -> Path:
        repo = self.config.weights or ""
        why = self._not_here()
        if why is not None or self._store is None:
            raise ModelNotReady(f"model {self.config.id}: {why}")
        self.state = "downloading"
        log.info("model %s: downloading %s into %s", self.config.id, repo, self._store.root)
        store = self._store

        def progress(p: Progress) -> None:
            self.progress = p

        pull = functools.partial(store.pull, repo, self.config.revision, progress, select=self._files)
        model = await loop.run_in_executor(self._puller, pull)
        return model.path

    async def _ensure(self) -> Engine:
        if self._engine is not None:
            return self._engine
        failed = self._failed_at is not None and self._preparing is not None and self._preparing.done()
        since = time.monotonic() - self._failed_at if self._failed_at is not None else 0.0
        if failed and since >= RETRY_S:  # try again (e.g. back online)
            self._preparing, self.error, self.progress = None, None, None
            self.state = "downloaded" if self._directory() is not None else "not downloaded"
        elif self.error:
            wait = math.ceil(RETRY_S - since) if failed else None
            raise ModelNotReady(f"model {self.config.id} is not ready: {self.error}", retry_after_s=wait)
        if self.state == "not downloaded" and (why := self._not_here()) is not None:
            raise ModelNotReady(f"model {self.config.id} is not ready: {why}")
        self._begin()
        assert self._preparing is not None
        if self.state in ("not downloaded", "downloading"):
            raise ModelLoading(
                f"model {self.config.id} is downloading its weights ({self.config.weights}): "
                f"{self._progress_text()}; retry shortly (GET /v1/models shows the progress)",
                retry_after_s=DOWNLOAD_RETRY_AFTER_S,
            )
        await asyncio.shield(self._preparing)
        if self._engine is None:
            raise ModelNotReady(f"model {self.config.id} is not ready: {self.error}")
        return self._engine

    def _progress_text(self) -> str:
        p = self.progress
        if p is None:
            return "starting"
        share = f" ({p.done * 100 // p.total}%)" if p.total else ""
        eta = f", about {math.ceil(p.eta_s)} s left" if p.eta_s is not None else ""
        speed = f" at {format_bytes(p.speed_bps)}/s"
        return f"{format_bytes(p.done)} of {format_bytes(p.total)}{share}{speed}{eta}"

    # --- answering ----------------------------------------------------------------------------------

    async def _run(self, prompt: Prompt, sampling: Sampling) -> AsyncGenerator[str | Generated, None]:
        """The answer's text pieces as they come, then its `Generated` summary."""
        engine = await self._ensure()
        if sampling.response_format is not None:  # a schema it cannot follow is 400 now, not mid-stream
            importlib.import_module("livesight.backends.vlm.constrain").grammar_for(
                self.config.id, sampling.response_format
            )
        if self._admitted >= 1 + self.config.queue_limit:
            wait = max(1, math.ceil(self._last_answer_s * self._admitted))
            raise ModelBusy(
                f"model {self.config.id} is busy: one answer is running and {self._admitted - 1} are waiting "
                f"(queue_limit {self.config.queue_limit}); retry in about {wait} s",
                retry_after_s=wait,
            )
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[str | None] = asyncio.Queue()
        cancel = threading.Event()

        def emit(piece: str) -> None:
            loop.call_soon_threadsafe(events.put_nowait, piece)

        deadline = time.monotonic() + self.config.timeout_s

        def stop() -> bool:  # the client left, or the answer ran past timeout_s (it ends there: "length")
            return cancel.is_set() or time.monotonic() > deadline

        def generate() -> Generated:
            started = time.perf_counter()
            try:
                return engine.generate(prompt, sampling, emit, stop)
            except LivesightError:
                raise
            except Exception as exc:  # the library's own failure: logged here, a typed 500 for the client
                log.exception("model %s failed to answer", self.config.id)
                raise ModelFailed(f"model {self.config.id} failed to answer ({type(exc).__name__})") from None
            finally:
                self._last_answer_s = time.perf_counter() - started

        self._admitted += 1
        job = loop.run_in_executor(self._worker, generate)

        def finished(_: object) -> None:
            self._admitted -= 1
            events.put_nowait(None)

        job.add_done_callback(finished)
        try:
            while (piece := await events.get()) is not None:
                yield piece
            yield await job
        finally:
            cancel.set()

    async def complete(self, request: ChatRequest) -> JsonObject:
        prompt, sampling = build_prompt(self.config, request), sampling_of(self.config, request.params)
        done: Generated | None = None
        async for event in self._run(prompt, sampling):
            if isinstance(event, Generated):
                done = event
        assert done is not None
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": self._clock.now_ms() // 1000,
            "model": self.config.id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": done.text},
                    "finish_reason": done.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": _usage(done),
        }

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        prompt, sampling = build_prompt(self.config, request), sampling_of(self.config, request.params)
        base: JsonObject = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": self._clock.now_ms() // 1000,
            "model": self.config.id,
        }

        def chunk(delta: JsonObject, finish: str | None = None) -> Chunk:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

        first = True
        events = self._run(prompt, sampling)
        try:
            async for event in events:
                if first:  # only once the model has started: a refusal before that keeps its own status
                    yield chunk({"role": "assistant", "content": ""})
                    first = False
                if isinstance(event, Generated):
                    yield chunk({}, event.finish_reason)
                    if request.include_usage:
                        yield {**base, "choices": [], "usage": _usage(event)}
                elif event:
                    yield chunk({"content": event})
        finally:
            await events.aclose()


def _is_path(weights: str) -> bool:
    """`weights` names a directory (absolute, ~ or ./ relative) rather than a Hugging Face model id."""
    return weights.startswith(("/", "~", "."))


def _usage(done: Generated) -> JsonObject:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }
