"""A livesight server with the fake vLLM, in a subprocess on a given data_dir, for SIGKILL restarts.

`python -m tests.support.watch_process SPEC` (JSON: `dir`, `key`, optional `stream_id`) starts the
fake upstream and `run_server` on `dir` (model "qwen"), pushes 10 numbered frames into `stream_id` (a
new stream of `key` when absent), prints one JSON line (`url`, `stream_id`) and serves until killed.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path


def _serve(spec: dict[str, str]) -> None:
    from livesight.settings import ModelConfig
    from tests.support.fake_upstream import MODEL, run_fake_upstream
    from tests.support.frames import push_frames
    from tests.support.server import run_server

    with run_fake_upstream() as fake:
        model = ModelConfig(id="qwen", base_url=fake.base_url, upstream_model=MODEL, profile="vllm")
        with run_server(Path(spec["dir"]), models=[model], builtin_models=[]) as server:
            stream_id = spec.get("stream_id")
            if not stream_id:
                with server.client(spec["key"]) as client:
                    stream_id = client.post("/v1/streams").json()["id"]
            window = server.call(
                lambda: server.components.registry.window(
                    server.components.registry.get(stream_id, _owner(server, spec["key"]))
                )
            )
            start = window.next_index if window is not None else 0
            push_frames(server, stream_id, [(start + i) * 100 for i in range(10)])
            print(json.dumps({"url": server.base_url, "stream_id": stream_id}), flush=True)
            threading.Event().wait()


def _owner(server: object, key: str) -> str:
    verified = server.keys.verify(key)  # type: ignore[attr-defined]
    assert verified is not None
    return str(verified.owner)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
