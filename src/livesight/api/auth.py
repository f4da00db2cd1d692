"""API key authentication: `Authorization: Bearer <key>` → the ApiKey (or 401)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from livesight.core.errors import Unauthorized
from livesight.store.keys import ApiKey, KeyStore

bearer = HTTPBearer(auto_error=False, description="An API key (`ovs-…`) from `livesight keys create`.")

Authenticate = Callable[..., Awaitable[ApiKey]]


def make_authenticate(store: KeyStore) -> Authenticate:
    async def authenticate(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiKey:
        if credentials is None or not credentials.credentials:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        key = store.verify(credentials.credentials.strip())
        if key is None:
            raise Unauthorized("invalid or revoked API key")
        return key

    return authenticate
