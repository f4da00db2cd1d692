from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.redis_server import BINARY, RedisServer, redis_server


@pytest.fixture(scope="session")
def redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if BINARY is None:
        pytest.skip("no redis-server binary (scripts/setup-media installs Debian's redis-server as root)")
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis(redis_session: RedisServer) -> Iterator[RedisServer]:
    """The session's redis-server, empty, and running again if a test stopped it."""
    if redis_session.proc is None:
        redis_session.start()
    redis_session.flush()
    yield redis_session
    if redis_session.proc is None:
        redis_session.start()


@pytest.fixture
async def state(redis: RedisServer) -> AsyncIterator[object]:
    from livesight.store.redis_state import ClusterState

    cluster = ClusterState.from_url(redis.url)
    yield cluster
    await cluster.aclose()
