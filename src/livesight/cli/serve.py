"""`livesight serve`: run the server (creating the first API key on a fresh install)."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from livesight.api.app import create_app
from livesight.api.server import server_config
from livesight.cli.common import add_config_argument, bind_listener, command, local_base_url, settings_from
from livesight.core.logs import configure
from livesight.settings import Settings
from livesight.store.keys import SQLiteKeyStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the server", description="Run the livesight server.")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, help="port (default 7880)")
    p.add_argument("--redis", metavar="URL", help="share state with other nodes through this Redis (docs/scale-out.md)")
    p.add_argument("--node-id", metavar="ID", help="this node's id in the cluster (default: the host name)")
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
    settings = settings_from(args, host=args.host, port=args.port, redis_url=args.redis, node_id=args.node_id)
    configure(settings.log_level, fmt=settings.effective_log_format)
    listener = bind_listener(settings.host, settings.port, settings.http_backlog)  # before anything says "serving on"
    port = listener.getsockname()[1]
    settings = settings.model_copy(update={"port": port})  # --port 0: the port actually bound
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
    server = uvicorn.Server(server_config(app, settings))
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
        store.close()
    return 0
