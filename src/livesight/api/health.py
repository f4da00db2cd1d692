"""Health: /healthz (process up) and /readyz (ready to serve)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from starlette.responses import JSONResponse

from livesight.api.schemas import DetailError, Health


def build_router(ready: Callable[[], str | None]) -> APIRouter:
    """`ready()` returns None when ready, else the reason it is not."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health, summary="Process is up")
    async def healthz() -> Health:
        return Health(status="ok")

    @router.get(
        "/readyz",
        response_model=Health,
        responses={503: {"model": DetailError, "description": "Not ready yet"}},
        summary="Ready to serve",
    )
    async def readyz() -> Health | JSONResponse:
        reason = ready()
        if reason is not None:
            return JSONResponse({"detail": reason}, status_code=503)
        return Health(status="ok")

    return router
