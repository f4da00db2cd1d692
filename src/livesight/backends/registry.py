"""The model registry: model ids from the config file, each with a backend and capabilities."""

from __future__ import annotations

import time
from dataclasses import dataclass

from livesight.settings import ModelConfig


@dataclass(frozen=True, slots=True)
class ModelEntry:
    config: ModelConfig
    created: int
    status: str  # "ready" | "unavailable"

    @property
    def id(self) -> str:
        return self.config.id


class ModelRegistry:
    def __init__(self, configs: list[ModelConfig]) -> None:
        created = int(time.time())
        seen: set[str] = set()
        self._entries: list[ModelEntry] = []
        for config in configs:
            if config.id in seen:
                raise ValueError(f"model id {config.id!r} is configured twice")
            seen.add(config.id)
            # Backends arrive with the chat issue; until a backend answers its health probe, a
            # configured model is listed as unavailable rather than pretending to be ready.
            self._entries.append(ModelEntry(config=config, created=created, status="unavailable"))

    def list(self) -> list[ModelEntry]:
        return list(self._entries)
