"""The real server on port 0, in a background thread, for integration tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from livesight.api.app import LivesightApp, create_app
from livesight.api.server import server_config
from livesight.core.clock import Clock, FakeClock
from livesight.settings import Settings, load_settings
from livesight.store.keys import SQLiteKeyStore


@dataclass
class LiveServer:
    app: LivesightApp
    base_url: str
    port: int
    clock: Clock
    keys: SQLiteKeyStore

    @property
    def components(self) -> Any:
        return self.app.components

    def new_key(self, name: str = "test") -> str:
        return self.keys.create(name)[1]

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10, **kwargs)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run a callable on the server's event loop thread and return its result."""
        import asyncio

        loop = self._loop
        if asyncio.iscoroutinefunction(fn):
            return asyncio.run_coroutine_threadsafe(fn(*args), loop).result(10)

        async def wrapper() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(10)

    _loop: Any = None


@contextlib.contextmanager
def run_server(
    tmp_path: Path,
    *,
    clock: Clock | None = None,
    host: str = "127.0.0.1",
    create_app_kwargs: dict[str, Any] | None = None,
    access_log: bool = False,
    **overrides: Any,
) -> Iterator[LiveServer]:
    overrides.setdefault("data_dir", tmp_path)
    overrides.setdefault("log_format", "text")
    # Tests must never reach outside: pulled sources may only name loopback and the test namespace (no
    # lookup of any other name) and connect only to loopback and the namespace's 10.77.0.0/24.
    overrides.setdefault("source_allowed_hosts", ["127.0.0.1", "localhost", "10.77.0.1", "10.77.0.2"])
    overrides.setdefault("outbound_allow_cidrs", ["127.0.0.0/8", "::1/128", "10.77.0.0/24"])
    # An Ollama or llama.cpp the developer runs must not add models to every test (tests/api/test_discovery.py
    # turns discovery on against its own fake engine).
    overrides.setdefault("discover_local_engines", False)
    settings: Settings = load_settings(None, host=host, port=0, **overrides)
    clock = clock or FakeClock()
    keys = SQLiteKeyStore(tmp_path / "keys.db")
    app = create_app(settings, clock=clock, keys=keys, **(create_app_kwargs or {}))
    server = uvicorn.Server(server_config(app, settings, access_log=access_log))
    loops: list[Any] = []

    def serve() -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        loops.append(loop)
        loop.run_until_complete(server.serve())
        loop.close()

    thread = threading.Thread(target=serve, name="livesight-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    live = LiveServer(app=app, base_url=f"http://{host}:{port}", port=port, clock=clock, keys=keys)
    live._loop = loops[0]
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(15)
        keys.close()
