"""LiveKit access tokens for publishers and viewers (CONTRACT §8, §9): minted with `livekit-api`, HS256.

A publish token lets one identity join the room named after the stream and publish video only; it
cannot subscribe or publish data. A viewer token (`POST /streams/{id}/viewer-token`) lets a fresh
identity join that room and subscribe only: no publish, no data, hidden from other participants, 300 s.
Neither is of any use for HTTP calls (different secret and shape). A token that grants both publish
and subscribe (not minted here) is treated as a publisher's: the endpoint never sends media to one.
"""

from __future__ import annotations

import datetime
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jwt
from livekit import api

from livesight.core.errors import TokenRejected

PUBLISHER_IDENTITY = "publisher"
VIEWER_TTL_SECONDS = 300  # Overshoot's viewer tokens live 300 s


@dataclass(frozen=True, slots=True)
class Grant:
    identity: str
    room: str
    name: str
    role: Literal["publisher", "viewer"]


def load_or_create_secret(path: Path) -> str:
    """The embedded endpoint's signing secret, generated once and kept (0600) so tokens survive restarts."""
    try:
        value = path.read_text().strip()
        if len(value) >= 32:
            return value
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


class TokenIssuer:
    def __init__(self, api_key: str, api_secret: str, ttl_seconds: int) -> None:
        self.api_key = api_key
        self._secret = api_secret
        self.ttl_seconds = ttl_seconds
        self._verifier = api.TokenVerifier(api_key, api_secret, leeway=datetime.timedelta(seconds=10))

    def publish_token(self, stream_id: str) -> str:
        grants = api.VideoGrants(
            room_join=True,
            room=stream_id,
            can_publish=True,
            can_subscribe=False,
            can_publish_data=False,
            can_publish_sources=["camera", "screen_share"],
        )
        return self._mint(PUBLISHER_IDENTITY, "livesight publisher", grants, self.ttl_seconds)

    def viewer_token(self, stream_id: str, *, identity: str | None = None) -> str:
        """A subscribe-only token for the stream's room (a fresh identity, or `identity` on refresh)."""
        grants = api.VideoGrants(
            room_join=True,
            room=stream_id,
            can_publish=False,
            can_subscribe=True,
            can_publish_data=False,
            hidden=True,
        )
        return self._mint(identity or f"viewer-{secrets.token_hex(6)}", "livesight viewer", grants, VIEWER_TTL_SECONDS)

    def _mint(self, identity: str, name: str, grants: api.VideoGrants, ttl_seconds: int) -> str:
        token = api.AccessToken(self.api_key, self._secret).with_identity(identity).with_name(name)
        return token.with_grants(grants).with_ttl(datetime.timedelta(seconds=ttl_seconds)).to_jwt()

    def verify(self, token: str, room: str | None = None) -> Grant:
        """Check signature, expiry, issuer, roomJoin, room and canPublish or canSubscribe; TokenRejected
        otherwise. A token that can publish is a publisher's; one that can only subscribe, a viewer's."""
        try:
            claims = self._verifier.verify(token)
        except jwt.ExpiredSignatureError:
            raise TokenRejected("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("token not valid yet") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("token issued for another API key") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise TokenRejected("invalid token") from None
        video = claims.video
        if video is None or not video.room_join:
            raise TokenRejected("token has no roomJoin grant")
        if not video.room:
            raise TokenRejected("token names no room")
        if room is not None and video.room != room:
            raise TokenRejected("token is for another room")
        if not video.can_publish and not video.can_subscribe:
            raise TokenRejected("token can neither publish nor subscribe")
        if not claims.identity:
            raise TokenRejected("token has no identity")
        role: Literal["publisher", "viewer"] = "publisher" if video.can_publish else "viewer"
        return Grant(identity=claims.identity, room=video.room, name=claims.name or "", role=role)
