"""Local engines found by themselves: the vision models of an Ollama or llama.cpp server on this machine.

`LocalEngines.discover()` returns one `ModelConfig` per vision-capable model it finds; the registry
(`registry.py`) merges them with the configured ones at each refresh, so they appear in `GET /v1/models`
without configuration and disappear when the engine goes away. A configured `[[models]]` entry (or a
built-in) with the same id always wins.

- **Ollama** (`ollama_url`, default http://127.0.0.1:11434): `GET /api/tags` lists the models,
  `POST /api/show` says what each can do; a model is kept when its `capabilities` contain `"vision"`
  (Ollama before `capabilities` existed: when it has a `projector_info`). Id `ollama/<name>`, served
  through Ollama's OpenAI-compatible API at `{ollama_url}/v1`.
- **llama.cpp** `llama-server` (`llamacpp_url`, default http://127.0.0.1:8080): kept only when `GET /props`
  answers `modalities.vision: true` (a server started with `--mmproj`). That also tells llama-server from
  whatever else may listen on port 8080, a common port: nothing is listed from a server that does not
  say it is llama.cpp with vision. Each id of `GET /v1/models` becomes `llamacpp/<id>` (a file path id
  becomes its file name).

Both engines take images only as data URLs and have no frame-list video, so every discovered model uses
the `frames` profile (one image part per frame, each after a text part with its stream time) and at most
`MAX_FRAMES` frames a segment, as each frame costs a whole image's tokens on a small local context
(configure the id in `[[models]]` to change it). An engine that does not answer within `timeout_s`, or
answers something else, contributes nothing: discovery never fails a request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import PurePath

import httpx

from livesight.core.jsontypes import JsonValue
from livesight.settings import ModelConfig, Settings

log = logging.getLogger("livesight.discovery")

MAX_FRAMES = 8
MAX_MODELS = 100  # per engine: a bound on what one answer can add
TIMEOUT_S = 2.0
LOCAL_TIMEOUT_S = 300.0  # a local engine may load a model from disk on the first request


@dataclass(frozen=True, slots=True)
class LocalEngines:
    ollama_url: str | None = "http://127.0.0.1:11434"
    llamacpp_url: str | None = "http://127.0.0.1:8080"
    timeout_s: float = TIMEOUT_S
    _vision: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)
    """Ollama's answer per `name@digest`: a model's capabilities change only with its digest."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEngines | None:
        if not settings.discover_local_engines or not (settings.ollama_url or settings.llamacpp_url):
            return None
        return cls(_base(settings.ollama_url), _base(settings.llamacpp_url))

    async def discover(self) -> list[ModelConfig]:
        """The vision models the engines list now ([] for an engine that is not there)."""
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
            found = await asyncio.gather(self._ollama(client), self._llamacpp(client))
        return [config for engine in found for config in engine]

    async def _ollama(self, client: httpx.AsyncClient) -> list[ModelConfig]:
        if not self.ollama_url:
            return []
        tags = await _get_json(client, "GET", f"{self.ollama_url}/api/tags")
        models = tags.get("models") if isinstance(tags, dict) else None
        keys = {  # name → name@digest
            name: f"{name}@{m.get('digest')}"
            for m in (models if isinstance(models, list) else [])[:MAX_MODELS]
            if isinstance(m, dict) and isinstance(name := m.get("name"), str)
        }
        names = list(keys)
        unknown = [name for name in names if keys[name] not in self._vision]
        shows = await asyncio.gather(
            *(_get_json(client, "POST", f"{self.ollama_url}/api/show", {"model": name}) for name in unknown)
        )
        for name, show in zip(unknown, shows, strict=True):
            if show is not None:  # an answer to remember (not a failed request)
                self._vision[keys[name]] = _ollama_vision(show)
        if len(self._vision) > 4 * MAX_MODELS:
            self._vision.clear()
        return [
            _config(f"ollama/{name}", name, f"{self.ollama_url}/v1", "ollama")
            for name in names
            if self._vision.get(keys[name])
        ]

    async def _llamacpp(self, client: httpx.AsyncClient) -> list[ModelConfig]:
        if not self.llamacpp_url:
            return []
        props = await _get_json(client, "GET", f"{self.llamacpp_url}/props")
        modalities = props.get("modalities") if isinstance(props, dict) else None
        if not isinstance(modalities, dict) or modalities.get("vision") is not True:
            return []
        listed = await _get_json(client, "GET", f"{self.llamacpp_url}/v1/models")
        ids = _strings(listed.get("data") if isinstance(listed, dict) else None, "id")
        return [
            _config(f"llamacpp/{_short(model)}", model, f"{self.llamacpp_url}/v1", "llama.cpp")
            for model in ids[:MAX_MODELS]
        ]


def _config(model_id: str, upstream: str, base_url: str, owner: str) -> ModelConfig:
    return ModelConfig(
        id=model_id,
        backend="openai",
        base_url=base_url,
        upstream_model=upstream,
        profile="frames",
        image=True,
        video=True,
        max_frames=MAX_FRAMES,
        timeout_s=LOCAL_TIMEOUT_S,
        owned_by=owner,
    )


def _strings(items: JsonValue, key: str) -> list[str]:
    """`item[key]` of each object of a JSON list that has a string there."""
    if not isinstance(items, list):
        return []
    return [v for item in items if isinstance(item, dict) and isinstance(v := item.get(key), str)]


def _ollama_vision(show: JsonValue) -> bool:
    if not isinstance(show, dict):
        return False
    capabilities = show.get("capabilities")
    if isinstance(capabilities, list):
        return "vision" in capabilities
    return bool(show.get("projector_info"))


def _short(model: str) -> str:
    """A llama-server id that is a file path (`/models/smolvlm.gguf`) → its file name."""
    return PurePath(model).name if model.startswith("/") or "\\" in model else model


def _base(url: str | None) -> str | None:
    return url.rstrip("/") if url else None


async def _get_json(client: httpx.AsyncClient, method: str, url: str, body: dict[str, str] | None = None) -> JsonValue:
    """The JSON an engine answers, or None when it is not there or answers something else."""
    try:
        response = await client.request(method, url, json=body)
        if not response.is_success:
            return None
        value: JsonValue = response.json()
        return value
    except (httpx.HTTPError, ValueError) as exc:
        log.debug("local engine discovery: %s %s: %s", method, url, exc)
        return None
