"""Fake local engines on 127.0.0.1, port 0: an Ollama and a llama.cpp `llama-server`.

FakeOllama speaks `GET /api/tags`, `POST /api/show` (`capabilities`, or only `projector_info` like
Ollama before capabilities existed) and the OpenAI-compatible `/v1/models` and `/v1/chat/completions`
of `FakeUpstream` (which checks the data-URL images and answers with a summary of what it got).
FakeLlamaServer speaks `GET /props` (`modalities`) and the same `/v1` routes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fake_hub import serve
from tests.support.fake_upstream import FakeUpstream


@dataclass
class FakeOllama:
    capabilities: dict[str, list[str] | None]  # name → capabilities (None: an old Ollama, see projector)
    projector: set[str] = field(default_factory=set)
    digests: dict[str, str] = field(default_factory=dict)  # name → digest (default 0…0)
    upstream: FakeUpstream = field(default_factory=FakeUpstream)
    asked: list[str] = field(default_factory=list)
    url: str = ""

    def app(self) -> Starlette:
        self.upstream.served = tuple(self.capabilities)
        routes = [Route("/api/tags", self._tags), Route("/api/show", self._show, methods=["POST"])]
        return Starlette(routes=[*routes, *self.upstream.app().routes])

    async def _tags(self, request: Request) -> Response:
        self.asked.append("/api/tags")
        self.upstream.served = tuple(self.capabilities)  # models pulled later are served too
        models = [
            {"name": n, "model": n, "size": 1, "digest": self.digests.get(n, "0" * 64), "details": {}}
            for n in self.capabilities
        ]
        return JSONResponse({"models": models})

    async def _show(self, request: Request) -> Response:
        name = (await request.json()).get("model")
        self.asked.append(f"/api/show {name}")
        if name not in self.capabilities:
            return JSONResponse({"error": f"model '{name}' not found"}, 404)
        show: dict[str, object] = {"modelfile": "", "details": {"family": "x"}, "model_info": {}}
        capabilities = self.capabilities[name]
        if capabilities is not None:
            show["capabilities"] = capabilities
        if name in self.projector:
            show["projector_info"] = {"clip.has_vision_encoder": True}
        return JSONResponse(show)


@dataclass
class FakeLlamaServer:
    model: str = "/models/SmolVLM-500M-Instruct-Q8_0.gguf"
    vision: bool | None = True  # None: a /props without modalities
    upstream: FakeUpstream = field(default_factory=FakeUpstream)
    url: str = ""

    def app(self) -> Starlette:
        self.upstream.served = (self.model,)
        return Starlette(routes=[Route("/props", self._props), *self.upstream.app().routes])

    async def _props(self, request: Request) -> Response:
        props: dict[str, object] = {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1}
        if self.vision is not None:
            props["modalities"] = {"vision": self.vision, "audio": False}
        return JSONResponse(props)


@contextlib.contextmanager
def run_fake_ollama(**kwargs: object) -> Iterator[FakeOllama]:
    fake = FakeOllama(**kwargs)  # type: ignore[arg-type]
    with serve(fake.app(), "fake-ollama") as url:
        fake.url = url
        yield fake


@contextlib.contextmanager
def run_fake_llama_server(**kwargs: object) -> Iterator[FakeLlamaServer]:
    fake = FakeLlamaServer(**kwargs)  # type: ignore[arg-type]
    with serve(fake.app(), "fake-llama-server") as url:
        fake.url = url
        yield fake
