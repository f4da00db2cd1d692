"""GET /models (CONTRACT §7): no auth. `ready` only when the backend answered a health probe."""

from __future__ import annotations

from fastapi import APIRouter

from livesight.api.schemas import ModelCapabilities, ModelCard, ModelList
from livesight.backends.registry import ModelRegistry


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
                    status="ready" if entry.status == "ready" else "unavailable",
                    capabilities=ModelCapabilities(
                        image=entry.config.image, video=entry.config.video, max_frames=entry.config.max_frames
                    ),
                    backend=entry.config.backend,
                )
                for entry in entries
            ]
        )

    return router
