"""A fake vLLM: a real HTTP server on port 0 that checks what vLLM accepts and answers like it.

Checks (when `validate`): the model name is served; `image_url` data URLs decode as JPEG;
`video_url` `data:video/jpeg;base64,<f1>,<f2>,…` decodes frame by frame and agrees with
`media_io_kwargs.video` (frames_indices: list of ints, one per frame; total_num_frames >= frames),
and `data:video/mp4` decodes with PyAV. Failures answer vLLM's error shape
`{"error": {"message", "type", "param", "code"}}` with its status.

The answer's content is a JSON summary of what it received (`FakeUpstream.summary`), so a test can
assert on what livesight sent. `behaviour` switches: fail_status, delay_s (set back to 0, it releases
the requests waiting), chunk_delay_s, mid_stream_error, hang, body_delay_s (wait before reading the
request body), stream_reply (how a streamed request is answered: "sse", "json" = one complete
chat.completion as application/json, "empty" = an event stream with only [DONE], or any other content
type with an HTML body). Every
request is recorded in `requests`; requests and streams that were cut off by the client are counted
in `cancelled`, and when each cut-off was noticed (time.monotonic()) is appended to `cut_off_at`.

Run standalone for benchmarks: `python -m tests.support.fake_upstream [--no-validate]` prints its URL.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import io
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import simplejpeg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL = "Qwen/Qwen3-VL-8B-Instruct"


_CANNED = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101},
    }
).encode()


class BadRequest(Exception):
    pass


@dataclass
class Behaviour:
    fail_status: int | None = None
    fail_message: str = "simulated failure"
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    mid_stream_error: bool = False
    hang: bool = False
    drop_connection: bool = False  # answer chat with headers, then close the connection mid-body
    omit_usage: bool = False
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    body_delay_s: float = 0.0
    stream_reply: str = "sse"


@dataclass
class FakeUpstream:
    validate: bool = True
    served: tuple[str, ...] = (MODEL,)
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0
    cut_off_at: list[float] = field(default_factory=list)
    base_url: str = ""

    # --- the app ----------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "vllm"} for m in self.served]
        return JSONResponse({"object": "list", "data": data})

    def _cut_off(self) -> None:
        self.cancelled += 1
        self.cut_off_at.append(time.monotonic())

    async def _chat(self, request: Request) -> Response:
        if self.behaviour.body_delay_s:
            await asyncio.sleep(self.behaviour.body_delay_s)
        raw = await request.body()
        if not self.validate:  # zero-latency mode for benchmarks: read the body, answer at once
            return Response(_CANNED, media_type="application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "Invalid JSON body")
        if self.validate:
            self.requests.append(body)
        b = self.behaviour
        if b.drop_connection:
            return StreamingResponse(_broken_body(), media_type="application/json")
        if b.hang:
            await asyncio.sleep(3600)
        if b.delay_s:
            deadline = time.monotonic() + b.delay_s
            while time.monotonic() < deadline and self.behaviour.delay_s:  # delay_s = 0 releases them
                await asyncio.sleep(0.02)
                if await request.is_disconnected():
                    self._cut_off()
                    return Response(status_code=499)
        if b.fail_status is not None:
            return _error(b.fail_status, b.fail_message, headers=b.rate_limit_headers)
        if body.get("model") not in self.served:
            return _error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        try:
            summary = self.summary(body) if self.validate else {"ok": True}
        except BadRequest as exc:
            return _error(400, str(exc))
        if self.validate:
            self.summaries.append(summary)
        content = json.dumps(summary, separators=(",", ":"))
        prompt_tokens = 100
        reply = self.behaviour.stream_reply if body.get("stream") else "json"
        if reply == "empty":
            return Response(b"data: [DONE]\n\n", media_type="text/event-stream")
        if reply not in ("sse", "json"):
            return Response(b"<html><body>a proxy page</body></html>", media_type=reply)
        if reply == "json":
            answer = JSONResponse(
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content, "tool_calls": []},
                            "logprobs": None,
                            "finish_reason": "stop",
                            "stop_reason": None,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "total_tokens": prompt_tokens + 7,
                        "completion_tokens": 7,
                        "prompt_tokens_details": {"cached_tokens": 64},
                    },
                    "prompt_logprobs": None,
                }
            )
            if self.behaviour.omit_usage:  # some engines leave usage out
                data = json.loads(answer.body)
                del data["usage"]
                return JSONResponse(data)
            return answer
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(self._stream(body, content, include_usage), media_type="text/event-stream")

    async def _stream(self, body: dict[str, Any], content: str, include_usage: bool) -> AsyncIterator[bytes]:
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body["model"]}

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            return b"data: " + json.dumps({**base, "choices": choices, **extra}).encode() + b"\n\n"

        try:
            yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            third = max(1, len(content) // 3)
            for i, start in enumerate(range(0, len(content), third)):
                if self.behaviour.chunk_delay_s:
                    await asyncio.sleep(self.behaviour.chunk_delay_s)
                if self.behaviour.mid_stream_error and i == 1:
                    error = {
                        "message": "simulated engine failure",
                        "type": "InternalServerError",
                        "param": None,
                        "code": 500,
                    }
                    yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
                    yield b"data: [DONE]\n\n"
                    return
                piece = content[start : start + third]
                yield event([{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
            yield event(
                [{"index": 0, "delta": {"content": ""}, "logprobs": None, "finish_reason": "stop", "stop_reason": None}]
            )
            if include_usage and not self.behaviour.omit_usage:
                usage = {"prompt_tokens": 100, "total_tokens": 107, "completion_tokens": 7}
                yield event([], usage=usage)
            yield b"data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            self._cut_off()
            raise

    # --- what vLLM would check --------------------------------------------------------------------

    def summary(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list")
        video_kwargs = (body.get("media_io_kwargs") or {}).get("video") or {}
        images: list[list[int]] = []
        shas: list[str] = []
        videos: list[dict[str, Any]] = []
        texts: list[str] = []
        uuids: list[str] = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
                continue
            for part in content or []:
                kind = part.get("type")
                if part.get("uuid"):
                    uuids.append(part["uuid"])
                if kind == "text":
                    texts.append(part["text"])
                elif kind == "image_url":
                    images.append(list(_decode_image(part["image_url"]["url"])))
                    shas.append(_sha(_b64(part["image_url"]["url"].partition(",")[2])))
                elif kind == "video_url":
                    videos.append(_decode_video(part["video_url"]["url"], video_kwargs))
                else:
                    raise BadRequest(f"Unknown part type: {kind}")
        extra = {k: v for k, v in body.items() if k not in ("model", "messages", "stream", "stream_options")}
        return {
            "images": images,
            "image_sha256": shas,
            "videos": videos,
            "texts": texts,
            "uuids": uuids,
            "extra": sorted(extra),
        }


async def _broken_body() -> AsyncIterator[bytes]:
    yield b'{"id": "chatcmpl-'
    raise ConnectionAbortedError("the fake upstream drops this connection on purpose")


def _error(status: int, message: str, kind: str = "BadRequestError", headers: dict[str, str] | None = None) -> Response:
    if status >= 500:
        kind = "InternalServerError"
    elif status == 429:
        kind = "RateLimitError"
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def _b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"Invalid base64 data: {exc}") from None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _jpeg(data: bytes) -> tuple[int, int]:
    try:
        height, width = simplejpeg.decode_jpeg(data).shape[:2]
    except (ValueError, RuntimeError) as exc:
        raise BadRequest(f"Failed to load image: {exc}") from None
    return int(width), int(height)


def _decode_image(url: str) -> tuple[int, int]:
    prefix, sep, data = url.partition(",")
    if not sep or not prefix.startswith("data:image/") or not prefix.endswith(";base64"):
        raise BadRequest(f"Expected a base64 image data URL, got {url[:40]!r}")
    return _jpeg(_b64(data))


def _decode_video(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    prefix, sep, data = url.partition(",")
    if prefix == "data:video/jpeg;base64" and sep:
        frames = data.split(",")
        num_frames = kwargs.get("num_frames", 32)
        if isinstance(num_frames, int) and num_frames > 0:
            frames = frames[:num_frames]
        sizes = [_jpeg(_b64(f)) for f in frames]
        indices = kwargs.get("frames_indices")
        if indices is not None:
            if not isinstance(indices, list) or not all(isinstance(i, int) for i in indices):
                raise BadRequest("frames_indices must be a list of integers")
            if len(indices) != len(frames):
                raise BadRequest(
                    f"frames_indices length ({len(indices)}) must match number of frames sent ({len(frames)})"
                )
        total = kwargs.get("total_num_frames", len(frames))
        if not isinstance(total, int) or total < len(frames):
            raise BadRequest(f"total_num_frames ({total}) must be >= number of frames sent ({len(frames)})")
        return {
            "format": "jpeg",
            "frames": len(frames),
            "sha256": [_sha(_b64(f)) for f in frames],
            "size": list(sizes[0]),
            "fps": kwargs.get("fps", 1),
            "frames_indices": indices if indices is not None else list(range(len(frames))),
        }
    if prefix == "data:video/mp4;base64" and sep:
        try:
            with av.open(io.BytesIO(_b64(data))) as container:
                decoded = list(container.decode(video=0))
        except av.FFmpegError as exc:
            raise BadRequest(f"Failed to decode video: {exc}") from None
        return {
            "format": "mp4",
            "frames": len(decoded),
            "size": [decoded[0].width, decoded[0].height] if decoded else None,
            "times_ms": [round((f.time or 0) * 1000) for f in decoded],
        }
    raise BadRequest(f"Unsupported video URL {url[:40]!r}")


@contextlib.contextmanager
def run_fake_upstream(port: int = 0, **kwargs: Any) -> Iterator[FakeUpstream]:
    """The fake on 127.0.0.1 (port 0: any free port; a given port brings a stopped fake back), in a
    background thread; `base_url` ends in /v1."""
    fake = FakeUpstream(**kwargs)
    config = uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fake-upstream", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("fake upstream did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="A fake vLLM OpenAI-compatible server on port 0.")
    parser.add_argument("--no-validate", action="store_true", help="answer at once without decoding media")
    args = parser.parse_args()
    with run_fake_upstream(validate=not args.no_validate) as fake:
        print(fake.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
