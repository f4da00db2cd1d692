"""What a backend is: something that answers a resolved chat request, whole or as a stream of chunks.

The serving layer hands a backend a `ChatRequest` (`request.py`): typed messages whose `ovs://` parts
were resolved into `MediaPart`s; the backend renders them the way its model accepts and returns
OpenAI `chat.completion` / `chat.completion.chunk` objects as JSON objects. Errors are raised
as `livesight.core.errors` classes (upstream failures as `UpstreamError` subclasses).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from livesight.backends.request import ChatRequest
from livesight.backends.weights import Progress
from livesight.core.errors import TooManyImages
from livesight.core.jsontypes import JsonObject
from livesight.settings import ModelConfig

Chunk = JsonObject  # one `chat.completion.chunk`


class Backend(Protocol):
    """A model behind an id. A new kind of backend is one class with this lifecycle plus one entry in
    `backends.registry.BACKENDS`; nothing else switches on concrete backend types."""

    config: ModelConfig
    probe_before_use: bool
    """True: the registry health-probes it (coalesced, reused for the probe TTL) before each request
    and answers 503 `model_not_ready` while it fails. False: it makes itself ready on first use
    (built-in models load then) and raises `ModelNotReady` itself if it cannot."""

    def start(self) -> None:
        """Begin the background work that makes it ready (a built-in model's load); idempotent, on the
        event loop. Backends with nothing to prepare do nothing."""
        ...

    @property
    def ready(self) -> bool:
        """True when the last health probe (or the load of a built-in model) succeeded."""
        ...

    @property
    def not_ready_reason(self) -> str | None:
        """Why it is not ready, in words for the client (None when ready)."""
        ...

    async def probe(self) -> bool:
        """Check that the model can answer now (cheap; bounded by a short timeout)."""
        ...

    async def complete(self, request: ChatRequest) -> JsonObject:
        """A whole `chat.completion`."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """`chat.completion.chunk`s; closing the iterator early cancels the work upstream."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Preparing(Protocol):
    """A backend that gets its model ready itself (an in-process model: weights pulled, then loaded).
    GET /models shows its `state` and, while it downloads, its `progress`."""

    state: str  # "not downloaded" | "downloading" | "downloaded" | "loading" | "ready" | "unavailable"
    progress: Progress | None


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """One upstream replica as GET /models shows it: no URL beyond its name, never a key."""

    name: str
    state: Literal["up", "down"]
    in_flight: int  # requests it is answering now
    down_for_s: float | None  # while down: seconds until it gets requests again
    last_error: str | None  # why it was last marked down


@runtime_checkable
class Replicated(Protocol):
    """A backend that spreads a model over several upstream replicas (`backends/replicas.py`)."""

    def replica_views(self) -> list[ReplicaView]: ...


def check_max_images(config: ModelConfig, count: int) -> None:
    """400 `too_many_images` when the model declares `max_images` and the request would send more."""
    if config.max_images is not None and count > config.max_images:
        raise TooManyImages(
            f"this request would send {count} images to model {config.id}, which takes at most {config.max_images} "
            "per request (max_images; in the frames profile each frame of a segment is one image): send fewer"
        )


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token) where no tokenizer reports one."""
    return (len(text) + 3) // 4
