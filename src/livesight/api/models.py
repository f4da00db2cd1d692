"""GET /models (CONTRACT §7): no auth. `ready` only when the backend answered a health probe."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from livesight.api.schemas import DownloadProgress, ModelCapabilities, ModelCard, ModelList, ReplicaCard
from livesight.backends.base import Preparing, Replicated
from livesight.backends.registry import ModelEntry, ModelRegistry


def build_router(models: ModelRegistry) -> APIRouter:
    router = APIRouter(tags=["models"])

    @router.get("/models", response_model=ModelList, summary="List models")
    async def list_models() -> ModelList:
        entries = await models.refresh()
        return ModelList(
            data=[
                ModelCard(
                    id=entry.id,
                    created=entry.created,
                    owned_by=entry.config.owned_by
                    or ("livesight" if entry.config.backend == "builtin" else "upstream"),
                    status=_status(entry),
                    capabilities=ModelCapabilities(
                        image=entry.config.image, video=entry.config.video, max_frames=entry.config.max_frames
                    ),
                    backend=entry.config.backend,
                    download=_download(entry),
                    replicas=_replicas(entry),
                )
                for entry in entries
            ]
        )

    return router


Status = Literal["ready", "unavailable", "not downloaded", "downloading", "downloaded", "loading"]
_STATUSES: dict[str, Status] = {s: s for s in ("ready", "not downloaded", "downloading", "downloaded", "loading")}


def _status(entry: ModelEntry) -> Status:
    return _STATUSES.get(entry.status, "unavailable")


def _download(entry: ModelEntry) -> DownloadProgress | None:
    backend = entry.backend
    if not isinstance(backend, Preparing) or entry.status != "downloading" or backend.progress is None:
        return None
    p = backend.progress
    return DownloadProgress(file=p.file, done_bytes=p.done, total_bytes=p.total, speed_bps=p.speed_bps, eta_s=p.eta_s)


def _replicas(entry: ModelEntry) -> list[ReplicaCard] | None:
    if not isinstance(entry.backend, Replicated):
        return None
    return [
        ReplicaCard(
            name=r.name,
            status=r.state,
            in_flight=r.in_flight,
            down_for_s=None if r.down_for_s is None else round(r.down_for_s, 3),
            last_error=r.last_error,
        )
        for r in entry.backend.replica_views()
    ]
