"""`livesight watch STREAM_ID "question" --every 2s`: a server-side watch, its results printed live.

Creates a watch (POST /v1/watches) asking `question` about the newest frame every `--every`, reads
its results from the SSE endpoint (resuming with Last-Event-ID if the connection drops) and prints one
line per result. `--json-schema FILE` asks for JSON (response_format json_schema, the file is the
schema), `--webhook URL` also delivers each result there (the signing secret is printed once),
`--contains TEXT --on match|change` sets a trigger. On exit (Ctrl-C, or after `--count` results)
the watch is deleted unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import httpx

from livesight.cli.common import command, fail
from livesight.core.jsontypes import JsonArray, JsonObject
from livesight.watches.results import RESULT, WatchResult

DEFAULT_URL = "http://127.0.0.1:7880"
DEFAULT_MODEL = "livesight/ocr"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


def duration_ms(text: str) -> int:
    """'2s', '500ms', '1.5s', '1m' or a number of seconds → milliseconds."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 2s, 500ms, 1m)")
    value, unit = float(m.group(1)), m.group(2) or "s"
    return round(value * {"ms": 1, "s": 1000, "m": 60_000}[unit])


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("watch", help="ask a question about a stream at an interval; print results live")
    p.add_argument("stream_id", help="the stream_id (from POST /v1/streams)")
    p.add_argument("question", help="what to ask at each tick")
    p.add_argument("--every", type=duration_ms, default=2000, metavar="DURATION", help="interval (default 2s)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model id (default {DEFAULT_MODEL})")
    p.add_argument("--json-schema", metavar="FILE", help="a JSON Schema file: ask for JSON answers of that shape")
    p.add_argument("--webhook", metavar="URL", help="also deliver each result to this URL (Standard Webhooks)")
    p.add_argument("--contains", metavar="TEXT", help="trigger: a result matches when its text contains TEXT")
    p.add_argument("--on", choices=("always", "match", "change"), default="always", help="which results to deliver")
    p.add_argument("--count", type=int, metavar="N", help="stop after N results")
    p.add_argument("--keep", action="store_true", help="leave the watch running on exit")
    p.add_argument("--server", default=None, help=f"livesight URL (default $LIVESIGHT_URL or {DEFAULT_URL})")
    p.add_argument("--api-key", default=None, help="API key (default $LIVESIGHT_API_KEY)")
    p.set_defaults(func=run)


def watch_body(args: argparse.Namespace) -> JsonObject:
    url = f"ovs://streams/{args.stream_id}?frame_index=-1"
    content: JsonArray = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": args.question}]
    request: JsonObject = {"model": args.model, "messages": [{"role": "user", "content": content}]}
    if args.json_schema:
        try:
            with open(args.json_schema, encoding="utf-8") as f:
                schema = json.load(f)
        except (OSError, ValueError) as exc:
            fail(f"cannot read --json-schema {args.json_schema}: {exc}")
        request["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    body: JsonObject = {"request": request, "interval_ms": args.every}
    if args.webhook:
        body["webhook"] = {"url": args.webhook}
    if args.contains:
        body["trigger"] = {"contains": args.contains, "on": args.on}
    elif args.on != "always":
        fail("--on match|change needs a trigger: pass --contains TEXT")
    return body


def line(result: WatchResult) -> str:
    frames = [i for f in result["frames"] for i in _indexes(f)]
    where = f"frame {frames[-1]}" if frames else "no frame"
    error = result["error"]
    if error is not None:
        return f"[{result['seq']}] {where}: error {error['code']}: {error['message']}"
    matched = result["matched"]
    mark = " (match)" if matched is True else " (no match)" if matched is False else ""
    return f"[{result['seq']}] {where}{mark}: {result['output']}"


def _indexes(frames_used: JsonObject) -> list[int]:
    given = frames_used.get("frame_indexes")
    return [i for i in given if isinstance(i, int)] if isinstance(given, list) else []


def run(args: argparse.Namespace) -> int:
    server = (args.server or os.environ.get("LIVESIGHT_URL") or DEFAULT_URL).rstrip("/")
    key = args.api_key or os.environ.get("LIVESIGHT_API_KEY")
    if not key:
        fail(f"no API key: pass --api-key or set LIVESIGHT_API_KEY (see `{command('keys', 'create')}`)")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server, headers=headers, timeout=httpx.Timeout(30, read=60), trust_env=False) as c:
        try:
            created = c.post("/v1/watches", json=watch_body(args))
        except httpx.HTTPError as exc:
            fail(f"cannot reach {server}: {exc}", 1)
        if created.status_code != 201:
            fail(f"the server refused the watch ({created.status_code}): {_detail(created)}", 1)
        watch = created.json()
        print(f"watching {args.stream_id} every {args.every / 1000:g} s as {watch['id']} (Ctrl-C stops)", flush=True)
        if watch.get("webhook"):
            print(f"  webhook {watch['webhook']['url']}, secret (shown once): {watch['webhook']['secret']}")
        try:
            return _follow(c, watch["id"], args.count)
        except KeyboardInterrupt:
            return 130
        finally:
            if not args.keep:
                c.delete(f"/v1/watches/{watch['id']}")


def _follow(c: httpx.Client, watch_id: str, count: int | None) -> int:
    last, shown = 0, 0
    while True:
        try:
            with c.stream("GET", f"/v1/watches/{watch_id}/events", headers={"Last-Event-ID": str(last)}) as r:
                if r.status_code != 200:
                    fail(f"cannot read results ({r.status_code}): {_detail(r)}", 1)
                event, data = "", ""
                for text in r.iter_lines():
                    if text.startswith("event: "):
                        event = text[7:]
                    elif text.startswith("data: "):
                        data = text[6:]
                    elif not text and data:
                        if event == "end":
                            print(f"the watch ended ({json.loads(data).get('end_reason')})")
                            return 0
                        result = RESULT.validate_json(data)
                        last = result["seq"] or last
                        print(line(result), flush=True)
                        shown += 1
                        if count is not None and shown >= count:
                            return 0
                        event, data = "", ""
        except httpx.TransportError as exc:
            print(f"livesight: results connection dropped ({exc}); resuming after {last}", file=sys.stderr)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail") or body.get("message") or body)
