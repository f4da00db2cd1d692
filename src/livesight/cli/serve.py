"""`livesight serve`: run the server (creating the first API key on a fresh install)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from collections.abc import Iterator
from types import FrameType

import uvicorn

from livesight.api.app import LivesightApp, create_app
from livesight.api.server import server_config
from livesight.cli.common import add_config_argument, bind_listener, command, fail, local_base_url, settings_from
from livesight.core.logs import configure
from livesight.settings import Settings
from livesight.store.keys import SQLiteKeyStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the server", description="Run the livesight server.")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, help="port (default 7880)")
    p.add_argument("--redis", metavar="URL", help="share state with other nodes through this Redis (docs/scale-out.md)")
    p.add_argument("--node-id", metavar="ID", help="this node's id in the cluster (default: the host name)")
    p.add_argument("--internal-port", type=int, help="the node-to-node port of a cluster (default 7881; 0: any)")
    add_config_argument(p)
    p.set_defaults(func=run)


def first_key_banner(settings: Settings, store: SQLiteKeyStore) -> str | None:
    """When no key of the user's exists yet (demo keys do not count: `livesight demo` keeps its own),
    create one and return the text that shows it (once)."""
    if store.count(include_demo=False):
        return None
    _, plain = store.create("first key")
    base = local_base_url(settings.host, settings.port)
    return (
        "\nlivesight: created your first API key (shown only this once; "
        f"`{command('keys', 'create')}` makes more):\n\n"
        f"    export LIVESIGHT_API_KEY={plain}\n\n"
        "try it:\n"
        f'    curl -s -X POST {base}/v1/streams -H "Authorization: Bearer $LIVESIGHT_API_KEY"\n'
    )


def run(args: argparse.Namespace) -> int:
    overrides = {"host": args.host, "port": args.port, "redis_url": args.redis, "node_id": args.node_id}
    settings = settings_from(args, internal_port=args.internal_port, **overrides)
    configure(settings.log_level, fmt=settings.effective_log_format)
    listener = bind_listener(settings.host, settings.port, settings.http_backlog)  # before anything says "serving on"
    port = listener.getsockname()[1]
    settings = settings.model_copy(update={"port": port})  # --port 0: the port actually bound
    internal_listener = None
    if settings.redis_url and settings.cluster_secret:  # the node-to-node port (api/internal.py)
        internal_host = settings.internal_host or settings.host
        internal_listener = bind_listener(internal_host, settings.internal_port, settings.http_backlog)
        internal_port = internal_listener.getsockname()[1]
        internal_url = settings.internal_url or _internal_url(internal_host, internal_port)
        settings = settings.model_copy(update={"internal_port": internal_port, "internal_url": internal_url})
    store = SQLiteKeyStore(settings.resolved_db_path)
    banner = first_key_banner(settings, store)
    if banner:
        print(banner, file=sys.stderr, flush=True)
    base = local_base_url(settings.host, port)
    print(
        f"livesight: serving on {base}; open {base}/ in a browser for the playground "
        f"(API at {base}/v1, reference at {base}/docs)",
        file=sys.stderr,
        flush=True,
    )
    app = create_app(settings, keys=store)
    server = _DrainingServer(server_config(app, settings), app)
    try:
        if internal_listener is None or app.components.internal_app is None:
            server.run(sockets=[listener])
        else:
            print(f"livesight: node-to-node port on {settings.internal_url}", file=sys.stderr, flush=True)
            internal = _QuietServer(server_config(app.components.internal_app, settings))
            internal.config.lifespan = "off"  # the public server runs the app's lifespan
            asyncio.run(_serve_both(server, listener, internal, internal_listener))
    finally:
        listener.close()
        if internal_listener is not None:
            internal_listener.close()
        store.close()
    return 0


def _internal_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (a comparison)
        fail("set internal_url (how other nodes reach this node's internal port) when binding all addresses")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, telling a cluster node to drain the moment SIGTERM or SIGINT arrives (its
    heartbeat says `draining`, so no node places streams here while requests finish)."""

    def __init__(self, config: uvicorn.Config, app: LivesightApp) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        cluster = self._app.components.cluster
        if cluster is not None and not cluster.draining:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to tell yet
                loop = asyncio.get_running_loop()
                loop.call_soon_threadsafe(lambda: loop.create_task(cluster.drain()))
        super().handle_exit(sig, frame)


class _QuietServer(uvicorn.Server):
    """The internal port's server: the public server owns the signals (it stops this one after it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_both(
    public: uvicorn.Server, listener: socket.socket, internal: uvicorn.Server, internal_listener: socket.socket
) -> None:
    """The public and internal servers on one loop; the internal one stops after the public one (whose
    shutdown, a drain, may still be answering other nodes)."""
    task = asyncio.create_task(internal.serve(sockets=[internal_listener]))
    try:
        await public.serve(sockets=[listener])
    finally:
        internal.should_exit = True
        await task
