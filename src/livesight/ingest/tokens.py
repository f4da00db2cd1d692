"""LiveKit access tokens for publishers (CONTRACT §8): minted with `livekit-api`, HS256.

A publish token lets one identity join the room named after the stream and publish video only;
it cannot subscribe or publish data, and it is useless for HTTP calls (different secret and shape).
"""

from __future__ import annotations

import datetime
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import jwt
from livekit import api

from livesight.core.errors import TokenRejected

PUBLISHER_IDENTITY = "publisher"


@dataclass(frozen=True, slots=True)
class PublishGrant:
    identity: str
    room: str
    name: str


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
        return (
            api.AccessToken(self.api_key, self._secret)
            .with_identity(PUBLISHER_IDENTITY)
            .with_name("livesight publisher")
            .with_grants(grants)
            .with_ttl(datetime.timedelta(seconds=self.ttl_seconds))
            .to_jwt()
        )

    def verify_publisher(self, token: str, room: str | None = None) -> PublishGrant:
        """Check signature, expiry, issuer, roomJoin, room and canPublish; TokenRejected otherwise."""
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
        if not video.can_publish:
            raise TokenRejected("token cannot publish")
        if not claims.identity:
            raise TokenRejected("token has no identity")
        return PublishGrant(identity=claims.identity, room=video.room, name=claims.name or "")
