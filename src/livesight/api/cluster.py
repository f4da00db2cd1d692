"""`GET /v1/cluster` (admin): the nodes sharing this Redis, their load and stream counts.

Admin is the smallest notion that is true cluster-wide: an API key whose id is in the
`admin_key_ids` setting (key ids travel with the shared key cache, store/redis_keys.py, so an admin
key made on any node is one on every node configured with its id). Every other valid key gets 403
`admin_required`; no key 401. Without Redis the endpoint still answers, listing this node alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends
from redis.exceptions import RedisError

from livesight.api.auth import Authenticate
from livesight.api.schemas import ClusterNode, ClusterView, DetailError
from livesight.core.errors import AdminRequired, ClusterUnavailable
from livesight.store.keys import ApiKey
from livesight.streams.cluster import ClusterDirectory
from livesight.streams.registry import StreamRegistry

NodesSource = Callable[[], Awaitable[ClusterView]]


def build_router(nodes: NodesSource, authenticate: Authenticate, admin_key_ids: list[str]) -> APIRouter:
    router = APIRouter(tags=["cluster"])
    admins = frozenset(admin_key_ids)

    async def admin(key: ApiKey = Depends(authenticate)) -> ApiKey:
        if key.id not in admins:
            raise AdminRequired("this endpoint needs an admin key (its id in the `admin_key_ids` setting)")
        return key

    @router.get(
        "/cluster",
        response_model=ClusterView,
        responses={
            401: {"model": DetailError, "description": "Missing, unknown or revoked API key"},
            403: {"model": DetailError, "description": "Not an admin key (`admin_key_ids`)"},
            503: {"model": DetailError, "description": "The cluster state (Redis) is unreachable"},
        },
        summary="List the cluster's nodes (admin)",
    )
    async def cluster(key: ApiKey = Depends(admin)) -> ClusterView:
        return await nodes()

    return router


async def cluster_view(shared: ClusterDirectory | None, local: StreamRegistry) -> ClusterView:
    """Every node's last heartbeat (alive: seen within 3 ticks), or this node alone without Redis."""
    if shared is None:
        streams = local.all_active()
        node = ClusterNode(
            node_id="local",
            alive=True,
            last_seen_ms=local.clock.now_ms(),
            streams=len(streams),
            publishers=sum(1 for s in streams if s.publisher.connected),
            retained_frames=local.pool.retained_frames(),
        )
        return ClusterView(node_id="local", redis=False, nodes=[node])
    try:
        beats = await shared.state.nodes()
    except (RedisError, OSError) as exc:
        raise ClusterUnavailable("the cluster state (Redis) is unreachable") from exc
    now = shared.clock.now_ms()
    nodes = [
        ClusterNode(
            node_id=b.node,
            alive=now - b.last_seen_ms <= 3 * shared.config.tick_ms,
            last_seen_ms=b.last_seen_ms,
            streams=_int(b.info.get("streams")),
            publishers=_int(b.info.get("publishers")),
            retained_frames=_int(b.info.get("retained_frames")),
            started_at_ms=_int(b.info.get("started_at_ms")),
            capacity=_int(b.info.get("capacity")) or None,
            draining=b.info.get("draining") is True,
        )
        for b in beats
    ]
    return ClusterView(node_id=shared.node_id, redis=True, nodes=nodes)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


__all__ = ["ClusterNode", "ClusterView", "build_router", "cluster_view"]
