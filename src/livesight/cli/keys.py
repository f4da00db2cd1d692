"""`livesight keys create|list|revoke`."""

from __future__ import annotations

import argparse
import time

from livesight.cli.common import add_config_argument, command, fail, settings_from
from livesight.store.keys import SQLiteKeyStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="manage API keys", description="Manage API keys (stored hashed).")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = ksub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", default="", help="a label to recognise the key by")
    lst = ksub.add_parser("list", help="list keys (never shows the keys themselves)")
    revoke = ksub.add_parser("revoke", help="revoke a key by id (key_…) or by the key itself")
    revoke.add_argument("key", help="key id from `keys list`, or the ovs-… key")
    for p in (create, lst, revoke):
        add_config_argument(p)
    create.set_defaults(func=_create)
    lst.set_defaults(func=_list)
    revoke.set_defaults(func=_revoke)


def _store(args: argparse.Namespace) -> SQLiteKeyStore:
    return SQLiteKeyStore(settings_from(args).resolved_db_path)


def _create(args: argparse.Namespace) -> int:
    store = _store(args)
    key, plain = store.create(args.name)
    store.close()
    print(plain)
    print(f"# id {key.id}{' (' + key.name + ')' if key.name else ''}: shown once, store it now", flush=True)
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    rows = store.list()
    store.close()
    if not rows:
        print(f"no keys yet: run `{command('keys', 'create')}`")
        return 0
    print(f"{'ID':18} {'PREFIX':12} {'CREATED (UTC)':20} {'STATUS':8} NAME")
    for k in rows:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(k.created_at_ms / 1000))
        name = f"{k.name} (livesight demo's own key)" if k.demo else k.name
        print(f"{k.id:18} {k.prefix + '…':12} {created:20} {'revoked' if k.revoked else 'active':8} {name}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    store = _store(args)
    key = store.revoke(args.key)
    store.close()
    if key is None:
        fail(f"no key {args.key!r}; see `{command('keys', 'list')}`", code=1)
    print(f"revoked {key.id}")
    return 0
